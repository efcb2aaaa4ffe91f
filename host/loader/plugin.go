package loader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/keyship/keyship/plugin"
)

// Subprocess is a backend plugin running as a child process. It implements
// plugin.Backend and plugin.Lister. When the process dies it is started
// again, reconfigured with the settings it last accepted, and the call that
// found it dead is retried once (every backend call is idempotent).
type Subprocess struct {
	name   string
	path   string
	pin    []byte // pinned SHA-256, or nil; go-plugin checks it at every exec
	logger hclog.Logger

	sumOnce sync.Once
	sum     string // hex SHA-256 of the binary, computed when asked

	mu      sync.Mutex
	client  *goplugin.Client
	backend plugin.Backend
	config  map[string]string // last accepted Configure settings
	closed  bool
	starts  int
}

// Start starts the plugin binary at path as backend name, gRPC over AutoMTLS.
// With a pin (hex SHA-256; empty means "do not pin") go-plugin hashes the
// binary at every exec and refuses one that does not match; the error names
// the file and both sums. The backend is not yet configured. Close stops it.
func Start(ctx context.Context, name, path, pin string, logger hclog.Logger) (*Subprocess, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	s := &Subprocess{name: name, path: path, logger: logger.Named(name)}
	if pin != "" {
		want, err := hex.DecodeString(pin)
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("backend %s: sha256 pin %q is not 64 hex digits: %w", name, pin, plugin.ErrInvalidConfig)
		}
		s.pin = want
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
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
	if s.client == nil || s.client.ReattachConfig() == nil {
		return 0
	}
	return s.client.ReattachConfig().Pid
}

// start launches the process; s.mu must be held or s not yet shared.
func (s *Subprocess) start(ctx context.Context) error {
	var secure *goplugin.SecureConfig
	if s.pin != nil {
		secure = &goplugin.SecureConfig{Checksum: s.pin, Hash: sha256.New()}
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		Plugins:          goplugin.PluginSet{plugin.PluginName: &plugin.GRPCPlugin{}},
		Cmd:              exec.Command(s.path),
		SecureConfig:     secure,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		Managed:          true,
		Logger:           s.logger,
		GRPCDialOptions:  plugin.DialOptions(),
	})
	rpc, err := client.Client()
	if errors.Is(err, goplugin.ErrChecksumsDoNotMatch) {
		client.Kill()
		return fmt.Errorf("backend %s: refusing to load plugin %s: sha256 mismatch: pinned %s, file has %s: %w",
			s.name, s.path, hex.EncodeToString(s.pin), s.SHA256(), plugin.ErrInvalidConfig)
	}
	if err != nil {
		client.Kill()
		return fmt.Errorf("backend %s: start plugin %s: %w: %w", s.name, s.path, err, plugin.ErrPluginExited)
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		client.Kill()
		return fmt.Errorf("backend %s: plugin %s: %w", s.name, s.path, err)
	}
	b := raw.(plugin.Backend)
	info, err := b.Info(ctx)
	if err != nil {
		client.Kill()
		return fmt.Errorf("backend %s: plugin %s: Info: %w", s.name, s.path, err)
	}
	if !slices.Contains(info.ProtocolVersions, plugin.ProtocolVersion) {
		client.Kill()
		return fmt.Errorf("backend %s: plugin %s speaks backend protocol %v, this host speaks %d: %w",
			s.name, s.path, info.ProtocolVersions, plugin.ProtocolVersion, plugin.ErrUnsupported)
	}
	if s.config != nil {
		if err := b.Configure(ctx, s.config); err != nil {
			client.Kill()
			return fmt.Errorf("backend %s: reconfigure restarted plugin: %w", s.name, err)
		}
	}
	s.client, s.backend = client, b
	s.starts++
	return nil
}

// current returns the live backend client, restarting a dead process.
func (s *Subprocess) current(ctx context.Context) (plugin.Backend, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("backend %s: plugin closed: %w", s.name, plugin.ErrPluginExited)
	}
	if s.client != nil && !s.client.Exited() {
		return s.backend, nil
	}
	return s.restartLocked(ctx, s.client)
}

// restart replaces the process that served old, unless another goroutine has
// already done so.
func (s *Subprocess) restart(ctx context.Context, old plugin.Backend) (plugin.Backend, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("backend %s: plugin closed: %w", s.name, plugin.ErrPluginExited)
	}
	if s.backend != old {
		return s.backend, nil
	}
	return s.restartLocked(ctx, s.client)
}

func (s *Subprocess) restartLocked(ctx context.Context, old *goplugin.Client) (plugin.Backend, error) {
	if old != nil {
		old.Kill()
	}
	s.logger.Warn("backend plugin exited; restarting", "path", s.path)
	s.client, s.backend = nil, nil
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s.backend, nil
}

// dead reports whether err means the plugin process is gone (as opposed to
// the store behind it being unavailable).
func (s *Subprocess) dead(err error) bool {
	if err == nil || !errors.Is(err, plugin.ErrUnavailable) {
		return false
	}
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil || c.Exited() {
		return true
	}
	rpc, cerr := c.Client()
	return cerr != nil || rpc.Ping() != nil
}

// call runs f against the live backend; if the plugin died under it, the
// process is restarted and f retried once.
func call[T any](ctx context.Context, s *Subprocess, f func(plugin.Backend) (T, error)) (T, error) {
	b, err := s.current(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	out, err := f(b)
	if !s.dead(err) {
		return out, err
	}
	if b, err = s.restart(ctx, b); err != nil {
		var zero T
		return zero, err
	}
	return f(b)
}

// Info implements plugin.Backend.
func (s *Subprocess) Info(ctx context.Context) (plugin.Info, error) {
	return call(ctx, s, func(b plugin.Backend) (plugin.Info, error) { return b.Info(ctx) })
}

// Configure implements plugin.Backend; the settings are kept to reconfigure a
// restarted process.
func (s *Subprocess) Configure(ctx context.Context, config map[string]string) error {
	_, err := call(ctx, s, func(b plugin.Backend) (struct{}, error) { return struct{}{}, b.Configure(ctx, config) })
	if err == nil {
		s.mu.Lock()
		s.config = maps.Clone(config)
		s.mu.Unlock()
	}
	return err
}

// Get implements plugin.Backend.
func (s *Subprocess) Get(ctx context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	return call(ctx, s, func(b plugin.Backend) ([]plugin.Result, error) { return b.Get(ctx, refs) })
}

// List implements plugin.Lister.
func (s *Subprocess) List(ctx context.Context, prefix string) ([]string, error) {
	return call(ctx, s, func(b plugin.Backend) ([]string, error) { return b.(plugin.Lister).List(ctx, prefix) })
}

// Close stops the plugin process. Calls after Close fail with ErrPluginExited.
func (s *Subprocess) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.client != nil {
		s.client.Kill()
	}
	return nil
}

// Issue implements plugin.Issuer. A dead plugin is restarted before the
// call, but a failed Issue is not retried: each call issues a certificate.
func (s *Subprocess) Issue(ctx context.Context, req plugin.IssueRequest) (plugin.Issued, error) {
	b, err := s.current(ctx)
	if err != nil {
		return plugin.Issued{}, err
	}
	return b.(plugin.Issuer).Issue(ctx, req)
}
