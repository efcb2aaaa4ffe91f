package zktest_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/keyship/keyship/shipper/server/replicas/zookeeper/zktest"
)

// TestEnsemble starts 3 servers, kills the leader (another leads), and
// checks that no server outlives Stop.
func TestEnsemble(t *testing.T) {
	e := zktest.Start(t, 3)
	if len(e.Servers) != 3 || len(e.DataDirs) != 3 {
		t.Fatalf("ensemble of %d servers, %d data dirs; want 3", len(e.Servers), len(e.DataDirs))
	}
	first := e.Leader(t)
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
