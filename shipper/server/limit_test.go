package server_test

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyship/keyship/shipper/server"
)

// TestLimitListenerCapsOpenConnections: no more than n accepted connections
// are open at once; closing one lets the next in.
func TestLimitListenerCapsOpenConnections(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := server.LimitListener(raw, 3)
	defer func() { _ = l.Close() }()
	var accepted atomic.Int32
	conns := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns <- c
		}
	}()
	for range 5 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
	}
	// Wait for the three the limit lets in (the accepting goroutine may run
	// late on a loaded machine), then give a wrongly admitted fourth a moment.
	for deadline := time.Now().Add(time.Minute); accepted.Load() < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if n := accepted.Load(); n != 3 {
		t.Fatalf("%d connections accepted with a limit of 3", n)
	}
	c := <-conns
	if _, ok := c.(interface{ NetConn() net.Conn }); !ok {
		t.Error("a limited connection does not give the accepted one back")
	}
	_ = c.Close()
	_ = c.Close() // a second Close releases nothing more
	deadline := time.Now().Add(time.Minute)
	for accepted.Load() != 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := accepted.Load(); n != 4 {
		t.Fatalf("%d connections accepted after one of 3 closed, want 4", n)
	}
}
