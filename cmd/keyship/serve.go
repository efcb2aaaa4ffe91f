package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/server/audit"
	"github.com/keyship/keyship/shipper/server/health"
	"github.com/keyship/keyship/shipper/server/metrics"
	"github.com/keyship/keyship/shipper/watch"
)

type serveFlags struct {
	listen                     string
	tlsCert, tlsKey, clientCA  string
	fetchListen, fetchURL      string
	fetchCert, fetchKey, caOut string
	buildCache                 time.Duration
	maxJobs, maxTasks          int
	maxGrants                  int
	metricsListen, auditLog    string
	probeInterval              time.Duration
	shutdownTimeout            time.Duration
	fetchLinger                time.Duration
	readHeaderTimeout          time.Duration
	idleTimeout                time.Duration
	maxConns                   int
	kube                       serveKubeFlags
	refresh, renewBefore       time.Duration
}

func newServeCmd(g *globals) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve --listen unix:///PATH|tcp://HOST:PORT",
		Short: "Run the host API for dispatchers and AppMasters, and the HTTPS fetch server",
		Long: `serve runs the keyship host API (keyship.host.v1.ShipperService: Ship, Check,
Watch) for Spark dispatchers, Flink AppMasters and other launchers, in gRPC,
gRPC-Web and Connect's HTTP/JSON on the same address (a JVM POSTs JSON to
/keyship.host.v1.ShipperService/Ship), with grpc.health.v1. A job is resolved
and built once and kept in memory for its TTL; each task gets its own fetch URIs.
Watch streams a job's new bundle whenever one of its secrets changes or its
issued certificate is renewed (checked every --refresh).

On a unix socket the socket's 0600 mode is the access control; on TCP the API
requires mutual TLS (--tls-cert, --tls-key, --client-ca). With --fetch-listen it
also serves the fetch URIs over HTTPS; without --fetch-cert it makes a
throwaway self-signed certificate and writes it to --fetch-ca-out, which the
Mesos agents must trust.

--metrics-listen serves Prometheus /metrics, /healthz and /readyz (every
backend answered its last probe). Every Ship, Check and fetch is written as a
JSON line to --audit-log (reopened on SIGHUP) or standard error. On SIGTERM
serve stops accepting, finishes in-flight calls within --shutdown-timeout, and
answers still-valid fetch URIs 503 for --fetch-linger before it exits.`,
		Example: `  keyship serve --config keyship.yaml --listen unix:///run/keyship.sock \
      --fetch-listen 0.0.0.0:8443 --fetch-url https://dispatcher.example.com:8443 \
      --fetch-cert fetch.pem --fetch-key fetch-key.pem
  keyship serve --config keyship.yaml --listen tcp://0.0.0.0:7443 \
      --tls-cert api.pem --tls-key api-key.pem --client-ca dispatchers-ca.pem \
      --metrics-listen 127.0.0.1:9090 --audit-log /var/log/keyship/audit.log`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return g.serve(ctx, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "", "API address: unix:///path or tcp://host:port (required)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "server certificate (PEM) for a tcp:// API")
	fl.StringVar(&f.tlsKey, "tls-key", "", "server key (PEM) for a tcp:// API")
	fl.StringVar(&f.clientCA, "client-ca", "", "CA (PEM) that signs the API's client certificates (tcp://)")
	fl.StringVar(&f.fetchListen, "fetch-listen", "", "HTTPS fetch server address host:port (empty: no fetch server)")
	fl.StringVar(&f.fetchURL, "fetch-url", "", "base URL the agents fetch from (default https://<fetch-listen>)")
	fl.StringVar(&f.fetchCert, "fetch-cert", "", "fetch server certificate (PEM)")
	fl.StringVar(&f.fetchKey, "fetch-key", "", "fetch server key (PEM)")
	fl.DurationVar(&f.readHeaderTimeout, "read-header-timeout", 10*time.Second, "close an API or fetch connection that has not sent a request (or finished its TLS handshake) within this time")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 60*time.Second, "close an API or fetch connection idle between requests for this long")
	fl.IntVar(&f.maxConns, "max-conns", 1024, "most open connections each of the API and the fetch server accepts; more wait until one closes")
	fl.IntVar(&f.maxJobs, "max-jobs", server.DefaultMaxJobs, "most jobs held at once; a Ship for another fails with RESOURCE_EXHAUSTED until some expire")
	fl.IntVar(&f.maxTasks, "max-tasks", server.DefaultMaxTasks, "most tasks one Ship may name")
	fl.IntVar(&f.maxGrants, "max-grants", fetch.DefaultMaxGrants, "most live fetch grants (one per task and Ship)")
	fl.DurationVar(&f.buildCache, "build-cache", server.DefaultTTL, "share the stores built for one content (spec + every secret's version) between jobs for this long; 0 builds every job anew")
	fl.StringVar(&f.caOut, "fetch-ca-out", "", "where to write the self-signed fetch certificate when --fetch-cert is not given")
	fl.StringVar(&f.metricsListen, "metrics-listen", "", "address host:port of the plain-HTTP /metrics (Prometheus), /healthz and /readyz (empty: none)")
	fl.StringVar(&f.auditLog, "audit-log", "", "audit log file, one JSON line per Ship, Check and fetch (0600, appended, reopened on SIGHUP); empty or - : standard error")
	fl.DurationVar(&f.probeInterval, "probe-interval", 10*time.Second, "how often every backend is probed (Info) for /readyz and gRPC health")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM, how long in-flight API calls may take to finish")
	fl.DurationVar(&f.fetchLinger, "fetch-linger", 2*time.Second, "on SIGTERM, how long the fetch server answers 503 to still-valid URIs before it stops listening")
	addServeKubeFlags(fl, &f.kube)
	fl.DurationVar(&f.refresh, "refresh", defaultRefresh, "how often watched jobs (the Watch call) have their secrets' versions checked; 0 turns Watch off")
	fl.DurationVar(&f.renewBefore, "renew-before", 0, "renew a watched job's issued certificate this long before it expires (default: at 2/3 of its lifetime)")
	_ = cmd.MarkFlagRequired("listen")
	return cmd
}

// buildCacheEntries bounds the Bundles keyship serve keeps for sharing (a
// Bundle is a few kilobytes).
const buildCacheEntries = 1000

func (g *globals) serve(ctx context.Context, f serveFlags) error {
	var tc *tls.Config
	if strings.HasPrefix(f.listen, "tcp://") {
		var err error
		if tc, err = mutualTLS(f.tlsCert, f.tlsKey, f.clientCA); err != nil {
			return usageError{err}
		}
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	auditLog, err := audit.Open(f.auditLog)
	if err != nil {
		return err
	}
	defer func() { _ = auditLog.Close() }()
	m := metrics.New()
	// Jobs of one application ship the same stores: build each content
	// once for as long as a job lives by default.
	h := g.newHost(cfg, host.WithObserver(m), host.WithBuildCache(f.buildCache, buildCacheEntries, nil))
	defer func() { _ = h.Close() }()
	prober := health.New(h.Loader(), slices.Collect(maps.Keys(cfg.Backends)), health.WithInterval(f.probeInterval))
	m.WatchRestarts(prober.Restarts)

	// bg ends with the process, not at SIGTERM: the fetch server, the
	// probes and the sweeps outlive the API's drain.
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	go prober.Run(bg)

	var fs *fetch.Server
	var fetchSrv *http.Server
	if f.fetchListen != "" {
		fl, err := net.Listen("tcp", f.fetchListen)
		if err != nil {
			return err
		}
		base := f.fetchURL
		if base == "" {
			base = "https://" + fl.Addr().String()
		}
		cert, err := g.fetchCertificate(f, fl.Addr())
		if err != nil {
			_ = fl.Close()
			return err
		}
		fs = fetch.New(base, fetch.WithMaxGrants(f.maxGrants), fetch.WithObserver(func(ev fetch.Event) { m.Fetch(ev); auditLog.Fetch(ev) }))
		m.WatchFetch(fs)
		mux := http.NewServeMux()
		mux.Handle(fetch.Prefix, fs)
		fl = server.LimitListener(fl, f.maxConns)
		fetchSrv = &http.Server{Handler: mux, ReadHeaderTimeout: f.readHeaderTimeout, IdleTimeout: f.idleTimeout, ErrorLog: g.httpLog("fetch"),
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
		go func() {
			if err := fetchSrv.ServeTLS(fl, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.logger.Error("fetch server stopped", "error", err)
			}
		}()
		g.logger.Info("fetch server listening", "addr", fl.Addr().String(), "url", base)
		fmt.Fprintf(g.stdout, "fetch %s\n", base)
	}
	kopts, err := f.kube.options()
	if err != nil {
		return err
	}
	sopts := append(kopts, server.WithLimits(f.maxJobs, f.maxTasks))
	if f.refresh > 0 {
		w := watch.NewWatcher(h, f.refresh)
		sopts = append(sopts, server.WithWatch(server.WatchConfig{Host: h, Watcher: w, RenewBefore: f.renewBefore, Logger: g.logger.Named("watch")}))
		go func() { _ = w.Run(ctx) }()
	}
	srv := server.New(h, fs, sopts...)
	m.WatchServer(srv)

	var metricsSrv *http.Server
	if f.metricsListen != "" {
		ml, err := net.Listen("tcp", f.metricsListen)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", m.Handler())
		mux.Handle("/healthz", prober.Liveness())
		mux.Handle("/readyz", prober.Readiness())
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: g.httpLog("metrics")}
		go func() {
			if err := metricsSrv.Serve(ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.logger.Error("metrics server stopped", "error", err)
			}
		}()
		g.logger.Info("metrics listening", "addr", ml.Addr().String())
		fmt.Fprintf(g.stdout, "metrics http://%s\n", ml.Addr())
	}

	l, err := server.Listen(f.listen)
	if err != nil {
		return err
	}
	api := server.HTTPServer(server.Handler(srv, server.WithObserver(m), server.WithObserver(auditLog), server.WithHealth(prober)), tc)
	api.ErrorLog = g.httpLog("api")
	api.ReadHeaderTimeout, api.IdleTimeout = f.readHeaderTimeout, f.idleTimeout
	l = server.LimitListener(l, f.maxConns)
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				srv.Sweep()
			}
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if err := auditLog.Reopen(); err != nil {
				g.logger.Error("reopen the audit log", "error", err)
			}
		}
	}()

	served := make(chan error, 1)
	go func() {
		if tc != nil {
			served <- api.ServeTLS(l, "", "")
		} else {
			served <- api.Serve(l)
		}
	}()
	addr := f.listen
	if tcp, ok := l.Addr().(*net.TCPAddr); ok {
		addr = "tcp://" + tcp.String() // the port chosen for :0
	}
	fmt.Fprintf(g.stdout, "listening %s\n", addr)
	g.logger.Info("host API listening", "addr", addr)
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	return g.shutdown(f, prober, api, fs, fetchSrv, metricsSrv)
}

// shutdown stops keyship serve gracefully: not ready at once; the API stops
// accepting and its in-flight calls finish within --shutdown-timeout; then
// the fetch server refuses every URI with 503 and a reason (no file is
// served after the API stopped) for --fetch-linger, so that an agent
// fetching now reads why, and stops.
func (g *globals) shutdown(f serveFlags, prober *health.Prober, api *http.Server, fs *fetch.Server, fetchSrv, metricsSrv *http.Server) error {
	fmt.Fprintln(g.stdout, "shutting down")
	g.logger.Info("shutting down: finishing in-flight calls", "timeout", f.shutdownTimeout)
	prober.ShuttingDown()
	ctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	var result error
	if err := api.Shutdown(ctx); err != nil {
		_ = api.Close()
		result = fmt.Errorf("in-flight calls still running after --shutdown-timeout %s were cut: %w", f.shutdownTimeout, err)
	}
	if fs != nil {
		fs.Close()
		fmt.Fprintln(g.stdout, "fetch closed")
		time.Sleep(f.fetchLinger)
		lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := fetchSrv.Shutdown(lctx); err != nil {
			_ = fetchSrv.Close()
		}
		lcancel()
	}
	if metricsSrv != nil {
		_ = metricsSrv.Close()
	}
	return result
}

// httpLog sends a net/http server's own errors (TLS handshake failures:
// a client certificate refused) to the host log at debug level.
func (g *globals) httpLog(name string) *log.Logger {
	return g.logger.Named(name).StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})
}

// fetchCertificate loads --fetch-cert/--fetch-key or makes a self-signed one.
func (g *globals) fetchCertificate(f serveFlags, addr net.Addr) (tls.Certificate, error) {
	if f.fetchCert != "" || f.fetchKey != "" {
		return tls.LoadX509KeyPair(f.fetchCert, f.fetchKey)
	}
	host, _, _ := net.SplitHostPort(addr.String())
	hosts := []string{host, "localhost", "127.0.0.1"}
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, name)
	}
	cert, pemBytes, err := fetch.SelfSigned(hosts, 365*24*time.Hour)
	if err != nil {
		return tls.Certificate{}, err
	}
	if f.caOut != "" {
		if err := os.WriteFile(f.caOut, pemBytes, 0o644); err != nil {
			return tls.Certificate{}, err
		}
	}
	g.logger.Warn("fetch server uses a self-signed certificate: agents must trust it (pass --fetch-cert/--fetch-key for a real one)", "ca_file", f.caOut)
	return cert, nil
}

// mutualTLS loads a server certificate and requires client certificates
// signed by clientCA.
func mutualTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" || clientCA == "" {
		return nil, errors.New("a tcp:// API needs mutual TLS: --tls-cert, --tls-key and --client-ca")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(clientCA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("--client-ca %s: no PEM certificates", clientCA)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}, nil
}
