package launch

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysProcAttr makes the plugin the leader of a new process group, so that
// killing the group also kills any child it started, and has the kernel
// send it SIGKILL when its parent dies (see startCmd for which parent).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
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

// spawner is the goroutine that forks every plugin, locked to its OS thread
// for the life of the process. The parent-death signal fires when the
// *thread* that forked the child exits, not the process: Go may end a thread
// (a goroutine that exits while locked to it takes its thread along), which
// would kill a healthy plugin. This thread never exits, so the plugin dies
// with the host process and only then.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// startCmd starts cmd from the spawner thread.
func startCmd(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd, done}
	return <-done
}

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

// parentOf returns the parent pid of process pid, or 0 when it cannot be
// read.
func parentOf(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold spaces and ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	var state string
	var ppid int
	if _, err := fmt.Sscan(s[i+1:], &state, &ppid); err != nil {
		return 0
	}
	return ppid
}
