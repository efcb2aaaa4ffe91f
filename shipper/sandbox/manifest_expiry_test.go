package sandbox

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyship/keyship/host/materialize"
)

func TestManifestWithExpiryRecordsNotAfter(t *testing.T) {
	files := []materialize.File{{Path: "keystore.jks", Contents: []byte("SECRET-BYTES"), Version: "v1"}, {Path: "keystore.password", Contents: []byte("pw")}}
	at := time.Date(2031, 5, 1, 10, 0, 0, 0, time.FixedZone("x", 3600))
	m, err := ManifestWithExpiry(files, map[string]time.Time{"keystore.jks": at, "keystore.password": {}})
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
	want := []ManifestEntry{{Path: "keystore.jks", Mode: "0600", Version: "v1", NotAfter: "2031-05-01T09:00:00Z"}, {Path: "keystore.password", Mode: "0600"}}
	if len(got.Files) != 2 || got.Files[0] != want[0] || got.Files[1] != want[1] {
		t.Fatalf("manifest = %+v, want %+v", got.Files, want)
	}
	plain, _ := Manifest(files)
	if strings.Contains(string(plain.Contents), "not_after") {
		t.Error("Manifest without expiry writes not_after")
	}
	if _, err := Write(context.Background(), t.TempDir(), append(files, m), Options{}); err != nil {
		t.Fatalf("the manifest does not ship with its files: %v", err)
	}
}
