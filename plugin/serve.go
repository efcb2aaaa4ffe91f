package plugin

import (
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ServeOption changes how Serve runs a backend.
type ServeOption func(*serveConfig)

type serveConfig struct {
	logger hclog.Logger
	test   *goplugin.ServeTestConfig
}

// WithLogger makes Serve log through l instead of NewLogger("backend").
func WithLogger(l hclog.Logger) ServeOption {
	return func(c *serveConfig) { c.logger = l }
}

// WithTestConfig runs Serve in go-plugin's test mode (reattach, no handshake
// cookie); for tests of hosts and plugins only.
func WithTestConfig(tc *goplugin.ServeTestConfig) ServeOption {
	return func(c *serveConfig) { c.test = tc }
}

// Serve runs the backend returned by newBackend as a keyship plugin: gRPC only,
// on a unix socket in the private directory the host gives it, accepting only
// the host process that started it (PeerCredentials; go-plugin's AutoMTLS
// instead when a host asks for it), messages bounded by MaxMessageSize, logs
// as hclog JSON on stderr. It blocks until the host goes away, then exits the
// process. Call it from main and nothing else:
//
//	func main() { plugin.Serve(file.New) }
func Serve(newBackend func() Backend, opts ...ServeOption) {
	cfg := serveConfig{logger: NewLogger("backend")}
	for _, o := range opts {
		o(&cfg)
	}
	// A plugin holds secrets in memory: no core file, no ptrace by other
	// processes of its user.
	if err := DisableCoreDumps(); err != nil {
		cfg.logger.Warn("cannot disable core dumps", "error", err)
	}
	nameProcess(filepath.Base(os.Args[0]))
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         goplugin.PluginSet{PluginName: &GRPCPlugin{Impl: newBackend()}},
		GRPCServer: func(o []grpc.ServerOption) *grpc.Server {
			if os.Getenv("PLUGIN_CLIENT_CERT") == "" {
				// The host did not ask for AutoMTLS (keyship's host never
				// does): accept only the host process that started us.
				o = append(o, grpc.Creds(PeerCredentials(func(p Peer) error {
					err := ServeAllowsParent(p)
					if err != nil {
						cfg.logger.Warn(err.Error())
					}
					return err
				})))
			}
			return grpc.NewServer(append(o, ServerOptions()...)...)
		},
		Logger: cfg.logger,
		Test:   cfg.test,
	})
}
