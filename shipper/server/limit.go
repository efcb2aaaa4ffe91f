package server

import (
	"net"
	"net/netip"
	"sync"
)

// LimitListener returns a Listener that accepts at most n connections at
// once from l: Accept waits while n are open, so a flood of idle
// connections costs at most n file descriptors (the kernel's backlog holds
// the rest until they time out). Each connection it returns gives the
// accepted one back through NetConn, as tls.Conn does, so that the unix
// socket's peer credentials stay readable.
func LimitListener(l net.Listener, n int) net.Listener {
	if n <= 0 {
		return l
	}
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// NetConn returns the accepted connection.
func (c *limitedConn) NetConn() net.Conn { return c.Conn }

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// LimitPerSource returns a Listener that keeps at most n connections open
// from any one source IP address: a connection past that is closed at once,
// before it can hold a slot of an outer LimitListener, so that one address
// flooding the port with silent connections leaves the rest of the
// listener's cap to everyone else. Connections without an IP address (a unix
// socket) are not counted. n <= 0 returns l.
func LimitPerSource(l net.Listener, n int) net.Listener {
	if n <= 0 {
		return l
	}
	return &perSourceListener{Listener: l, max: n, open: map[netip.Addr]int{}}
}

type perSourceListener struct {
	net.Listener
	max int

	mu   sync.Mutex
	open map[netip.Addr]int
}

func (l *perSourceListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil {
			return c, nil // not an IP peer
		}
		src := ap.Addr().Unmap()
		l.mu.Lock()
		full := l.open[src] >= l.max
		if !full {
			l.open[src]++
		}
		l.mu.Unlock()
		if full {
			_ = c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: func() { l.release(src) }}, nil
	}
}

func (l *perSourceListener) release(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[src]--; l.open[src] <= 0 {
		delete(l.open, src)
	}
}
