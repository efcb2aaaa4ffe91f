//go:build !linux

package plugin

import "net"

// peerOf reports that the peer is unknown: outside Linux only the socket
// directory's permissions guard a plugin connection.
func peerOf(*net.UnixConn) (Peer, bool, error) { return Peer{}, false, nil }
