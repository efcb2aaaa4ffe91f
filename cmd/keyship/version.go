package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/keyship/keyship/plugin"
)

// version is what `keyship --version` prints after "keyship ": the module
// version (a release tag when installed with go install …@vX, "(devel)"
// from a checkout), the commit it was built from when the build recorded
// one (with "-dirty" for uncommitted changes), the backend plugin protocol
// it speaks, and the Go release that built it.
func version() string {
	v, rev := "(devel)", ""
	dirty := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	parts := []string{v}
	if rev = rev[:min(len(rev), 12)]; rev != "" && !strings.Contains(v, rev) { // a pseudo-version names it already
		if dirty {
			rev += "-dirty"
		}
		parts = append(parts, "commit "+rev)
	}
	parts = append(parts, fmt.Sprintf("backend protocol %d", plugin.ProtocolVersion), runtime.Version())
	return strings.Join(parts, ", ")
}
