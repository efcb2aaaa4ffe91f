package main_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

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
	tlsSpec := j.spec(t, nil)
	flinkSpec := writeFlinkConf(t, j.dir)
	missing := filepath.Join(j.dir, "missing.json")
	data, err := os.ReadFile(j.spec(t, map[string]any{"truststore_secret": "/spark/no-such-truststore"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(missing, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tlsSpec = j.spec(t, nil)
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
