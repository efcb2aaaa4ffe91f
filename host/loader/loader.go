// Package loader gives the host one plugin.Backend per configured backend,
// whether it is built in (a library package running in-process) or a plugin
// binary keyship-backend-<name> running as a go-plugin subprocess.
//
// Subprocess plugins are started by package plugin/launch (checksum pin,
// private socket and peer checks, minimal environment, process group,
// deadline, restarts: see there), which the conformance kit plugin/plugintest
// uses too, so that a plugin the kit passes is loaded exactly as keyship
// loads it. A plugin that dies again after its one restart fails the call
// with an error wrapping plugin.ErrPluginExited, e.g. "backend kv: plugin
// keyship-backend-kv exited (exit status 2)", which the resolver does not
// retry.
//
// Quickstart:
//
//	cfg, _ := config.Load("keyship.yaml")
//	l := loader.New(cfg, loader.WithBuiltin("file", file.New))
//	defer l.Close()
//	b, err := l.Backend(ctx, "file") // started and configured on first use
package loader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
)

// Option changes a Loader.
type Option func(*Loader)

// WithBuiltin registers an in-process backend constructor under name. A
// configured backend with no plugin binary uses it.
func WithBuiltin(name string, newBackend func() plugin.Backend) Option {
	return func(l *Loader) { l.builtins[name] = newBackend }
}

// WithLogger sets the host logger plugin logs are folded into.
func WithLogger(logger hclog.Logger) Option {
	return func(l *Loader) { l.logger = logger }
}

// Loader starts and configures backends on first use. It is safe for
// concurrent use. Close stops every plugin process it started.
type Loader struct {
	cfg      *config.Config
	builtins map[string]func() plugin.Backend
	logger   hclog.Logger

	mu     sync.Mutex
	loaded map[string]*entry
}

type entry struct {
	mu      sync.Mutex
	done    bool
	backend plugin.Backend
	sub     *launch.Subprocess // nil for built-ins
	err     error
}

// New returns a Loader for cfg. Nothing is started until Backend is called.
func New(cfg *config.Config, opts ...Option) *Loader {
	l := &Loader{cfg: cfg, builtins: map[string]func() plugin.Backend{}, logger: hclog.NewNullLogger(), loaded: map[string]*entry{}}
	for _, o := range opts {
		o(l)
	}
	return l
}

// DefaultBackend returns the name of the backend for refs that name none.
func (l *Loader) DefaultBackend() string { return l.cfg.DefaultBackend }

// Backend returns the configured backend called name ("" means the default),
// starting and configuring it on first use, within ctx's deadline. A load
// that failed because ctx ended is tried again by the next call; any other
// failure is kept.
func (l *Loader) Backend(ctx context.Context, name string) (plugin.Backend, error) {
	if name == "" {
		name = l.cfg.DefaultBackend
		if name == "" {
			return nil, fmt.Errorf("ref names no backend and the config sets no default_backend: %w", plugin.ErrInvalidConfig)
		}
	}
	if _, ok := l.cfg.Backends[name]; !ok {
		return nil, fmt.Errorf("backend %q is not in the config (backends: %v): %w", name, l.names(), plugin.ErrInvalidConfig)
	}
	l.mu.Lock()
	e, ok := l.loaded[name]
	if !ok {
		e = &entry{}
		l.loaded[name] = e
	}
	l.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.done {
		e.backend, e.sub, e.err = l.load(ctx, name)
		e.done = e.err == nil || ctx.Err() == nil
	}
	return e.backend, e.err
}

func (l *Loader) names() []string {
	out := make([]string, 0, len(l.cfg.Backends))
	for n := range l.cfg.Backends {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (l *Loader) load(ctx context.Context, name string) (plugin.Backend, *launch.Subprocess, error) {
	bc := l.cfg.Backends[name]
	var (
		b   plugin.Backend
		sub *launch.Subprocess
	)
	if path := l.cfg.PluginPath(name); path != "" {
		var err error
		if sub, err = launch.Start(ctx, name, path, bc.SHA256, l.logger.Named("plugin"), launch.WithEnv(bc.Env...)); err != nil {
			return nil, nil, err
		}
		b = sub
	} else {
		newBackend, ok := l.builtins[name]
		if !ok {
			return nil, nil, fmt.Errorf("backend %q has no plugin binary (backends.%s.plugin) and is not built in: %w", name, name, plugin.ErrInvalidConfig)
		}
		b = newBackend()
	}
	if err := b.Configure(ctx, bc.Config); err != nil {
		if sub != nil {
			_ = sub.Close()
		}
		if errors.Is(err, plugin.ErrPluginExited) {
			return nil, nil, err // launch names the backend already
		}
		return nil, nil, fmt.Errorf("backend %s: %w", name, err)
	}
	return b, sub, nil
}

// Description is what `keyship plugins` shows of one backend.
type Description struct {
	Name    string
	Version string
	// Path is the plugin binary, or "built-in".
	Path   string
	SHA256 string
	Err    error
}

// Describe starts every configured backend and describes it, sorted by name.
// A backend that fails to load is described with its error.
func (l *Loader) Describe(ctx context.Context) []Description {
	var out []Description
	for _, name := range l.names() {
		d := Description{Name: name, Path: "built-in"}
		b, err := l.Backend(ctx, name)
		if err == nil {
			var info plugin.Info
			if info, err = b.Info(ctx); err == nil {
				d.Version = info.Version
			}
		}
		if sub := l.subprocess(name); sub != nil {
			d.Path, d.SHA256 = sub.Path(), sub.SHA256()
		} else if p := l.cfg.PluginPath(name); p != "" {
			d.Path = p
		}
		d.Err = err
		out = append(out, d)
	}
	return out
}

// subprocess returns the loaded plugin process of backend name, or nil.
func (l *Loader) subprocess(name string) *launch.Subprocess {
	l.mu.Lock()
	e := l.loaded[name]
	l.mu.Unlock()
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sub
}

// Close stops every plugin process the Loader started.
func (l *Loader) Close() error {
	for _, name := range l.names() {
		if sub := l.subprocess(name); sub != nil {
			_ = sub.Close()
		}
	}
	return nil
}

// HandleSignals is launch.HandleSignals, for a CLI command that loads
// plugins: SIGINT and SIGTERM kill every plugin process before the host dies
// of the signal. Call it as defer loader.HandleSignals()().
func HandleSignals(sigs ...os.Signal) (stop func()) { return launch.HandleSignals(sigs...) }
