package server_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/keyship/keyship/shipper/server"
)

// TestLimitPerSourceClosesTheExcess: past n open connections from one
// address, further ones are closed at once while another address is still
// accepted; closing one of the first n lets that address in again.
func TestLimitPerSourceClosesTheExcess(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := server.LimitPerSource(raw, 2)
	defer func() { _ = l.Close() }()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(src net.IP) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	take := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no connection accepted within 10s")
			return nil
		}
	}
	one, two := net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2)
	dial(one)
	dial(one)
	first := take()
	take()
	excess := dial(one)
	dial(two) // accepted after the excess was closed: Accept runs in order
	if got := take(); got.RemoteAddr().(*net.TCPAddr).IP.String() != "127.0.0.2" {
		t.Fatalf("accepted %s, want 127.0.0.2's connection", got.RemoteAddr())
	}
	_ = excess.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := excess.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a third connection from one address: read %v, want EOF (closed by the listener)", err)
	}
	_ = first.Close()
	dial(one)
	if got := take(); got.RemoteAddr().(*net.TCPAddr).IP.String() != "127.0.0.1" {
		t.Errorf("after one of its connections closed, accepted %s, want 127.0.0.1's", got.RemoteAddr())
	}
}
