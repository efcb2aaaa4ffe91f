package sandbox

import (
	"encoding/json"
	"time"

	"github.com/keyship/keyship/host/materialize"
)

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
