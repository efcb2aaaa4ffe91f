package server

import "net"

// accepted returns the connection the listener accepted under c's wrappers
// (TLS, LimitListener), each of which gives it through NetConn.
func accepted(c net.Conn) net.Conn {
	for {
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return c
		}
		c = w.NetConn()
	}
}
