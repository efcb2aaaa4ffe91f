package plugin

import (
	"context"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc/credentials"
)

// Peer is the process at the other end of a unix socket, as the kernel
// reports it (SO_PEERCRED): who connected, or who listens.
type Peer struct {
	Pid, UID int
}

// PeerCredentials are gRPC transport credentials for a connection between a
// host and a plugin over a unix socket in a private directory: no
// encryption (the bytes never leave the kernel) but an identity check. Each
// new connection's peer, as the kernel reports it, is passed to allow, and
// the connection is refused when allow returns an error.
//
// keyship uses them in place of go-plugin's AutoMTLS, whose certificate
// generation and TLS handshake (ECDSA P-521 on both sides) cost more than a
// third of a plugin's start: the socket's directory is 0700 (only the host's
// uid can reach the socket), the plugin accepts only its parent process
// (ServeAllowsParent) and the host accepts only the process it started. On
// systems without SO_PEERCRED the directory's permissions are the only
// check.
func PeerCredentials(allow func(Peer) error) credentials.TransportCredentials {
	return &peerCreds{allow: allow}
}

// ServeAllowsParent is the check Serve applies to the host's connections
// when the host did not ask for AutoMTLS: the connecting process must be
// this plugin's parent (the host that started it) or the plugin itself (an
// in-process test), and run as this plugin's user.
func ServeAllowsParent(p Peer) error {
	if p.UID != os.Geteuid() {
		return fmt.Errorf("refusing a connection from uid %d (pid %d): this plugin runs as uid %d", p.UID, p.Pid, os.Geteuid())
	}
	if p.Pid != os.Getppid() && p.Pid != os.Getpid() {
		return fmt.Errorf("refusing a connection from pid %d: only the host that started this plugin (pid %d) may connect", p.Pid, os.Getppid())
	}
	return nil
}

type peerCreds struct {
	allow func(Peer) error
}

// peerAuthInfo is what a checked connection carries.
type peerAuthInfo struct {
	credentials.CommonAuthInfo
	Peer Peer
}

func (peerAuthInfo) AuthType() string { return "keyship-peercred" }

func (c *peerCreds) check(conn net.Conn) (credentials.AuthInfo, error) {
	info := peerAuthInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("keyship plugin connection: %T is not a unix socket", conn)
	}
	p, known, err := peerOf(uc)
	if err != nil {
		return nil, fmt.Errorf("keyship plugin connection: read the peer's credentials: %w", err)
	}
	if known {
		if err := c.allow(p); err != nil {
			return nil, err
		}
		info.Peer = p
	}
	return info, nil
}

func (c *peerCreds) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info, err := c.check(conn)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, info, nil
}

func (c *peerCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info, err := c.check(conn)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, info, nil
}

func (c *peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "keyship-peercred"}
}

func (c *peerCreds) Clone() credentials.TransportCredentials { return &peerCreds{allow: c.allow} }

func (c *peerCreds) OverrideServerName(string) error { return nil }
