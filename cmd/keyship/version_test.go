package main_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyship/keyship/plugin"
)

// TestVersionNamesTheBuild: `keyship --version` exits 0 and names what the
// Go toolchain reads from the same binary (`go version -m`): its module
// version, the commit when the build recorded one, and the Go release, plus
// the backend plugin protocol it speaks.
func TestVersionNamesTheBuild(t *testing.T) {
	bin := filepath.Join(binDir, "keyship")
	r := keyship(t, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "keyship ") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("keyship --version: exit %d, stdout %q, stderr %q; want one line starting \"keyship \"", r.code, r.stdout, r.stderr)
	}
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	want := []string{fmt.Sprintf("backend protocol %d", plugin.ProtocolVersion)}
	for i, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case i == 0 && len(f) == 2: // "<path>: go1.x.y"
			want = append(want, f[1])
		case len(f) >= 3 && f[0] == "mod":
			want = append(want, f[2])
		case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			want = append(want, strings.TrimPrefix(f[1], "vcs.revision=")[:12])
		}
	}
	if len(want) < 3 {
		t.Fatalf("go version -m named neither the Go release nor the module:\n%s", out)
	}
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("keyship --version %q does not name %q (go version -m:\n%s)", r.stdout, w, out)
		}
	}
	if short := keyship(t, "-v"); short.stdout != r.stdout {
		t.Errorf("keyship -v %q, keyship --version %q", short.stdout, r.stdout)
	}
}
