//go:build !linux

package launch

import (
	"os"
	"os/exec"
	"syscall"
)

// sysProcAttr makes the plugin the leader of a new process group, so that
// killing the group also kills any child it started.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// execFromFile leaves cmd executing the path: outside Linux the pin is
// checked on an open file and the path is executed after, so a binary
// swapped in between is not detected.
func execFromFile(*exec.Cmd, *os.File) {}

// checkPinnable refuses nothing outside Linux.
func checkPinnable(*os.File) error { return nil }

// startCmd starts cmd.
func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// waitExit returns false at once: outside Linux the exit is seen by
// cmd.Wait, and the group is killed just after reaping.
func waitExit(int) bool { return false }

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }

// parentOf returns 0: outside Linux the parent of a peer is not looked up.
func parentOf(int) int { return 0 }
