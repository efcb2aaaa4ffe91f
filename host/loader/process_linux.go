package loader

import (
	"errors"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysProcAttr makes the plugin the leader of a new process group, so that
// killing the group also kills any child it started.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// execFromFile makes cmd execute the open file f.
func execFromFile(cmd *exec.Cmd, f *os.File) {}

// checkPinnable refuses nothing yet.
func checkPinnable(f *os.File) error { return nil }

// startCmd starts cmd.
func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// waitExit blocks until the process pid has exited, without reaping it: its
// pid (and so its process group id) stays reserved until cmd.Wait. It
// reports true: it did wait.
func waitExit(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return true
		}
	}
}

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) error { return unix.Kill(-pid, unix.SIGKILL) }
