package launch

import (
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/plugin"
)

// baseEnv names the host environment variables every plugin gets: where to
// find programs and temporary files, the locale, and its log level.
// Everything else (tokens, cloud credentials, VAULT_*) stays in the host
// unless the backend's config lists it under env (config.Backend.Env).
var baseEnv = []string{"PATH", "TMPDIR", "LANG", "LANGUAGE", "LC_*", plugin.LogLevelEnv}

// pluginEnv returns the variables of host (KEY=value lines, as from
// os.Environ) whose names match baseEnv or passthrough. A pattern is a
// name, or a prefix followed by "*" ("VAULT_*"). When host does not set the
// plugin log level, level (the host logger's) is passed as it.
func pluginEnv(host, passthrough []string, level hclog.Level) []string {
	patterns := append(append([]string(nil), baseEnv...), passthrough...)
	var out []string
	hasLevel := false
	for _, kv := range host {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !matchesAny(name, patterns) || (name == plugin.LogLevelEnv && value == "") {
			continue
		}
		out = append(out, kv)
		hasLevel = hasLevel || name == plugin.LogLevelEnv
	}
	if !hasLevel && level != hclog.NoLevel && level != hclog.Off {
		out = append(out, plugin.LogLevelEnv+"="+level.String())
	}
	return out
}

func matchesAny(name string, patterns []string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if name == p {
			return true
		}
	}
	return false
}

// hostEnv is the host's environment; a variable for tests.
var hostEnv = os.Environ
