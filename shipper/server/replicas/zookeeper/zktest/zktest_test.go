package zktest_test

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/keyship/keyship/shipper/server/replicas/zookeeper/zktest"
)

// TestEnsemble starts 3 servers, finds which process holds a client's
// session (this test's, not a server's), reads the leader's mntr, kills the
// leader (another leads), and checks that no server outlives Stop.
func TestEnsemble(t *testing.T) {
	e := zktest.Start(t, 3)
	if len(e.Servers) != 3 || len(e.DataDirs) != 3 {
		t.Fatalf("ensemble of %d servers, %d data dirs; want 3", len(e.Servers), len(e.DataDirs))
	}
	first := e.Leader(t)
	conn, events, err := zk.Connect(e.Servers, 4*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for ev := range events {
		if ev.State == zk.StateHasSession {
			break
		}
	}
	sid := conn.SessionID()
	if !e.SessionOf(sid, os.Getpid()) {
		t.Errorf("SessionOf: the test process does not hold its own session %#x", sid)
	}
	if e.SessionOf(sid, e.Pids()[0]) || e.SessionOf(sid+1, os.Getpid()) {
		t.Errorf("SessionOf: a server holds the test's session, or the test another session")
	}
	if m, err := e.Mntr(first); err != nil || m["zk_server_state"] != "leader" {
		t.Errorf("mntr of the leader: zk_server_state %q (%v)", m["zk_server_state"], err)
	}
	e.Kill(first)
	if next := e.Leader(t); next == first {
		t.Fatalf("server %d still leads after kill -9", first+1)
	}
	pids := e.Pids()
	e.Stop()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("ZooKeeper server pid %d outlived Stop (kill 0: %v)", pid, err)
		}
	}
}
