package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper"
)

// Client calls a keyship serve. Close it when done.
type Client struct {
	hostv1.ShipperServiceClient
	conn *grpc.ClientConn
}

// Dial connects to a keyship serve at addr: "unix:///path/to.sock", or
// "tcp://host:port" with tlsConfig (mutual TLS: it must carry the client
// certificate and the server's CA). A unix socket needs no TLS: its 0600
// mode is the access control.
func Dial(addr string, tlsConfig *tls.Config) (*Client, error) {
	var creds credentials.TransportCredentials
	var target string
	switch {
	case strings.HasPrefix(addr, "unix://"):
		target, creds = "unix://"+strings.TrimPrefix(addr, "unix://"), insecure.NewCredentials()
	case strings.HasPrefix(addr, "tcp://"):
		if tlsConfig == nil {
			return nil, fmt.Errorf("keyship server %s: tcp needs mutual TLS (client certificate and CA)", addr)
		}
		target, creds = "dns:///"+strings.TrimPrefix(addr, "tcp://"), credentials.NewTLS(tlsConfig)
	default:
		return nil, fmt.Errorf("keyship server address %q: want unix:///path or tcp://host:port", addr)
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	return &Client{ShipperServiceClient: hostv1.NewShipperServiceClient(conn), conn: conn}, nil
}

// Deliver ships r through the server and returns the delivery in the
// domain's terms (the wire seam's deliveryFromProto): the files relative to
// r.Dir, the settings and what ship prints. A failure is the server's
// message, wrapping the kind its code stands for (shipper.Outcomes), so
// errors.Is(err, plugin.ErrNotFound) holds as it does in the server. Zero
// the delivery once its files are written.
func (c *Client) Deliver(ctx context.Context, r Request) (*shipper.Delivery, error) {
	resp, err := c.Ship(ctx, requestToProto(r))
	if err != nil {
		return nil, errorFromProto(err)
	}
	return deliveryFromProto(resp, r.Dir), nil
}

// Conn returns the client's connection, for the server's other services
// (grpc.health.v1).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Listen opens the listener for addr: "unix:///path" (a stale socket file is
// replaced; the socket is made 0600) or "tcp://host:port".
func Listen(addr string) (net.Listener, error) {
	switch {
	case strings.HasPrefix(addr, "unix://"):
		path := strings.TrimPrefix(addr, "unix://")
		if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(path)
		}
		old := umask(0o177)
		l, err := net.Listen("unix", path)
		umask(old)
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(path, 0o600); err != nil {
			_ = l.Close()
			return nil, err
		}
		return l, nil
	case strings.HasPrefix(addr, "tcp://"):
		return net.Listen("tcp", strings.TrimPrefix(addr, "tcp://"))
	default:
		return nil, fmt.Errorf("listen address %q: want unix:///path or tcp://host:port", addr)
	}
}
