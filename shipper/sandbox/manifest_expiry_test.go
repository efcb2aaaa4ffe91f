package sandbox

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestManifestWithExpiryRecordsNotAfter(t *testing.T) {
	files := []File{{Path: "keystore.jks", Contents: []byte("SECRET-BYTES")}, {Path: "keystore.password", Contents: []byte("pw")}}
	at := time.Date(2031, 5, 1, 10, 0, 0, 0, time.FixedZone("x", 3600))
	m, err := ManifestWithExpiry(files, map[string]string{"keystore.jks": "v1"}, map[string]time.Time{"keystore.jks": at, "keystore.password": {}})
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
	plain, _ := Manifest(files, map[string]string{"keystore.jks": "v1"})
	if strings.Contains(string(plain.Contents), "not_after") {
		t.Error("Manifest without expiry writes not_after")
	}
}
