package watch

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hookPids starts writing, in a hook's command, the pids of its shell and of
// a background "sleep 1000" into $PIDS (whole, by rename), then runs what
// follows.
const hookPids = `sleep 1000 & echo $! > "$PIDS.tmp"; echo $$ >> "$PIDS.tmp"; mv "$PIDS.tmp" "$PIDS"; `

// readPids returns the pids a hookPids command wrote, or nil when it did not
// get that far.
func readPids(t *testing.T, file string) []int {
	t.Helper()
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %q", file, b)
		}
		pids = append(pids, pid)
	}
	if len(pids) != 2 {
		t.Fatalf("%s holds %q, want two pids", file, b)
	}
	return pids
}

// assertDead fails unless each process has exited: it waits for the exit on
// a pidfd (a bounded wait for an event: a live process fails the test at the
// bound), then checks /proc: the pid is gone or a zombie.
func assertDead(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, unix.ESRCH) {
			continue // gone and reaped
		}
		if err != nil {
			t.Fatalf("pidfd_open %d: %v", pid, err)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 30_000)
		for errors.Is(err, unix.EINTR) {
			n, err = unix.Poll(fds, 30_000)
		}
		_ = unix.Close(fd)
		if err != nil || n == 0 {
			cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			t.Errorf("process %d (%q) still runs 30s after the hook was killed (%v)", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), err)
			_ = unix.Kill(pid, unix.SIGKILL)
			continue
		}
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			if i := bytes.LastIndexByte(b, ')'); i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X') {
				t.Errorf("process %d: /proc stat %q, want gone or a zombie", pid, b)
			}
		}
	}
}

// TestHookTimeoutKillsGroup (issue 20, item 3): a hook that hangs with a
// child of its own (`sleep 1000 & sleep 1000`) is killed with its whole
// process group at its Timeout, and Run says so.
func TestHookTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	// The pids must be written before the timeout: a machine too loaded to
	// start a shell in the first try gets a longer one.
	for timeout := 500 * time.Millisecond; ; timeout *= 4 {
		var out bytes.Buffer
		h := Hook{Command: hookPids + `echo hanging; sleep 1000`, Timeout: timeout, Output: &out}
		start := time.Now()
		err := h.Run(t.Context(), "PIDS="+pidFile)
		if !errors.Is(err, ErrHookTimeout) || !strings.Contains(err.Error(), timeout.String()) {
			t.Fatalf("Run of a hanging hook: %v, want ErrHookTimeout naming %s", err, timeout)
		}
		if took := time.Since(start); took < timeout {
			t.Fatalf("Run returned after %s, before its timeout %s", took, timeout)
		}
		pids := readPids(t, pidFile)
		if pids == nil && timeout < time.Minute {
			continue
		}
		if pids == nil {
			t.Fatalf("the hook never wrote its pids (output %q)", out.String())
		}
		assertDead(t, pids)
		if !strings.Contains(out.String(), "hanging") {
			t.Errorf("the hook's output %q was not passed on", out.String())
		}
		return
	}
}

// TestHookStopKillsGroup (issue 20, item 3): when ctx ends (keyship stops)
// the hook's whole group is killed: no child is left to be reparented.
func TestHookStopKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Hook{Command: hookPids + `sleep 1000`, Timeout: time.Hour}.Run(ctx, "PIDS="+pidFile)
	}()
	var pids []int
	for deadline := time.Now().Add(time.Minute); pids == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hook wrote no pids within a minute")
		}
		pids = readPids(t, pidFile)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after ctx ended: %v, want context.Canceled", err)
	}
	assertDead(t, pids)
}

// TestHookLeftoversKilled (issue 20, item 3): a hook that exits 0 but leaves
// a child running in its group: Run returns nil at once and the child is
// killed.
func TestHookLeftoversKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	var out syncWriter
	if err := (Hook{Command: hookPids + `echo "done $KEYSHIP_REASON"`, Output: &out}).Run(t.Context(), "PIDS="+pidFile, "KEYSHIP_REASON=changed"); err != nil {
		t.Fatal(err)
	}
	assertDead(t, readPids(t, pidFile))
	if got := out.String(); got != "done changed\n" {
		t.Errorf("output %q, want the command's, with its environment", got)
	}
	if err := (Hook{Command: "exit 3"}).Run(t.Context()); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Run of a failing command: %v, want its exit status", err)
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
