package plugin_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/keyship/keyship/plugin"
)

func TestServeAllowsParent(t *testing.T) {
	uid := os.Geteuid()
	for _, c := range []struct {
		peer plugin.Peer
		ok   bool
	}{
		{plugin.Peer{Pid: os.Getppid(), UID: uid}, true},
		{plugin.Peer{Pid: os.Getpid(), UID: uid}, true},
		{plugin.Peer{Pid: os.Getppid(), UID: uid + 1}, false},
		{plugin.Peer{Pid: 1, UID: uid}, false},
	} {
		if err := plugin.ServeAllowsParent(c.peer); (err == nil) != c.ok {
			t.Errorf("%+v: %v, want allowed=%v", c.peer, err, c.ok)
		}
	}
}

// TestPeerCredentialsReportTheKernelsPeer: over a real unix socket, both
// ends see the other's pid and uid as the kernel reports them, and a
// refusal fails the handshake.
func TestPeerCredentialsReportTheKernelsPeer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SO_PEERCRED is Linux's")
	}
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer func() { _ = c.Close() }()
		}
	}()
	self := plugin.Peer{Pid: os.Getpid(), UID: os.Geteuid()}
	var seen plugin.Peer
	refuse := errors.New("not you")
	for _, c := range []struct {
		allow func(plugin.Peer) error
		ok    bool
	}{
		{func(p plugin.Peer) error { seen = p; return nil }, true},
		{func(plugin.Peer) error { return refuse }, false},
	} {
		conn, err := net.Dial("unix", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = plugin.PeerCredentials(c.allow).ClientHandshake(context.Background(), "", conn)
		if (err == nil) != c.ok || (!c.ok && !errors.Is(err, refuse)) {
			t.Errorf("handshake: %v, want ok=%v", err, c.ok)
		}
		_ = conn.Close()
	}
	if seen != self {
		t.Errorf("peer %+v, want this process %+v", seen, self)
	}
}
