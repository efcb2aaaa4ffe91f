//go:build !linux

package server

import "net"

// peerCredentials returns "unix" for a unix socket peer (SO_PEERCRED is
// Linux's), or "".
func peerCredentials(c net.Conn) string {
	c = accepted(c)
	if _, ok := c.(*net.UnixConn); ok {
		return "unix"
	}
	return ""
}
