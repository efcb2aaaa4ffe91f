// Package daemon is keyship serve as a library: the host API, the HTTPS
// fetch server and the metrics and health endpoints, each on its own
// listener with the same connection limits; the backend probes, the sweeper
// of expired jobs, the watch loop; SIGHUP (reopen the audit log), SIGTERM
// and SIGINT (stop); and the order in which all of it stops.
//
// It lives beside shipper/server rather than in it because it wires the
// packages that import shipper/server (audit, metrics).
//
// Quickstart:
//
//	err := daemon.Run(ctx, daemon.Config{
//		Host:        cfg, // the backends
//		Listen:      "unix:///run/keyship.sock",
//		FetchListen: "0.0.0.0:8443", FetchCertFile: "fetch.pem", FetchKeyFile: "fetch-key.pem",
//		Signals:     true,
//		Events:      func(ev daemon.Event) { log.Print(ev.Stage, " ", ev.Addr) },
//	})
//
// Run returns when ctx ends or (with Signals) SIGTERM or SIGINT arrives,
// after stopping in this order, each step reported as an Event:
//
//  1. ShuttingDown: /readyz and gRPC health answer not serving, the watch
//     loop stops;
//  2. APIClosed: the API stops accepting connections;
//  3. APIDrained: in-flight Ship, Check and Watch calls have finished (or
//     were cut after ShutdownTimeout);
//  4. FetchClosed: every fetch URI answers 503 with a reason, for
//     FetchLinger; FetchStopped: the fetch listener is closed;
//  5. MetricsStopped: the metrics listener is closed;
//  6. BackgroundStopped: probes and sweeps have stopped;
//  7. PluginsClosed: the backends' plugin processes are stopped;
//  8. AuditClosed: the audit log, which holds a line for every call above,
//     is closed.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/server/audit"
	"github.com/keyship/keyship/shipper/server/health"
	"github.com/keyship/keyship/shipper/server/metrics"
	"github.com/keyship/keyship/shipper/server/replicas"
	"github.com/keyship/keyship/shipper/watch"
)

// Config is what a daemon serves and how. Zero durations and limits take
// the defaults named on each field.
type Config struct {
	// Host is the backends' config. Required.
	Host *config.Config
	// HostOptions are passed to host.New before the daemon's own (metrics,
	// build cache): built-in backends, the logger.
	HostOptions []host.Option
	// BuildCache is how long stores built for one content are shared
	// between jobs (host.WithBuildCache); 0 builds every job anew.
	BuildCache time.Duration

	// Listen is the API's address: unix:///path or tcp://host:port.
	// Required.
	Listen string
	// TLS is the API's mutual-TLS config, required on tcp://.
	TLS *tls.Config

	// FetchListen is the HTTPS fetch server's host:port; "" serves no
	// fetch (TARGET_FETCH then fails).
	FetchListen string
	// FetchURL is the base URL agents fetch from (default
	// https://<the fetch listener's address>).
	FetchURL string
	// FetchCertFile and FetchKeyFile are the fetch server's certificate
	// and key (PEM); without them the daemon makes a self-signed
	// certificate for the fetch address and writes it to FetchCAOut (when
	// set), which the agents must trust.
	FetchCertFile, FetchKeyFile, FetchCAOut string
	// MaxGrants is the most live fetch grants (default
	// fetch.DefaultMaxGrants).
	MaxGrants int

	// MetricsListen is the plain-HTTP host:port of /metrics, /healthz and
	// /readyz; "" serves none.
	MetricsListen string
	// AuditLog is the audit log's path; "" or "-" is standard error.
	AuditLog string

	// Limits bound every listener's connections.
	Limits Limits

	// MaxJobs and MaxTasks are server.WithLimits'.
	MaxJobs, MaxTasks int
	// ServerOptions are added to the API server's (e.g.
	// server.WithKubernetes).
	ServerOptions []server.Option

	// ProbeInterval is how often each backend is probed (default 10s).
	ProbeInterval time.Duration
	// SweepInterval is how often expired jobs and build cache entries are
	// zeroed (default 30s).
	SweepInterval time.Duration
	// ZeroGrace is server.WithZeroGrace's: how long an expired job stays
	// readable before a sweep zeroes it (default server.DefaultZeroGrace).
	ZeroGrace time.Duration
	// Refresh is how often watched jobs' versions are checked; 0 turns
	// Watch off. RenewBefore is watch.Options.RenewBefore.
	Refresh, RenewBefore time.Duration

	// ShutdownTimeout bounds how long in-flight API calls may take to
	// finish once the daemon stops (default 10s).
	ShutdownTimeout time.Duration
	// FetchLinger is how long the fetch server answers 503 to still-valid
	// URIs before it stops listening.
	FetchLinger time.Duration

	// HA, when set, makes the daemon a replica sharing its jobs, fetch
	// grants and refresher leadership with others (keyship serve --ha);
	// nil keeps them in this process's memory.
	HA *HA

	// Logger receives the daemon's log; nil discards it.
	Logger hclog.Logger
	// Events, when set, is told of each stage as it happens, on the
	// daemon's goroutine.
	Events func(Event)
	// Signals makes Run stop at SIGTERM or SIGINT and reopen the audit log
	// at SIGHUP.
	Signals bool
}

// Limits bound the connections of every listener the daemon opens: the
// API, the fetch server and the metrics endpoint.
type Limits struct {
	// ReadHeaderTimeout closes a connection that has not sent a request's
	// headers (or finished its TLS handshake) in time (default 10s).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle between requests for
	// this long (default 60s).
	IdleTimeout time.Duration
	// MaxConns is the most open connections per listener (default 1024);
	// more wait in the kernel's backlog until one closes.
	MaxConns int
	// MaxConnsPerSource is the most open connections from one IP address
	// per TCP listener (default MaxConns/4); more are closed at once. It
	// must be below MaxConns.
	MaxConnsPerSource int
}

// Stage is a step of the daemon's life, reported through Config.Events.
type Stage string

// The stages, in the order they happen.
const (
	FetchListening    Stage = "fetch listening"   // Event.Addr: the fetch base URL
	MetricsListening  Stage = "metrics listening" // Event.Addr: http://host:port
	APIListening      Stage = "api listening"     // Event.Addr: unix:///path or tcp://host:port
	AuditReopened     Stage = "audit reopened"    // at SIGHUP; Event.Err if it failed
	ShuttingDown      Stage = "shutting down"
	APIClosed         Stage = "api closed"
	APIDrained        Stage = "api drained" // Event.Err: calls cut at ShutdownTimeout
	FetchClosed       Stage = "fetch closed"
	FetchStopped      Stage = "fetch stopped"
	MetricsStopped    Stage = "metrics stopped"
	BackgroundStopped Stage = "background stopped"
	PluginsClosed     Stage = "plugins closed"
	AuditClosed       Stage = "audit closed"
)

// Event is one stage of the daemon.
type Event struct {
	Stage Stage
	Addr  string
	Err   error
}

// The defaults of Config.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxConns          = 1024
	DefaultProbeInterval     = 10 * time.Second
	DefaultSweepInterval     = 30 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second
)

// buildCacheEntries bounds the Bundles shared between jobs (a Bundle is a
// few kilobytes).
const buildCacheEntries = 1000

// withDefaults returns c with its zero fields defaulted, or what is wrong
// with it.
func (c Config) withDefaults() (Config, error) {
	if c.Host == nil {
		return c, errors.New("daemon: Config.Host is required")
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Events == nil {
		c.Events = func(Event) {}
	}
	l := &c.Limits
	orDefault(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	orDefault(&l.IdleTimeout, DefaultIdleTimeout)
	orDefault(&l.MaxConns, DefaultMaxConns)
	orDefault(&l.MaxConnsPerSource, max(1, l.MaxConns/4))
	if l.MaxConns > 1 && l.MaxConnsPerSource >= l.MaxConns {
		return c, fmt.Errorf("--max-conns-per-source %d: must be below --max-conns %d, so that one address cannot take every connection", l.MaxConnsPerSource, l.MaxConns)
	}
	orDefault(&c.ProbeInterval, DefaultProbeInterval)
	orDefault(&c.SweepInterval, DefaultSweepInterval)
	orDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
	orDefault(&c.MaxGrants, fetch.DefaultMaxGrants)
	if strings.HasPrefix(c.Listen, "tcp://") && c.TLS == nil {
		return c, errors.New("a tcp:// API needs mutual TLS: --tls-cert, --tls-key and --client-ca")
	}
	return c, nil
}

// orDefault sets *v to def when it is zero or negative.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// daemon is one run: what it started, stopped in order by stop.
type daemon struct {
	c Config

	audit  *audit.Log
	host   *host.Host
	prober *health.Prober
	stopBG context.CancelFunc
	// stopWatch stops the watch loop, at once when the daemon stops.
	stopWatch context.CancelFunc
	bgDone    sync.WaitGroup

	fs       *fetch.Server
	store    *replicas.Store // --ha: the shared state, closed after the API drained
	fetchSrv *http.Server
	metrics  *http.Server
	api      *http.Server
	apiL     net.Listener
	served   bool // the API was serving: stop lingers for the fetch agents
}

// Run serves until ctx ends (or, with Config.Signals, SIGTERM or SIGINT
// arrives), then stops in the order the package documents. It returns
// why the API stopped serving, or that in-flight calls were cut.
func Run(ctx context.Context, c Config) (err error) {
	c, err = c.withDefaults()
	if err != nil {
		return err
	}
	if c.Signals {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	d := &daemon{c: c}
	defer func() {
		if serr := d.stop(); err == nil {
			err = serr
		}
	}()
	if d.audit, err = audit.Open(c.AuditLog); err != nil {
		return err
	}
	m := metrics.New()
	// Jobs of one application ship the same stores: build each content
	// once for as long as a job lives by default.
	d.host = host.New(c.Host, append(slices.Clip(c.HostOptions), host.WithObserver(m), host.WithBuildCache(c.BuildCache, buildCacheEntries, nil))...)
	d.prober = health.New(d.host.Loader(), slices.Sorted(maps.Keys(c.Host.Backends)), health.WithInterval(c.ProbeInterval))
	m.WatchRestarts(d.prober.Restarts)

	// bg ends after the API and the fetch server stopped: the probes and
	// the sweeps outlive the API's drain.
	bg, stopBG := context.WithCancel(context.Background())
	d.stopBG = stopBG
	d.background(func() { d.prober.Run(bg) })

	if c.FetchListen != "" {
		if err := d.startFetch(m); err != nil {
			return err
		}
	}
	sopts := append(slices.Clip(c.ServerOptions), server.WithLimits(c.MaxJobs, c.MaxTasks), server.WithZeroGrace(c.ZeroGrace), server.WithLogger(c.Logger.Named("server")))
	if c.HA != nil {
		if d.store, err = openHA(ctx, c.HA, d.host); err != nil {
			return err
		}
		sopts = append(sopts, server.WithReplicas(d.store))
		d.prober.AddCheck("the replicas' shared state ("+c.HA.Engine+")", d.store.Ping)
	}
	var w *watch.Watcher
	if c.Refresh > 0 {
		w = watch.NewWatcher(d.host, c.Refresh)
		sopts = append(sopts, server.WithWatch(server.WatchConfig{Host: d.host, Watcher: w, RenewBefore: c.RenewBefore, Logger: c.Logger.Named("watch")}))
	}
	srv := server.New(d.host, d.fs, sopts...)
	if w != nil || d.store != nil {
		// The watch loop (with --ha, the campaign for the refresher's
		// leadership, which runs it) stops first of all: no new bundle
		// is built while the daemon stops.
		wctx, stopWatch := context.WithCancel(context.Background())
		d.stopWatch = stopWatch
		d.background(func() { _ = srv.RunReplica(wctx, w) })
	}
	m.WatchServer(srv)
	if c.MetricsListen != "" {
		if err := d.startMetrics(m); err != nil {
			return err
		}
	}
	d.background(func() { d.sweep(bg, srv) })
	if c.Signals {
		d.reopenOnHUP(bg)
	}
	served, err := d.startAPI(server.Handler(srv, server.WithObserver(m), server.WithObserver(d.audit), server.WithHealth(d.prober)))
	if err != nil {
		return err
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
		return nil
	}
}

// background runs f until the daemon's background context ends.
func (d *daemon) background(f func()) {
	d.bgDone.Add(1)
	go func() {
		defer d.bgDone.Done()
		f()
	}()
}

// listen opens a TCP listener with the daemon's connection limits.
func (d *daemon) listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return d.limit(l), nil
}

// limit applies the connection limits to l: at most MaxConnsPerSource from
// one IP address (the rest closed at once), at most MaxConns in all.
func (d *daemon) limit(l net.Listener) net.Listener {
	lim := d.c.Limits
	return server.LimitListener(server.LimitPerSource(l, lim.MaxConnsPerSource), lim.MaxConns)
}

// httpServer is an http.Server for h with the daemon's timeouts, logging
// its own errors (TLS handshakes refused) at debug level as name.
func (d *daemon) httpServer(srv *http.Server, name string) *http.Server {
	srv.ReadHeaderTimeout = d.c.Limits.ReadHeaderTimeout
	srv.IdleTimeout = d.c.Limits.IdleTimeout
	srv.ErrorLog = d.c.Logger.Named(name).StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})
	return srv
}

// serve runs srv on l until it is shut down, logging why it stopped
// otherwise.
func (d *daemon) serve(srv *http.Server, l net.Listener, tls bool, name string) {
	go func() {
		var err error
		if tls {
			err = srv.ServeTLS(l, "", "")
		} else {
			err = srv.Serve(l)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.c.Logger.Error(name+" server stopped", "error", err)
		}
	}()
}

func (d *daemon) startFetch(m *metrics.Metrics) error {
	c := d.c
	l, err := d.listen(c.FetchListen)
	if err != nil {
		return err
	}
	base := c.FetchURL
	if base == "" {
		base = "https://" + l.Addr().String()
	}
	cert, err := d.fetchCertificate(l.Addr())
	if err != nil {
		_ = l.Close()
		return err
	}
	d.fs = fetch.New(base, fetch.WithMaxGrants(c.MaxGrants), fetch.WithObserver(func(ev fetch.Event) { m.Fetch(ev); d.audit.Fetch(ev) }))
	m.WatchFetch(d.fs)
	mux := http.NewServeMux()
	mux.Handle(fetch.Prefix, d.fs)
	d.fetchSrv = d.httpServer(&http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}, "fetch")
	d.serve(d.fetchSrv, l, true, "fetch")
	c.Logger.Info("fetch server listening", "addr", l.Addr().String(), "url", base)
	c.Events(Event{Stage: FetchListening, Addr: base})
	return nil
}

func (d *daemon) startMetrics(m *metrics.Metrics) error {
	l, err := d.listen(d.c.MetricsListen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	mux.Handle("/healthz", d.prober.Liveness())
	mux.Handle("/readyz", d.prober.Readiness())
	d.metrics = d.httpServer(&http.Server{Handler: mux}, "metrics")
	d.serve(d.metrics, l, false, "metrics")
	d.c.Logger.Info("metrics listening", "addr", l.Addr().String())
	d.c.Events(Event{Stage: MetricsListening, Addr: "http://" + l.Addr().String()})
	return nil
}

// startAPI serves h on Config.Listen; the channel gets why it stopped
// serving.
func (d *daemon) startAPI(h http.Handler) (<-chan error, error) {
	l, err := server.Listen(d.c.Listen)
	if err != nil {
		return nil, err
	}
	addr := d.c.Listen
	if tcp, ok := l.Addr().(*net.TCPAddr); ok {
		addr = "tcp://" + tcp.String() // the port chosen for :0
		l = server.LimitPerSource(l, d.c.Limits.MaxConnsPerSource)
	}
	d.apiL = server.LimitListener(l, d.c.Limits.MaxConns)
	d.api = d.httpServer(server.HTTPServer(h, d.c.TLS), "api")
	served := make(chan error, 1)
	go func() {
		if d.c.TLS != nil {
			served <- d.api.ServeTLS(d.apiL, "", "")
		} else {
			served <- d.api.Serve(d.apiL)
		}
	}()
	d.served = true
	d.c.Logger.Info("host API listening", "addr", addr)
	d.c.Events(Event{Stage: APIListening, Addr: addr})
	return served, nil
}

// sweep zeroes expired jobs and build cache entries every SweepInterval,
// then returns freed memory to the kernel, until ctx ends.
func (d *daemon) sweep(ctx context.Context, srv *server.Server) {
	t := time.NewTicker(d.c.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			srv.Sweep()
			d.host.SweepCache()
			// What the sweep zeroed is keyship's; what net/http copied a
			// response into (HTTP/2's pooled per-stream write buffers) is
			// freed but not zeroed. Handing freed memory back to the
			// kernel zeroes it (issue 20, item 4). It is a full GC: at
			// the default 30 s interval, a small cost.
			debug.FreeOSMemory()
		}
	}
}

// reopenOnHUP reopens the audit log at each SIGHUP until ctx ends.
func (d *daemon) reopenOnHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	d.background(func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				err := d.audit.Reopen()
				if err != nil {
					d.c.Logger.Error("reopen the audit log", "error", err)
				}
				d.c.Events(Event{Stage: AuditReopened, Err: err})
			}
		}
	})
}

// stop stops what Run started, in the order the package documents; a
// part that never started is skipped.
func (d *daemon) stop() error {
	c := d.c
	c.Logger.Info("shutting down: finishing in-flight calls", "timeout", c.ShutdownTimeout)
	c.Events(Event{Stage: ShuttingDown})
	if d.prober != nil {
		d.prober.ShuttingDown()
	}
	if d.stopWatch != nil {
		d.stopWatch()
	}
	var result error
	if d.api != nil {
		// Closing the listener first makes "no new connection" a fact
		// before the drain starts; Shutdown then waits for the calls.
		_ = d.apiL.Close()
		c.Events(Event{Stage: APIClosed})
		ctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
		// Shutdown closes the listeners it tracks again: on a loaded
		// machine Serve may not have dropped apiL yet, and that second
		// Close's net.ErrClosed is returned after a complete drain. Only
		// the deadline cuts calls.
		if err := d.api.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			_ = d.api.Close()
			result = fmt.Errorf("in-flight calls still running after --shutdown-timeout %s were cut: %w", c.ShutdownTimeout, err)
		}
		cancel()
		c.Events(Event{Stage: APIDrained, Err: result})
	}
	if d.fs != nil {
		d.fs.Close()
		c.Events(Event{Stage: FetchClosed})
		if d.served {
			time.Sleep(c.FetchLinger)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := d.fetchSrv.Shutdown(ctx); err != nil {
			_ = d.fetchSrv.Close()
		}
		cancel()
		c.Events(Event{Stage: FetchStopped})
	}
	if d.metrics != nil {
		_ = d.metrics.Close()
		c.Events(Event{Stage: MetricsStopped})
	}
	if d.stopBG != nil {
		d.stopBG()
		d.bgDone.Wait()
		c.Events(Event{Stage: BackgroundStopped})
	}
	if d.store != nil {
		_ = d.store.State().Close()
	}
	if d.host != nil {
		_ = d.host.Close()
		c.Events(Event{Stage: PluginsClosed})
	}
	if d.audit != nil {
		_ = d.audit.Close()
		c.Events(Event{Stage: AuditClosed})
	}
	return result
}
