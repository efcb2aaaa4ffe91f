package plugin

import (
	"io"
	"os"

	"github.com/hashicorp/go-hclog"
)

// LogLevelEnv names the environment variable that sets a plugin's log level
// ("trace", "debug", "info", "warn", "error"; unset means info). The host
// passes it from its own environment to every plugin it starts.
const LogLevelEnv = "KEYSHIP_PLUGIN_LOG_LEVEL"

// NewLogger returns the logger a backend writes through when it runs as a
// plugin: hclog JSON lines on stderr, which the host folds into its own log
// under the backend's name, at the level LogLevelEnv names. Serve uses it
// by default; a backend's New should use it too, so that everything a plugin
// process logs has one format:
//
//	func New() plugin.Backend { return NewWithLogger(plugin.NewLogger("mystore")) }
func NewLogger(name string) hclog.Logger { return newLogger(os.Stderr, name) }

func newLogger(out io.Writer, name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Output:     out,
		JSONFormat: true,
		Level:      hclog.LevelFromString(os.Getenv(LogLevelEnv)),
	})
}
