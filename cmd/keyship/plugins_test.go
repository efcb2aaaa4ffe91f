package main_test

import (
	"os"
	"strings"
	"testing"
)

// pinnedJob is a job whose config pins the file plugin to a wrong sum.
func pinnedJob(t *testing.T) *job {
	t.Helper()
	j := newJob(t)
	cfg, err := os.ReadFile(j.config)
	if err != nil {
		t.Fatal(err)
	}
	pinned := strings.Replace(string(cfg), "    plugin: keyship-backend-file\n", "    plugin: keyship-backend-file\n    sha256: "+strings.Repeat("ab", 32)+"\n", 1)
	if err := os.WriteFile(j.config, []byte(pinned), 0o600); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestPluginsShowsStatusAndErrorLine: a backend that fails to load has
// status "failed" and its error on a line under the table, not in the
// VERSION column.
func TestPluginsShowsStatusAndErrorLine(t *testing.T) {
	j := pinnedJob(t)
	r := keyship(t, "plugins", "--config", j.config)
	if r.code != 1 {
		t.Fatalf("plugins with a failing backend: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header, one row, a blank line and the error line:\n%s", r.stdout)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "NAME VERSION STATUS PATH SHA256" || len(lines[0]) > 100 {
		t.Errorf("header %q", lines[0])
	}
	if f := strings.Fields(lines[1]); len(f) != 5 || f[0] != "file" || f[1] != "-" || f[2] != "failed" {
		t.Errorf("row %q: want file, -, failed, path, sum", lines[1])
	}
	if !strings.HasPrefix(lines[3], "backend file: refusing to load plugin") || !strings.Contains(lines[3], "sha256 mismatch") {
		t.Errorf("error line %q", lines[3])
	}
}

// TestPinMismatchSaidOncePerJob: a job whose six refs all read from a
// backend that is refused says so once.
func TestPinMismatchSaidOncePerJob(t *testing.T) {
	j := pinnedJob(t)
	r := j.ship(t, j.spec(t, nil))
	if r.code != 1 {
		t.Fatalf("ship with a wrong pin: exit %d\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "sha256 mismatch"); n != 1 {
		t.Errorf("the pin mismatch is said %d times:\n%s", n, r.stderr)
	}
	for _, field := range []string{"security.tls.keystore_secret", "security.tls.truststore_password"} {
		if !strings.Contains(r.stderr, field) {
			t.Errorf("the error does not name %s:\n%s", field, r.stderr)
		}
	}
}
