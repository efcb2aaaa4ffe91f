package launch

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin/runner"

	"github.com/keyship/keyship/plugin"
)

// process is one run of a plugin binary: keyship's go-plugin runner (used
// through ClientConfig.RunnerFunc instead of go-plugin's own exec.Cmd
// runner). What it does that go-plugin's runner does not:
//
//   - the binary is opened once, its open file is hashed against the pin and
//     that same file is executed (exec of /proc/self/fd/N on Linux), so a
//     path swapped between the check and the exec is never run; a pinned
//     binary that others could write in place is refused;
//   - the plugin leads its own process group, and killing it kills the group
//     (a child the plugin started dies with it);
//   - the exit is noticed when the process exits, not when its stdout and
//     stderr close, so a child holding them open cannot hang the host or
//     leave a zombie; the pipes are closed by the host shortly after;
//   - on Linux the plugin gets SIGKILL when the host dies (Pdeathsig);
//   - its socket directory is removed as soon as the host is connected, so
//     a host killed later leaves no socket behind;
//   - the environment is exactly what Start passes (see env.go);
//   - a stderr line that would crash go-plugin's log parser is made safe
//     first (stderrlines.go).
type process struct {
	path      string // the binary as configured; messages and log names use it
	pin       []byte // pinned SHA-256, or nil
	env       []string
	socketDir string // go-plugin's private socket directory for this run

	stdout, stderr *os.File     // read ends of the plugin's stdout and stderr
	stderrLines    *stderrLines // stderr as go-plugin reads it

	mu      sync.Mutex
	addr    net.Addr // the socket the plugin's handshake line names
	refused error    // why the host refused the process listening there
	dialErr error    // why the host could not connect there
	pid     int
	killed  bool // kill was asked before or during start
	exiting bool // the process has exited; it may not be reaped yet
	done    chan struct{}
	waitErr error // the process's exit, once done is closed
}

func newProcess(path string, pin []byte, env []string) *process {
	return &process{path: path, pin: pin, env: env, done: make(chan struct{})}
}

// refusedError is the refusal of a pinned binary: its bytes do not hash to
// the pin (got is their hash), or it could change after the check.
type refusedError struct{ got, reason string }

func (e *refusedError) Error() string { return e.reason }

// Start opens the binary, checks it against the pin and executes it.
func (p *process) Start(context.Context) error {
	f, err := os.OpenFile(p.path, os.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if p.pin != nil {
		if err := checkPinnable(f); err != nil {
			return err
		}
		// Hashed at every start, never taken from a cache: a cache entry
		// is a file keyship's uid can write, and so can whoever swaps the
		// binary (the cost is measured by BenchmarkStart/pinned).
		sum, err := hashFile(f)
		if err != nil {
			return fmt.Errorf("hash plugin: %w", err)
		}
		if subtle.ConstantTimeCompare(sum, p.pin) != 1 {
			got := hex.EncodeToString(sum)
			return &refusedError{got: got, reason: "sha256 mismatch: pinned " + hex.EncodeToString(p.pin) + ", file has " + got}
		}
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return err
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		_ = stdoutR.Close()
		_ = stdoutW.Close()
		return err
	}
	cmd := &exec.Cmd{
		Path:        p.path,
		Args:        []string{p.path},
		Env:         p.env,
		Stdout:      stdoutW,
		Stderr:      stderrW,
		SysProcAttr: sysProcAttr(),
	}
	execFromFile(cmd, f)
	p.mu.Lock()
	if p.killed {
		p.mu.Unlock()
		err = errors.New("killed before it started")
	} else {
		err = startCmd(cmd)
		if err == nil {
			p.pid = cmd.Process.Pid
		}
		p.mu.Unlock()
	}
	_ = stdoutW.Close()
	_ = stderrW.Close()
	if err != nil {
		_ = stdoutR.Close()
		_ = stderrR.Close()
		return err
	}
	p.stdout, p.stderr = stdoutR, stderrR
	p.stderrLines = newStderrLines(stderrR)
	go p.reap(cmd)
	return nil
}

// pipeGrace is how long the host keeps reading a dead plugin's stdout and
// stderr (its last log lines, a panic) before closing them, in case a
// process outside its group still holds them open.
const pipeGrace = 500 * time.Millisecond

// reap waits for the process to exit, kills what is left of its group while
// the group id cannot yet be reused, then reaps it.
func (p *process) reap(cmd *exec.Cmd) {
	var err error
	if waitExit(p.pid) {
		p.mu.Lock()
		p.exiting = true
		_ = killGroup(p.pid)
		p.mu.Unlock()
		err = cmd.Wait()
	} else {
		err = cmd.Wait()
		p.mu.Lock()
		p.exiting = true
		_ = killGroup(p.pid) // the group id may have been reused: rare, and outside Linux only
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.waitErr = err
	p.mu.Unlock()
	close(p.done)
	unregister(p)
	time.AfterFunc(pipeGrace, func() {
		_ = p.stdout.Close()
		_ = p.stderr.Close()
	})
}

// removeSocket removes the process's private socket directory (and so its
// socket). The connection the host made stays up: a plugin is reached once,
// at start, and a socket left on disk is what a killed host leaves behind.
func (p *process) removeSocket() {
	p.mu.Lock()
	dir := p.socketDir
	p.mu.Unlock()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

// isListener accepts a connection whose listening end is this process,
// and refuses any other (plugin.PeerCredentials), remembering why.
func (p *process) isListener(peer plugin.Peer) error {
	p.mu.Lock()
	pid := p.pid
	p.mu.Unlock()
	if peer.Pid == pid && peer.UID == os.Geteuid() {
		return nil
	}
	err := fmt.Errorf("plugin %s: the socket is held by pid %d (uid %d), not by the plugin (pid %d, uid %d): refusing to connect",
		p.path, peer.Pid, peer.UID, pid, os.Geteuid())
	if peer.UID == os.Geteuid() && parentOf(peer.Pid) == pid {
		err = fmt.Errorf("plugin %s: the socket is held by pid %d, a child of the plugin (pid %d), not by the plugin itself: "+
			"a wrapper script must exec the plugin (exec /usr/bin/python3 plugin.py), not run it as a child (%s#peers)",
			p.path, peer.Pid, pid, protocolPage)
	}
	p.mu.Lock()
	p.refused = err
	p.mu.Unlock()
	return err
}

// refusal returns why the host refused the process listening on the
// plugin's socket, or nil.
func (p *process) refusal() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// dial connects to the socket the plugin's handshake line named, as
// go-plugin's own dialer does, and remembers why it could not.
func (p *process) dial(ctx context.Context, _ string) (net.Conn, error) {
	p.mu.Lock()
	addr := p.addr
	p.mu.Unlock()
	if addr == nil {
		return nil, errors.New("no plugin address")
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, addr.Network(), addr.String())
	if err != nil {
		p.mu.Lock()
		p.dialErr = err
		p.mu.Unlock()
	}
	return conn, err
}

// dialError returns why the host could not connect to the plugin's socket,
// or nil.
func (p *process) dialError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dialErr
}

// kill kills the plugin's process group (or stops it from starting).
func (p *process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killed = true
	if p.pid != 0 && !p.exiting {
		_ = killGroup(p.pid)
	}
}

// exited reports whether the process has exited and been reaped.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitExited waits up to d (and not past ctx) for the process to be reaped.
func (p *process) waitExited(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-ctx.Done():
	case <-t.C:
	}
	return p.exited()
}

// diedOnItsOwn reports whether the process, once started, ended without
// being killed by the host (it exited, or a signal the host did not send
// killed it), waiting up to a second for it to be reaped.
func (p *process) diedOnItsOwn(ctx context.Context) bool {
	if p.ID() == "" || !p.waitExited(ctx, time.Second) {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var ee *exec.ExitError
	if !errors.As(p.waitErr, &ee) {
		return p.waitErr == nil
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL || !p.killed
}

// status describes how the process ended ("exit status 2", "signal:
// killed"), or says it is still running.
func (p *process) status() string {
	if !p.exited() {
		return "still running"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waitErr == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ProcessState.String()
	}
	return p.waitErr.Error()
}

// Wait implements runner.Runner. A plugin that keyship killed itself (Close,
// a deadline, a restart) reads as a clean exit, so that go-plugin logs it
// below ERROR: only a plugin that died on its own is an error in the log.
func (p *process) Wait(context.Context) error {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killed && killedBySIGKILL(p.waitErr) {
		return nil
	}
	return p.waitErr
}

// killedBySIGKILL reports whether err is the exit of a process that SIGKILL
// ended.
func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// Kill implements runner.Runner: it kills the whole process group.
func (p *process) Kill(context.Context) error {
	p.kill()
	return nil
}

// Stdout implements runner.Runner.
func (p *process) Stdout() io.ReadCloser { return p.stdout }

// Stderr implements runner.Runner: the plugin's stderr, with the JSON log
// lines that would crash go-plugin's log parser made safe (stderrLines).
func (p *process) Stderr() io.ReadCloser { return p.stderrLines }

// Name implements runner.Runner: the configured path, which names the
// plugin's lines in the host log.
func (p *process) Name() string { return p.path }

// ID implements runner.Runner.
func (p *process) ID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid == 0 {
		return ""
	}
	return strconv.Itoa(p.pid)
}

// Diagnose implements runner.Runner.
func (p *process) Diagnose(context.Context) string {
	return "the file may not be a keyship backend plugin for this system, or it failed before the plugin handshake (its stderr is in the host log at --log-level debug)"
}

// PluginToHost implements runner.AddrTranslator: host and plugin share a
// file system.
func (p *process) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

// HostToPlugin implements runner.AddrTranslator.
func (p *process) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

var _ runner.Runner = (*process)(nil)

// hashFile returns the SHA-256 of f's content, read from its start.
func hashFile(f *os.File) ([]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62)); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// fileSHA256 returns the hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	sum, err := hashFile(f)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum), nil
}

// live are the plugin processes this host process is starting or has started
// and not yet reaped, for KillAll. A process is registered when go-plugin
// gives it its socket directory, before the exec.
var live = struct {
	sync.Mutex
	procs map[*process]struct{}
	dying bool // the host is dying of a signal: no more starts
}{procs: map[*process]struct{}{}}

// errHostDying refuses a plugin start once HandleSignals has cleaned up.
var errHostDying = errors.New("keyship is exiting on a signal")

// register adds p to live, or refuses it (removing its socket directory)
// when the host is dying.
func register(p *process) error {
	live.Lock()
	defer live.Unlock()
	if live.dying {
		p.removeSocket()
		return errHostDying
	}
	live.procs[p] = struct{}{}
	return nil
}

// starting counts plugin starts that have not yet reached register (or
// failed before it); idle is closed whenever the count falls to zero, so the
// signal handler waits on that event rather than polling.
var starting = struct {
	sync.Mutex
	n    int
	idle chan struct{}
}{}

// beginStart counts a start until the returned function is first called.
func beginStart() (done func()) {
	starting.Lock()
	if starting.n == 0 {
		starting.idle = make(chan struct{})
	}
	starting.n++
	starting.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			starting.Lock()
			defer starting.Unlock()
			if starting.n--; starting.n == 0 {
				close(starting.idle)
			}
		})
	}
}

// awaitStarts waits until every start has reached register, or for at most
// d. The window it waits on (go-plugin's socket directory made, register not
// yet run) is a few instructions long: only a starved CPU stretches it, so d
// only bounds a host that would otherwise never exit.
func awaitStarts(d time.Duration) {
	starting.Lock()
	if starting.n == 0 {
		starting.Unlock()
		return
	}
	idle := starting.idle
	starting.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}

func unregister(p *process) {
	live.Lock()
	delete(live.procs, p)
	live.Unlock()
}
