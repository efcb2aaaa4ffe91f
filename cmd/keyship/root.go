package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/host/loader"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the job's TLS cannot work, or a backend failed
	exitUsage = 2 // bad flags or arguments
)

// usageError marks errors that are the caller's flags or arguments.
type usageError struct{ error }

// globals are the flags every command shares.
type globals struct {
	configPath string
	logLevel   string
	stdout     io.Writer
	stderr     io.Writer
	logger     hclog.Logger
}

// run executes the CLI and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "keyship",
		Short: "Ship TLS keystores from a secret store into Spark, Flink and Mesos jobs",
		Long: `keyship resolves the secret refs in a job's TLS settings (DC/OS security.tls
JSON), builds and checks the Java keystores and truststores before anything
ships, and writes them where the job reads them.`,
		Example: `  keyship demo
  keyship ship --config keyship.yaml --spec job.json --sandbox ./sandbox
  keyship get --config keyship.yaml /spark/keystore
  keyship plugins --config keyship.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			level := hclog.LevelFromString(g.logLevel)
			if level == hclog.NoLevel {
				return usageError{fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", g.logLevel)}
			}
			g.logger = hclog.New(&hclog.LoggerOptions{Name: "keyship", Output: stderr, Level: level})
			return nil
		},
	}
	root.Version = version()
	root.SetVersionTemplate("keyship {{.Version}}\n")
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.configPath, "config", os.Getenv("KEYSHIP_CONFIG"), "host config file (default $KEYSHIP_CONFIG; without one: the built-in file backend rooted at ./secrets)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", envOr("KEYSHIP_LOG_LEVEL", "warn"), "log level: trace, debug, info, warn, error ($KEYSHIP_LOG_LEVEL)")
	root.AddCommand(newShipCmd(g), newCheckCmd(g), newGetCmd(g), newPluginsCmd(g), newDemoCmd(g), newServeCmd(g), newPluginCmd(g))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "keyship:", err)
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return exitUsage
	}
	return exitFail
}

// isCobraUsage recognises cobra's own argument errors (unknown command,
// wrong argument count), which it does not type.
func isCobraUsage(err error) bool {
	for _, p := range []string{"unknown command", "unknown flag", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(err.Error(), p) {
			return true
		}
	}
	return false
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// loadConfig reads --config, or returns the default: the built-in file
// backend rooted at ./secrets. Plugins are looked for next to the keyship
// binary when the config sets no plugin_dir.
func (g *globals) loadConfig() (*config.Config, error) {
	var cfg *config.Config
	if g.configPath == "" {
		cfg = &config.Config{
			DefaultBackend: "file",
			Backends:       map[string]config.Backend{"file": {Config: map[string]string{"root": "secrets"}}},
		}
	} else {
		var err error
		if cfg, err = config.Load(g.configPath); err != nil {
			return nil, err
		}
	}
	if cfg.PluginDir == "" {
		if exe, err := os.Executable(); err == nil {
			cfg.PluginDir = filepath.Dir(exe)
		}
	}
	return cfg, nil
}

// startHost loads the config and starts a Host with keyship's built-in
// backends, and derives a context with the command's deadline. Until done,
// SIGINT and SIGTERM kill the plugins and remove their sockets before
// keyship dies of the signal. Call done when finished: it releases the
// context and stops the plugins.
func (g *globals) startHost(ctx context.Context, timeout time.Duration) (h *host.Host, hctx context.Context, done func(), err error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, nil, err
	}
	h = g.newHost(cfg)
	if ctx == nil {
		ctx = context.Background()
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	stopSignals := loader.HandleSignals()
	return h, hctx, func() { cancel(); _ = h.Close(); stopSignals() }, nil
}

// newHost builds a Host with keyship's built-in backends.
func (g *globals) newHost(cfg *config.Config, opts ...host.Option) *host.Host {
	return host.New(cfg, append(g.hostOptions(), opts...)...)
}

// hostOptions are every Host's: keyship's log and built-in backends.
func (g *globals) hostOptions() []host.Option {
	return []host.Option{host.WithLogger(g.logger), host.WithBuiltin(file.Name, file.New)}
}
