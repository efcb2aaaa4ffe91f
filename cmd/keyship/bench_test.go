package main_test

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkColdShip is one `keyship ship` as a user runs it: process start,
// config, plugin subprocess start (AutoMTLS handshake, sha256 check),
// resolve, materialize and check, atomic sandbox write.
//
//	go test -run '^$' -bench ColdShip ./cmd/keyship/
func BenchmarkColdShip(b *testing.B) {
	j := newJob(b)
	specPath := j.spec(b, nil)
	bin := filepath.Join(binDir, "keyship")
	b.ResetTimer()
	for b.Loop() {
		cmd := exec.Command(bin, "ship", "--config", j.config, "--spec", specPath, "--sandbox", j.sandbox)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ship: %v\n%s", err, out)
		}
	}
}
