package launch

import (
	"context"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/keyship/keyship/plugin"
)

// goHandshake is plugin.Handshake as go-plugin's host takes it.
var goHandshake = goplugin.HandshakeConfig(plugin.Handshake)

// GRPCPlugin is the go-plugin glue for a backend: a host dispenses it with
// Impl nil (as a client); tests serve Impl with go-plugin's own helpers
// (goplugin.TestPluginGRPCConn). Plugins do not use it: plugin.Serve speaks
// the protocol without go-plugin.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	// Impl is the backend to serve; nil on the host side.
	Impl plugin.Backend
}

// GRPCServer registers Impl on s (plugin.RegisterBackendServer).
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	return plugin.RegisterBackendServer(s, p.Impl)
}

// GRPCClient returns a Backend that calls the plugin over c.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return plugin.NewGRPCClient(c), nil
}
