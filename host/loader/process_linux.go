package loader

import (
	"errors"
	"fmt"
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

// execFromFile makes cmd execute the open file f, whose bytes the pin was
// checked against, instead of whatever the path names by the time of the
// exec: f becomes the child's fd 3 and the child executes /proc/self/fd/3.
// The fd is passed without close-on-exec so that scripts (#!) run too; the
// plugin inherits it, read-only, open on its own binary.
func execFromFile(cmd *exec.Cmd, f *os.File) {
	cmd.ExtraFiles = []*os.File{f}
	cmd.Path = "/proc/self/fd/3"
}

// checkPinnable refuses a pinned binary that someone other than root and
// keyship's own user could change in place: hashing and executing one open
// file defeats a path swapped under the host, and this closes the other
// way, a write into the file between the hash and the exec (from the exec
// on, the kernel refuses writes to a running binary).
func checkPinnable(f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	mode := os.FileMode(st.Mode & 0o777)
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return &refusedError{reason: "not a regular file"}
	case st.Uid != 0 && int(st.Uid) != os.Geteuid():
		return &refusedError{reason: fmt.Sprintf("owned by uid %d, not by root or keyship's uid %d: its owner could change it after the sha256 check", st.Uid, os.Geteuid())}
	case mode&0o022 != 0:
		return &refusedError{reason: fmt.Sprintf("writable by group or others (mode %#o): it could be changed after the sha256 check; chmod go-w it", mode)}
	}
	return nil
}

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
