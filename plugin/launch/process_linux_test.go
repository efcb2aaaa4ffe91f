package launch

import (
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestChildSurvivesTheThreadThatAskedForIt: the parent-death signal fires
// when the thread that forked a child exits, and Go ends a thread when a
// goroutine locked to it exits. A child started (with the plugins' process
// attributes) from such a goroutine must outlive it: startCmd forks on a
// thread that lives as long as the process.
func TestChildSurvivesTheThreadThatAskedForIt(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = sysProcAttr()
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		started <- startCmd(cmd)
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatal("the child died with the thread of the goroutine that started it")
	}
	var ws syscall.WaitStatus
	if pid, _ := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WNOHANG, nil); pid != 0 {
		t.Fatalf("the child died with the thread of the goroutine that started it: %v", ws)
	}
}
