package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyship/keyship/shipper/sandbox"
)

// TestServerShipEqualsLocalShip: `ship --server` is `ship` (issue 18). For
// every --emit, both release flags and a failing ref, the same flags give the
// same stdout, stderr, exit code and sandbox file bytes (manifest.json aside,
// which records when it was written) whether this process or a running
// keyship serve resolves and builds.
func TestServerShipEqualsLocalShip(t *testing.T) {
	j := newJob(t)
	sock, _ := startServe(t, j)
	flinkSpec := writeFlinkConf(t, j.dir)
	missing := filepath.Join(j.dir, "missing.json")
	data, err := os.ReadFile(j.spec(t, map[string]any{"truststore_secret": "/spark/no-such-truststore"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(missing, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// j.spec writes one file: the job's spec is written last, over the
	// missing-ref variant copied above.
	tlsSpec := j.spec(t, nil)
	for _, c := range []struct {
		name string
		spec string
		args []string
	}{
		{"no emit", tlsSpec, nil},
		{"emit spark", tlsSpec, []string{"--emit", "spark"}},
		{"emit flink", tlsSpec, []string{"--emit", "flink"}},
		{"emit libprocess", tlsSpec, []string{"--emit", "libprocess"}},
		{"emit mesos", tlsSpec, []string{"--emit", "mesos"}},
		{"emit marathon", tlsSpec, []string{"--emit", "marathon"}},
		{"emit kubernetes", tlsSpec, []string{"--emit", "kubernetes"}},
		{"spark 2.2", tlsSpec, []string{"--spark-version", "2.2"}},
		{"flink 1.18", flinkSpec, []string{"--emit", "flink", "--flink-version", "1.18"}},
		{"missing ref", missing, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"ship", "--config", j.config, "--spec", c.spec, "--sandbox", j.sandbox}, c.args...)
			if err := os.RemoveAll(j.sandbox); err != nil {
				t.Fatal(err)
			}
			local := keyship(t, args...)
			localFiles := sandboxFiles(t, j.sandbox)
			if err := os.RemoveAll(j.sandbox); err != nil {
				t.Fatal(err)
			}
			remote := keyship(t, append(args, "--server", "unix://"+sock)...)
			remoteFiles := sandboxFiles(t, j.sandbox)
			assertNoCanary(t, local)
			assertNoCanary(t, remote)
			if local.code != remote.code {
				t.Errorf("exit code: ship %d, ship --server %d", local.code, remote.code)
			}
			if local.stdout != remote.stdout {
				t.Errorf("stdout differs:\n--- ship\n%s--- ship --server\n%s", local.stdout, remote.stdout)
			}
			if local.stderr != remote.stderr {
				t.Errorf("stderr differs:\n--- ship\n%s--- ship --server\n%s", local.stderr, remote.stderr)
			}
			names := func(m map[string][]byte) []string {
				var out []string
				for n := range m {
					out = append(out, n)
				}
				slices.Sort(out)
				return out
			}
			if a, b := names(localFiles), names(remoteFiles); !slices.Equal(a, b) {
				t.Fatalf("sandbox files: ship %v, ship --server %v", a, b)
			}
			for name, a := range localFiles {
				if !bytes.Equal(a, remoteFiles[name]) {
					t.Errorf("%s differs between ship and ship --server", name)
				}
			}
		})
	}
}

// sandboxFiles reads every file of the sandbox's current set but its
// manifest; none when nothing was shipped.
func sandboxFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == sandbox.ManifestName || e.Name()[0] == '.' {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = data
	}
	return out
}

// TestServerShipWatch: ship --server --watch delivers the sets keyship
// serve's Watch streams as the local watch does: the first written and
// printed as ship --server does, a rotated set (found at the server's own
// refresh) swapped into the sandbox with --on-change run once, SIGHUP
// not ending it, and SIGTERM ending it with exit 0 and the
// stores in place.
func TestServerShipWatch(t *testing.T) {
	j := newJob(t)
	sock, _ := startServe(t, j, "--refresh", "1s")
	spec := j.spec(t, nil)
	onChange := filepath.Join(j.dir, "on-change.log")
	cmd := exec.Command(filepath.Join(binDir, "keyship"), "ship", "--config", j.config, "--spec", spec, "--sandbox", j.sandbox,
		"--server", "unix://"+sock, "--watch", "--on-change", `echo "$KEYSHIP_REASON $KEYSHIP_MANIFEST" >> `+onChange)
	cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=")
	stdout, stderr, done := startWatch(t, cmd)
	wait := waiter(t, 30*time.Second, done, stdout, stderr)
	wait("first ship", func() bool {
		return strings.Contains(stdout.String(), "keyship watches them through keyship serve at unix://"+sock)
	})
	if !strings.Contains(stdout.String(), "spark.ssl.protocol=") {
		t.Errorf("the first set's settings are not printed:\n%s", stdout.String())
	}
	before, err := os.ReadFile(filepath.Join(j.sandbox, "keystore.jks"))
	if err != nil {
		t.Fatal(err)
	}
	// SIGHUP does not end the watch (the waits below fail if it exits).
	_ = cmd.Process.Signal(syscall.SIGHUP)

	ks := rotateStores(t, j, "rotated CA")
	if bytes.Equal(ks, before) {
		t.Fatal("the rotated keystore is the shipped one")
	}
	swappedThenStop(t, j, ks, onChange, wait, cmd, done, stdout, stderr)
}
