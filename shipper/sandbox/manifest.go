package sandbox

import (
	"encoding/json"
	"github.com/keyship/keyship/host/materialize"
	"io/fs"
	"time"
)

// ManifestName is the file name of the manifest Manifest makes.
const ManifestName = "manifest.json"

// ManifestEntry describes one shipped file; it never holds its contents.
type ManifestEntry struct {
	Path    string `json:"path"`
	Mode    string `json:"mode"`
	Version string `json:"version,omitempty"`
	// NotAfter is when the certificates the file holds expire (RFC 3339,
	// UTC), for stores; see ManifestWithExpiry.
	NotAfter string `json:"not_after,omitempty"`
}

// Manifest returns a manifest.json File that lists files by path, mode and
// version (File.Version; an empty one is left out), so that a task or an
// operator can see what was shipped without reading a secret. Ship it in the
// same Write as files.
func Manifest(files []materialize.File) (materialize.File, error) {
	return ManifestWithExpiry(files, nil)
}

// ManifestWithExpiry is Manifest with each store's expiry: notAfter, keyed
// by path, is when the certificates of that file stop being valid (the
// earliest NotAfter), written as the entry's not_after in RFC 3339 UTC.
// keyship ship writes it, so that a task or an operator sees how long the
// stores in place are good for, including stores read from a backend that
// keyship cannot renew.
func ManifestWithExpiry(files []materialize.File, notAfter map[string]time.Time) (materialize.File, error) {
	entries := make([]ManifestEntry, len(files))
	for i, f := range files {
		mode, _ := fileMode(f.Mode)
		entries[i] = ManifestEntry{Path: f.Path, Mode: octal(mode), Version: f.Version}
		if t, ok := notAfter[f.Path]; ok && !t.IsZero() {
			entries[i].NotAfter = t.UTC().Format(time.RFC3339)
		}
	}
	data, err := json.MarshalIndent(struct {
		Files []ManifestEntry `json:"files"`
	}{entries}, "", "  ")
	if err != nil {
		return materialize.File{}, err
	}
	return materialize.File{Path: ManifestName, Mode: 0o600, Contents: append(data, '\n')}, nil
}

func octal(m fs.FileMode) string {
	const digits = "01234567"
	p := m.Perm()
	return string([]byte{'0', digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}
