package sandbox

import (
	"encoding/json"
	"github.com/keyship/keyship/host/materialize"
	"strings"
	"testing"
)

func TestManifestListsFilesWithoutContents(t *testing.T) {
	files := []materialize.File{{Path: "keystore.jks", Contents: []byte("SECRET-BYTES"), Version: "v1"}, {Path: "ro", Mode: 0o400, Contents: []byte("x")}}
	m, err := Manifest(files)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(m.Contents), "SECRET-BYTES") {
		t.Fatal("manifest holds file contents")
	}
	var got struct{ Files []ManifestEntry }
	if err := json.Unmarshal(m.Contents, &got); err != nil {
		t.Fatal(err)
	}
	want := []ManifestEntry{{Path: "keystore.jks", Mode: "0600", Version: "v1"}, {Path: "ro", Mode: "0400"}}
	if len(got.Files) != 2 || got.Files[0] != want[0] || got.Files[1] != want[1] {
		t.Fatalf("manifest = %+v, want %+v", got.Files, want)
	}
	if _, err := Write(t.Context(), t.TempDir(), append(files, m), Options{}); err != nil {
		t.Fatalf("the manifest does not ship with its files: %v", err)
	}
}
