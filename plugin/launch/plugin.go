package launch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/keyship/keyship/plugin"
)

// Subprocess is a backend plugin running as a child process. It implements
// plugin.Backend, plugin.Lister and plugin.Issuer.
//
// When the process dies it is started again, reconfigured with the settings
// it last accepted, and the call that found it dead is retried once: a call
// restarts the plugin at most once. A plugin that dies again fails the call
// with an error that wraps plugin.ErrPluginExited and says how the process
// ended ("backend kv: plugin keyship-backend-kv exited (exit status 2)");
// the resolver does not retry it.
type Subprocess struct {
	name   string
	path   string
	pin    []byte // pinned SHA-256, or nil; checked at every exec
	logger hclog.Logger

	sumOnce sync.Once
	sum     string // hex SHA-256 of the binary, computed when asked

	mu      sync.Mutex
	client  *goplugin.Client
	proc    *process
	backend plugin.Backend
	addr    net.Addr
	config  map[string]string // last accepted Configure settings
	closed  bool
	starts  int

	env []string // names and NAME* patterns of host variables passed through

	keepSocket bool // tests: leave the socket on disk to connect to it
}

// StartOption changes how Start runs a plugin.
type StartOption func(*Subprocess)

// WithEnv passes the host environment variables named (exact names, or a
// prefix and "*", e.g. "VAULT_*") to the plugin, on top of the minimal
// environment every plugin gets: PATH, TMPDIR, the locale (LANG, LANGUAGE,
// LC_*) and plugin.LogLevelEnv (from the host's environment, else the host
// logger's level). Nothing else reaches a plugin.
func WithEnv(names ...string) StartOption {
	return func(s *Subprocess) { s.env = append(s.env, names...) }
}

// Start starts the plugin binary at path as backend name. With a pin (hex
// SHA-256; empty means "do not pin") the binary is opened at every exec, the
// open file hashed and, when it matches, that same file executed (on Linux:
// the bytes hashed are the bytes executed, whatever happens to the path);
// a binary that does not match is refused with an error naming the file and
// both sums, and so is a pinned binary that a user other than root and
// keyship's own could write. The backend is not yet configured. Close stops
// it. The plugin's environment is minimal (see WithEnv).
func Start(ctx context.Context, name, path, pin string, logger hclog.Logger, opts ...StartOption) (*Subprocess, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	s := &Subprocess{name: name, path: path, logger: logger.Named(name)}
	for _, o := range opts {
		o(s)
	}
	if pin != "" {
		want, err := hex.DecodeString(pin)
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("backend %s: sha256 pin %q is not 64 hex digits: %w", name, pin, plugin.ErrInvalidConfig)
		}
		s.pin = want
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// SHA256 returns the hex SHA-256 of the plugin binary (hashing it on the
// first call), or "" when the file cannot be read.
func (s *Subprocess) SHA256() string {
	s.sumOnce.Do(func() { s.sum, _ = fileSHA256(s.path) })
	return s.sum
}

// Path returns the plugin binary's path.
func (s *Subprocess) Path() string { return s.path }

// Starts returns how many times the process was started (1 + restarts).
func (s *Subprocess) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

// Pid returns the process id of the running plugin, or 0.
func (s *Subprocess) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return 0
	}
	s.proc.mu.Lock()
	defer s.proc.mu.Unlock()
	return s.proc.pid
}

// exitedError is a plugin process that died: its message says which and
// how, and it wraps plugin.ErrPluginExited.
type exitedError struct{ msg string }

func (e *exitedError) Error() string { return e.msg }
func (e *exitedError) Unwrap() error { return plugin.ErrPluginExited }

// exited returns the error for the plugin process p that died, after
// waiting a little (not past ctx) for its exit status.
func (s *Subprocess) exited(ctx context.Context, p *process, when string) error {
	p.waitExited(ctx, time.Second)
	return &exitedError{msg: fmt.Sprintf("backend %s: plugin %s exited (%s)%s", s.name, filepath.Base(s.path), p.status(), when)}
}

// exitAtDebug is the logger go-plugin gets: its "plugin process exited" at
// INFO (a plugin keyship killed itself, see process.Wait: every CLI run ends
// so) is logged at DEBUG; a plugin that died on its own stays an ERROR.
type exitAtDebug struct{ hclog.Logger }

func (l exitAtDebug) Info(msg string, args ...any) {
	if msg == "plugin process exited" {
		l.Logger.Debug(msg, args...)
		return
	}
	l.Logger.Info(msg, args...)
}

// protocolPage is where the wire protocol a plugin must follow is written
// down; errors about a plugin that breaks it point there.
const protocolPage = "proto/keyship/backend/v1/PROTOCOL.md"

// badHandshake reports whether err, from go-plugin's start, is about the
// handshake line the plugin printed (rather than no line at all: a timeout,
// or an exit, which the caller reports by the deadline or the exit status).
func badHandshake(err error) bool {
	msg := err.Error()
	return !strings.HasPrefix(msg, "timeout while waiting for plugin to start") &&
		!strings.HasPrefix(msg, "plugin exited before we could connect")
}

// firstLine returns s up to its first newline.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// defaultStartTimeout bounds a plugin start when the caller's context has no
// deadline.
const defaultStartTimeout = time.Minute

// start launches the process and connects to it, within ctx's deadline: exec,
// handshake, Info and (on a restart) Configure all fit in it. When ctx ends
// first the plugin's process group is killed and reaped, and the error names
// the backend, the binary and the time it had. s.mu must be held.
func (s *Subprocess) start(ctx context.Context) error {
	begin := time.Now()
	budget := defaultStartTimeout
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl)
	}
	p := newProcess(s.path, s.pin, nil)
	tail := &stderrTail{}
	// Until the runner registers the process, its socket directory (made
	// by go-plugin just before) is unknown to KillAll: the signal handler
	// waits for such starts to reach register, which cleans up after them.
	unregistered := beginStart()
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goHandshake,
		Plugins:         goplugin.PluginSet{plugin.PluginName: &GRPCPlugin{}},
		RunnerFunc: func(_ hclog.Logger, cmd *exec.Cmd, socketDir string) (runner.Runner, error) {
			p.mu.Lock()
			// cmd.Env is go-plugin's own: the handshake cookie, PLUGIN_*.
			p.env = append(pluginEnv(hostEnv(), s.env, s.logger.GetLevel()), cmd.Env...)
			p.socketDir = socketDir
			p.mu.Unlock()
			defer unregistered()
			if err := register(p); err != nil {
				return nil, err
			}
			return p, nil
		},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Stderr:           tail, // every line, as well as the log
		// Pinned, as stderrLines examines lines up to this length.
		PluginLogBufferSize: stderrLineMax,
		SkipHostEnv:         true,
		// No AutoMTLS: the socket is in go-plugin's private 0700 directory,
		// the plugin accepts only its parent and the host only its child
		// (plugin.PeerCredentials), which costs nothing where AutoMTLS's
		// P-521 certificates and handshake were a third of the start.
		Logger: exitAtDebug{s.logger},
		GRPCDialOptions: append(plugin.DialOptions(),
			grpc.WithTransportCredentials(plugin.PeerCredentials(p.isListener)),
			grpc.WithContextDialer(p.dial)), // go-plugin's, but remembering why a dial failed
		StartTimeout: max(budget, time.Millisecond),
	})
	fail := func(err error) error {
		p.kill()
		client.Kill() // returns once the process is reaped and its pipes drained
		p.removeSocket()
		unregister(p) // a process that never ran is not reaped
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, plugin.ErrInvalidConfig) {
			err = fmt.Errorf("backend %s: plugin %s did not start within %s: %w",
				s.name, s.path, budget.Round(100*time.Millisecond), ctxErr)
			s.logger.Debug("plugin start abandoned", "path", s.path, "after", time.Since(begin))
		}
		if last := tail.String(); last != "" {
			// After Kill: go-plugin has copied all of stderr.
			err = fmt.Errorf("%w; its last lines on stderr:%s", err, last)
		}
		return err
	}
	// go-plugin's Start waits for the handshake on a timer of its own and
	// cannot be cancelled; killing the process group ends the wait.
	type started struct {
		addr net.Addr
		err  error
	}
	done := make(chan started, 1)
	go func() {
		addr, err := client.Start()
		unregistered() // a start that failed before its runner ran
		done <- started{addr, err}
	}()
	var st started
	select {
	case st = <-done:
	case <-ctx.Done():
		p.kill()
		st = <-done
	}
	addr, err := st.addr, st.err
	var refused *refusedError
	switch {
	case errors.As(err, &refused):
		return fail(fmt.Errorf("backend %s: refusing to load plugin %s: %s: %w", s.name, s.path, refused.reason, plugin.ErrInvalidConfig))
	case err != nil && ctx.Err() != nil:
		return fail(err)
	case err != nil && p.diedOnItsOwn(ctx):
		return fail(s.exited(ctx, p, " before the plugin handshake (a plugin that exits at once often found "+
			plugin.Handshake.MagicCookieKey+" or PLUGIN_PROTOCOL_VERSIONS not as it expected: "+protocolPage+"#handshake)"))
	case err != nil && p.ID() != "" && strings.HasPrefix(err.Error(), "unsupported plugin protocol"):
		// go-plugin reads a missing fifth field as its old "netrpc".
		return fail(fmt.Errorf("backend %s: plugin %s (pid %s): bad handshake: field 5 of the handshake line must be grpc (CORE|APP|unix|SOCKET|grpc; a line without it means go-plugin's netrpc): %s (%s#handshake): %w",
			s.name, s.path, p.ID(), firstLine(err.Error()), protocolPage, plugin.ErrInvalidConfig))
	case err != nil && p.ID() != "" && badHandshake(err):
		return fail(fmt.Errorf("backend %s: plugin %s (pid %s): bad handshake: %s (%s#handshake): %w",
			s.name, s.path, p.ID(), firstLine(err.Error()), protocolPage, plugin.ErrInvalidConfig))
	case err != nil:
		return fail(fmt.Errorf("backend %s: start plugin %s: %w: %w", s.name, s.path, err, plugin.ErrPluginExited))
	}
	handshake := fmt.Sprintf("%d|%d|%s|%s|%s", goplugin.CoreProtocolVersion, client.NegotiatedVersion(), addr.Network(), addr, client.Protocol())
	p.mu.Lock()
	socketDir := p.socketDir
	p.addr = addr
	p.mu.Unlock()
	if addr.Network() != "unix" || filepath.Dir(addr.String()) != filepath.Clean(socketDir) {
		return fail(fmt.Errorf("backend %s: refusing plugin %s (pid %s): its handshake line %q does not name a unix socket in PLUGIN_UNIX_SOCKET_DIR (%s), the private directory keyship made for it (%s#socket): %w",
			s.name, s.path, p.ID(), handshake, socketDir, protocolPage, plugin.ErrInvalidConfig))
	}
	rpc, err := client.Client()
	if err != nil {
		return fail(fmt.Errorf("backend %s: plugin %s: %w: %w", s.name, s.path, err, plugin.ErrPluginExited))
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		return fail(fmt.Errorf("backend %s: plugin %s: %w", s.name, s.path, err))
	}
	b := raw.(plugin.Backend)
	info, err := b.Info(ctx)
	if err != nil {
		if refusal := p.refusal(); refusal != nil {
			return fail(fmt.Errorf("backend %s: %w: %w", s.name, refusal, plugin.ErrInvalidConfig))
		}
		if dialErr := p.dialError(); dialErr != nil && !p.exited() {
			return fail(fmt.Errorf("backend %s: plugin %s (pid %s) printed the handshake line %q, but nothing accepts connections at its socket (%s#socket): %w: %w",
				s.name, s.path, p.ID(), handshake, protocolPage, dialErr, plugin.ErrInvalidConfig))
		}
		if s.dead(ctx, client, p, err) {
			return fail(s.exited(ctx, p, " during Info"))
		}
		return fail(fmt.Errorf("backend %s: plugin %s: Info: %w", s.name, s.path, err))
	}
	if !slices.Contains(info.ProtocolVersions, plugin.ProtocolVersion) {
		return fail(fmt.Errorf("backend %s: plugin %s speaks backend protocol %v, this host speaks %d: %w",
			s.name, s.path, info.ProtocolVersions, plugin.ProtocolVersion, plugin.ErrUnsupported))
	}
	if s.config != nil {
		if err := b.Configure(ctx, s.config); err != nil {
			if s.dead(ctx, client, p, err) {
				return fail(s.exited(ctx, p, " while being reconfigured"))
			}
			return fail(fmt.Errorf("backend %s: reconfigure restarted plugin: %w", s.name, err))
		}
	}
	if !s.keepSocket {
		p.removeSocket()
	}
	s.client, s.proc, s.backend, s.addr = client, p, b, addr
	s.starts++
	return nil
}

// current returns the live backend client and its process, restarting a
// process found dead; restarted reports that it did.
func (s *Subprocess) current(ctx context.Context) (b plugin.Backend, p *process, restarted bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, false, fmt.Errorf("backend %s: plugin closed: %w", s.name, plugin.ErrPluginExited)
	}
	if s.proc != nil && !s.proc.exited() {
		return s.backend, s.proc, false, nil
	}
	if err := s.restartLocked(ctx, s.proc); err != nil {
		return nil, nil, true, err
	}
	return s.backend, s.proc, true, nil
}

// restart replaces the process old, unless another goroutine has already
// done so.
func (s *Subprocess) restart(ctx context.Context, old *process) (plugin.Backend, *process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, fmt.Errorf("backend %s: plugin closed: %w", s.name, plugin.ErrPluginExited)
	}
	if s.proc != old {
		return s.backend, s.proc, nil
	}
	if err := s.restartLocked(ctx, old); err != nil {
		return nil, nil, err
	}
	return s.backend, s.proc, nil
}

func (s *Subprocess) restartLocked(ctx context.Context, old *process) error {
	if old != nil {
		old.kill()
		s.logger.Warn("backend plugin exited; restarting it", "path", s.path, "status", old.status())
	}
	if s.client != nil {
		s.client.Kill()
	}
	s.client, s.proc, s.backend = nil, nil, nil
	return s.start(ctx)
}

// dead reports whether err from a call to the plugin process p means that
// the process is gone or no longer answers (as opposed to an error the
// backend returned). A process that no longer answers is killed.
func (s *Subprocess) dead(ctx context.Context, client *goplugin.Client, p *process, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	switch plugin.Code(err) {
	case codes.Unavailable, codes.Internal, codes.Unknown:
		// What a broken transport looks like ("error reading from server:
		// EOF", "stream terminated by RST_STREAM"), and also what a live
		// backend may say: ask the process.
	default:
		return false
	}
	if p.exited() {
		return true
	}
	if s.answers(ctx, client) {
		return false
	}
	p.kill()
	return true
}

// answers reports whether the plugin answers a gRPC health check within a
// second.
func (s *Subprocess) answers(ctx context.Context, client *goplugin.Client) bool {
	rpc, err := client.Client()
	if err != nil {
		return false
	}
	g, ok := rpc.(*goplugin.GRPCClient)
	if !ok {
		return rpc.Ping() == nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = grpc_health_v1.NewHealthClient(g.Conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: goplugin.GRPCServiceName})
	return err == nil
}

// call runs f against the live backend. If the plugin died under it, the
// process is restarted and f retried once, unless this call has already
// restarted it; a plugin that dies again fails the call with an
// *exitedError (plugin.ErrPluginExited).
func call[T any](ctx context.Context, s *Subprocess, op string, f func(plugin.Backend) (T, error)) (T, error) {
	var zero T
	b, p, restarted, err := s.current(ctx)
	if err != nil {
		return zero, err
	}
	s.mu.Lock()
	client := s.client
	s.mu.Unlock()
	out, err := f(b)
	if !s.dead(ctx, client, p, err) {
		return out, err
	}
	if restarted {
		return zero, s.exited(ctx, p, " during "+op+", after a restart")
	}
	s.logger.Debug("plugin died during a call; restarting it and retrying the call once", "call", op, "status", p.status())
	if b, p, err = s.restart(ctx, p); err != nil {
		return zero, err
	}
	s.mu.Lock()
	client = s.client
	s.mu.Unlock()
	out, err = f(b)
	if s.dead(ctx, client, p, err) {
		return zero, s.exited(ctx, p, " during "+op+", after a restart")
	}
	return out, err
}

// Info implements plugin.Backend.
func (s *Subprocess) Info(ctx context.Context) (plugin.Info, error) {
	return call(ctx, s, "Info", func(b plugin.Backend) (plugin.Info, error) { return b.Info(ctx) })
}

// Configure implements plugin.Backend; the settings are kept to reconfigure a
// restarted process.
func (s *Subprocess) Configure(ctx context.Context, config map[string]string) error {
	_, err := call(ctx, s, "Configure", func(b plugin.Backend) (struct{}, error) { return struct{}{}, b.Configure(ctx, config) })
	if err == nil {
		s.mu.Lock()
		s.config = maps.Clone(config)
		s.mu.Unlock()
	}
	return err
}

// Get implements plugin.Backend.
func (s *Subprocess) Get(ctx context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	return call(ctx, s, "Get", func(b plugin.Backend) ([]plugin.Result, error) { return b.Get(ctx, refs) })
}

// List implements plugin.Lister.
func (s *Subprocess) List(ctx context.Context, prefix string) ([]string, error) {
	return call(ctx, s, "List", func(b plugin.Backend) ([]string, error) { return b.(plugin.Lister).List(ctx, prefix) })
}

// Close kills the plugin's process group and returns; the process is
// reaped in the background (a backend has nothing to flush: go-plugin's
// graceful shutdown cost a round trip, and waiting for the kernel to tear
// down a killed process 2-7ms, both on every CLI run's way out). Calls
// after Close fail with ErrPluginExited.
func (s *Subprocess) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.proc != nil {
		s.proc.kill()
	}
	if c := s.client; c != nil {
		go c.Kill() // returns once the process is reaped and its pipes drained
	}
	return nil
}

// Issue implements plugin.Issuer. A dead plugin is restarted before the
// call, but a failed Issue is not retried: each call issues a certificate.
func (s *Subprocess) Issue(ctx context.Context, req plugin.IssueRequest) (plugin.Issued, error) {
	b, p, _, err := s.current(ctx)
	if err != nil {
		return plugin.Issued{}, err
	}
	s.mu.Lock()
	client := s.client
	s.mu.Unlock()
	out, err := b.(plugin.Issuer).Issue(ctx, req)
	if s.dead(ctx, client, p, err) {
		return plugin.Issued{}, s.exited(ctx, p, " during Issue")
	}
	return out, err
}
