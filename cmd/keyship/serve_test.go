package main_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestShipThroughServeGivesTheSameStores runs a real keyship serve on a unix
// socket and checks that `ship --server` writes byte-identical stores and
// passwords to a local `ship` of the same spec.
func TestShipThroughServeGivesTheSameStores(t *testing.T) {
	j := newJob(t)
	specPath := j.spec(t, nil)
	sock, stderr := startServe(t, j)
	st, err := os.Stat(sock)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("API socket mode %v (%v), want 0600", st.Mode().Perm(), err)
	}

	local := j.ship(t, specPath)
	if local.code != 0 {
		t.Fatalf("local ship: %s", local.stderr)
	}
	remoteDir := filepath.Join(j.dir, "remote-sandbox")
	remote := keyship(t, "ship", "--server", "unix://"+sock, "--spec", specPath, "--sandbox", remoteDir)
	if remote.code != 0 {
		t.Fatalf("ship --server: exit %d: %s", remote.code, remote.stderr)
	}
	assertNoCanary(t, remote)
	for _, name := range []string{"keystore.jks", "truststore.jks", "ca-bundle.jks", "keystore.password", "key.password", "truststore.password"} {
		a, errA := os.ReadFile(filepath.Join(j.sandbox, name))
		b, errB := os.ReadFile(filepath.Join(remoteDir, name))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between ship and ship --server (%v, %v)", name, errA, errB)
		}
	}
	if !strings.Contains(remote.stdout, "spark.ssl.keyStore="+filepath.Join(remoteDir, "keystore.jks")) {
		t.Errorf("ship --server settings do not point at its sandbox:\n%s", remote.stdout)
	}
	if strings.Contains(stderr(), canary) {
		t.Error("keyship serve logged the keystore password")
	}
}

// startServe runs keyship serve for j on a fresh unix socket until the test
// ends; it returns the socket path and a function that reads its stderr.
func startServe(t testing.TB, j *job, args ...string) (string, func() string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "keyship.sock")
	s := serve(t, j, append([]string{"--listen", "unix://" + sock}, args...)...)
	return sock, s.stderr.String
}

// TestKeyshipDisablesCoreDumps: a running keyship (which holds secrets)
// has a core file size limit of 0, so a crash writes no core with them.
func TestKeyshipDisablesCoreDumps(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	j := newJob(t)
	sock := filepath.Join(t.TempDir(), "keyship.sock")
	srv := exec.Command(filepath.Join(binDir, "keyship"), "serve", "--config", j.config, "--listen", "unix://"+sock)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	var limits []byte
	for range 100 {
		var err error
		if limits, err = os.ReadFile(fmt.Sprintf("/proc/%d/limits", srv.Process.Pid)); err == nil && strings.Contains(string(limits), "Max core file size") {
			if _, err := os.Stat(sock); err == nil {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for line := range strings.SplitSeq(string(limits), "\n") {
		if strings.HasPrefix(line, "Max core file size") {
			if f := strings.Fields(line); len(f) < 6 || f[4] != "0" || f[5] != "0" {
				t.Errorf("keyship serve: %q, want soft and hard limits 0", line)
			}
			return
		}
	}
	t.Fatalf("no core limit in /proc/PID/limits:\n%s", limits)
}
