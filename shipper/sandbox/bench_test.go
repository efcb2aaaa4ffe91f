package sandbox

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/keyship/keyship/host/materialize"
)

// BenchmarkWriteGeneration is a re-ship of a typical bundle into one
// sandbox: seven files of 1–4 KB written, fsynced (syncFiles), swapped in,
// and the previous generation removed. Most of it is the file system's
// fsync; run it on the file system the sandboxes live on (TMPDIR):
//
//	go test -run '^$' -bench WriteGeneration -count 5 ./shipper/sandbox/
func BenchmarkWriteGeneration(b *testing.B) {
	var files []materialize.File
	for i, name := range []string{"keystore.jks", "truststore.jks", "ca-bundle.jks", "keystore.password", "key.password", "truststore.password", "extra.pem"} {
		files = append(files, materialize.File{Path: name, Mode: 0o600, Contents: make([]byte, 1024+512*i)})
	}
	dir := filepath.Join(b.TempDir(), "sandbox")
	for i := 0; b.Loop(); i++ {
		files[0].Contents[0] = byte(i) // a new generation each time
		if _, err := Write(context.Background(), dir, files, Options{}); err != nil {
			b.Fatal(fmt.Errorf("write %d: %w", i, err))
		}
	}
}
