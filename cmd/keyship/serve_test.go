package main_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
func startServe(t testing.TB, j *job) (string, func() string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "keyship.sock")
	s := serve(t, j, "--listen", "unix://"+sock)
	return sock, s.stderr.String
}
