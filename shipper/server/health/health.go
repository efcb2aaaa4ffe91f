// Package health says whether keyship serve can do its job: liveness
// (/healthz: the process answers), readiness (/readyz, and grpc.health.v1 on
// the API: every configured backend answered its last probe) and the count
// of plugin restarts.
//
// A Prober asks every configured backend for its Info at start and then
// periodically. A backend is ready when the last probe got an answer from
// the process it was sent to: a plugin that died since the probe before is
// started again by the host (and the probe answered by the new process),
// but that probe marks it unready, so that a crashing plugin shows, and the
// next probe marks it ready again.
//
// Quickstart (what keyship serve does):
//
//	p := health.New(h.Loader(), names, health.WithInterval(10*time.Second))
//	go p.Run(ctx)
//	mux.Handle("/healthz", p.Liveness()); mux.Handle("/readyz", p.Readiness())
//	api := server.Handler(srv, server.WithHealth(p))
package health

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/proto/keyship/host/v1/hostv1connect"
)

// Backends gives a backend by its configured name: a *loader.Loader.
type Backends interface {
	Backend(ctx context.Context, name string) (plugin.Backend, error)
}

// restartable is a backend running as a plugin process that counts its
// starts (*launch.Subprocess).
type restartable interface{ Starts() int }

// Status is one backend's state after its last probe.
type Status struct {
	Backend string
	Ready   bool
	// Detail is the backend's name and version when ready, else why not
	// (the probe's error, or that the plugin was restarted). It holds no
	// secret.
	Detail string
	// Probed is when the last probe ended.
	Probed time.Time
}

// Prober probes the backends. It is safe for concurrent use.
type Prober struct {
	backends Backends
	names    []string
	interval time.Duration
	timeout  time.Duration

	mu       sync.Mutex
	checks   []check // AddCheck's, probed after the backends
	state    map[string]Status
	checked  map[string]Status // by check name
	starts   map[string]int    // plugin starts seen by the last probe
	stopping bool
}

// check is a dependency other than a backend that readiness needs.
type check struct {
	name string
	f    func(context.Context) error
}

// AddCheck makes readiness depend on f too (e.g. keyship serve --ha's
// shared state): every probe calls it, bounded by the probe timeout, and
// the Prober is not ready while f's last call failed. name says what it
// checks in /readyz ("<name>: ok" or "<name>: not ready (<error>)"); f's
// error must hold no secret.
func (p *Prober) AddCheck(name string, f func(context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checks = append(p.checks, check{name: name, f: f})
}

// Option changes a Prober.
type Option func(*Prober)

// WithInterval sets how often the backends are probed (default 10 s).
func WithInterval(d time.Duration) Option { return func(p *Prober) { p.interval = d } }

// WithTimeout bounds one backend's probe (default 5 s).
func WithTimeout(d time.Duration) Option { return func(p *Prober) { p.timeout = d } }

// New returns a Prober of the backends called names. Until its first probe
// it is not ready.
func New(b Backends, names []string, opts ...Option) *Prober {
	p := &Prober{backends: b, names: slices.Sorted(slices.Values(names)), interval: 10 * time.Second, timeout: 5 * time.Second,
		state: map[string]Status{}, checked: map[string]Status{}, starts: map[string]int{}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Run probes at once and then every interval until ctx ends.
func (p *Prober) Run(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.Probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Probe asks every backend for its Info once, one after the other.
func (p *Prober) Probe(ctx context.Context) {
	for _, name := range p.names {
		st := p.probe(ctx, name)
		p.mu.Lock()
		p.state[name] = st
		p.mu.Unlock()
	}
	p.mu.Lock()
	checks := slices.Clip(p.checks)
	p.mu.Unlock()
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, p.timeout)
		err := c.f(cctx)
		cancel()
		st := Status{Backend: c.name, Ready: err == nil, Detail: "ok", Probed: time.Now()}
		if err != nil {
			st.Detail = err.Error()
		}
		p.mu.Lock()
		p.checked[c.name] = st
		p.mu.Unlock()
	}
}

func (p *Prober) probe(ctx context.Context, name string) Status {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	st := Status{Backend: name}
	b, err := p.backends.Backend(ctx, name)
	var info plugin.Info
	if err == nil {
		info, err = b.Info(ctx)
	}
	st.Probed = time.Now()
	if err != nil {
		st.Detail = err.Error()
		return st
	}
	if r, ok := b.(restartable); ok {
		n := r.Starts()
		p.mu.Lock()
		last, seen := p.starts[name]
		p.starts[name] = n
		p.mu.Unlock()
		if seen && n != last {
			st.Detail = fmt.Sprintf("the plugin process exited and was started again (%d restarts)", n-1)
			return st
		}
	}
	st.Ready, st.Detail = true, info.Name+" "+info.Version
	return st
}

// Restarts returns how many times backend plugin processes were started
// again after dying, as the last probes saw.
func (p *Prober) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, starts := range p.starts {
		n += max(starts-1, 0)
	}
	return n
}

// Ready reports whether every backend answered its last probe, every
// check (AddCheck) passed its last one and the server is not shutting
// down, with each backend's status.
func (p *Prober) Ready() (bool, []Status) {
	ready, sts, _ := p.ready()
	return ready, sts
}

// ready is Ready with the checks' statuses.
func (p *Prober) ready() (bool, []Status, []Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ready := !p.stopping
	out := make([]Status, 0, len(p.names))
	for _, name := range p.names {
		st, ok := p.state[name]
		if !ok {
			st = Status{Backend: name, Detail: "not probed yet"}
		}
		ready = ready && st.Ready
		out = append(out, st)
	}
	var checks []Status
	for _, c := range p.checks {
		st, ok := p.checked[c.name]
		if !ok {
			st = Status{Backend: c.name, Detail: "not probed yet"}
		}
		ready = ready && st.Ready
		checks = append(checks, st)
	}
	return ready, out, checks
}

// ShuttingDown makes the Prober not ready from now on.
func (p *Prober) ShuttingDown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopping = true
}

// Liveness serves /healthz: 200 "ok" while the process answers.
func (p *Prober) Liveness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}

// Readiness serves /readyz: 200 when Ready, else 503, with one line per
// backend ("backend file: ok (file 0.1.0)" or the reason it is not) and
// per check.
func (p *Prober) Readiness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ready, sts, checks := p.ready()
		var b strings.Builder
		p.mu.Lock()
		if p.stopping {
			b.WriteString("shutting down\n")
		}
		p.mu.Unlock()
		for _, st := range sts {
			state := "ok"
			if !st.Ready {
				state = "not ready"
			}
			fmt.Fprintf(&b, "backend %s: %s (%s)\n", st.Backend, state, st.Detail)
		}
		for _, st := range checks {
			if st.Ready {
				fmt.Fprintf(&b, "%s: ok\n", st.Backend)
			} else {
				fmt.Fprintf(&b, "%s: not ready (%s)\n", st.Backend, st.Detail)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write([]byte(b.String()))
	})
}

// Check implements grpchealth.Checker for the API: the empty service name
// and keyship.host.v1.ShipperService are SERVING when Ready, else
// NOT_SERVING; other names are NotFound.
func (p *Prober) Check(_ context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if req.Service != "" && req.Service != hostv1connect.ShipperServiceName {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %q", req.Service))
	}
	if ready, _ := p.Ready(); ready {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
}
