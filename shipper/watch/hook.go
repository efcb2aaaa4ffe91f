package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// DefaultHookTimeout is how long a Hook may run when its Timeout is 0.
const DefaultHookTimeout = time.Minute

// hookOutputGrace bounds how long Run waits for the output of a process that
// left the hook's process group (setsid) and still holds its output pipe,
// after the group is gone.
const hookOutputGrace = time.Second

// ErrHookTimeout is the error of a Hook that did not finish within its
// Timeout; its process group was killed.
var ErrHookTimeout = errors.New("did not finish in time")

// Hook is a shell command run after each swap (keyship ship --watch
// --on-change). Run starts it with /bin/sh -c in a process group of its own
// and, when the shell exits, when Timeout passes or when ctx ends (keyship
// stops), kills that whole group with SIGKILL: nothing the command started in
// its group outlives it, and a command that hangs holds a watch up for at
// most Timeout. (A process that makes a session or group of its own, with
// setsid, leaves the group and is not killed.)
type Hook struct {
	// Command is the shell command; "" makes Run do nothing.
	Command string
	// Timeout bounds a run; 0 means DefaultHookTimeout.
	Timeout time.Duration
	// Env is the command's environment before Run's env; nil means
	// os.Environ().
	Env []string
	// Output receives the command's standard output and error; nil
	// discards them.
	Output io.Writer
}

// Run runs the hook with env (NAME=value) added to its environment and
// returns nil when the command exits 0. Otherwise it returns an error saying
// why: its exit status, ErrHookTimeout (the process group was killed at the
// timeout), or ctx's error (the group was killed because ctx ended).
func (h Hook) Run(ctx context.Context, env ...string) error {
	if h.Command == "" {
		return nil
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	out := h.Output
	if out == nil {
		out = io.Discard
	}
	base := h.Env
	if base == nil {
		base = os.Environ()
	}
	// The command writes into a pipe of ours, not one of os/exec's: Wait
	// then returns when the shell exits, even while a process it left
	// behind still holds the pipe, and the group can be killed at once.
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("on-change command: %w", err)
	}
	cmd := exec.Command("/bin/sh", "-c", h.Command)
	cmd.Env = append(append([]string(nil), base...), env...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	_ = w.Close()
	if err != nil {
		_ = r.Close()
		return fmt.Errorf("on-change command: %w", err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(out, r)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var why error
	select {
	case err = <-exited:
	case <-timer.C:
		why = fmt.Errorf("on-change command %w (%s): killed it and its process group", ErrHookTimeout, timeout)
	case <-ctx.Done():
		why = fmt.Errorf("on-change command stopped (%w): killed it and its process group", ctx.Err())
	}
	// The group's id is the shell's pid; the kernel does not hand that
	// number to a new process while the group has a member.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if why != nil {
		<-exited // the shell is dead: Wait returns at once
	}
	output := time.NewTimer(hookOutputGrace)
	defer output.Stop()
	select {
	case <-copied:
	case <-output.C: // a process that left the group holds the pipe
	}
	_ = r.Close()
	<-copied // the copy ends at once on the closed pipe; out is the caller's again
	if why != nil {
		return why
	}
	if err != nil {
		return fmt.Errorf("on-change command: %w", err)
	}
	return nil
}
