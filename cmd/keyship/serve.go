package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/server/daemon"
)

type serveFlags struct {
	listen                      string
	tlsCert, tlsKey, clientCA   string
	fetchListen, fetchURL       string
	fetchCert, fetchKey, caOut  string
	buildCache                  time.Duration
	maxJobs, maxTasks           int
	maxGrants                   int
	metricsListen, auditLog     string
	probeInterval               time.Duration
	shutdownTimeout             time.Duration
	fetchLinger                 time.Duration
	readHeaderTimeout           time.Duration
	idleTimeout                 time.Duration
	maxConns, maxConnsPerSource int
	kube                        serveKubeFlags
	ha                          serveHAFlags
	refresh, renewBefore        time.Duration
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
answers still-valid fetch URIs 503 for --fetch-linger before it exits.

With --ha zookeeper or --ha kubernetes, several serve processes (behind one
--fetch-url: a Marathon VIP, a Kubernetes Service) share their jobs and fetch
grants, sealed under the 32-byte key --ha-key names: any of them serves a URI
another handed out (once in all), and one of them at a time refreshes watched
jobs. See README, "Running replicas".`,
		Example: `  keyship serve --config keyship.yaml --listen unix:///run/keyship.sock \
      --fetch-listen 0.0.0.0:8443 --fetch-url https://dispatcher.example.com:8443 \
      --fetch-cert fetch.pem --fetch-key fetch-key.pem
  keyship serve --config keyship.yaml --listen tcp://0.0.0.0:7443 \
      --tls-cert api.pem --tls-key api-key.pem --client-ca dispatchers-ca.pem \
      --metrics-listen 127.0.0.1:9090 --audit-log /var/log/keyship/audit.log`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.serve(context.Background(), f)
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
	fl.DurationVar(&f.readHeaderTimeout, "read-header-timeout", 10*time.Second, "close an API, fetch or metrics connection that has not sent a request (or finished its TLS handshake) within this time")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 60*time.Second, "close an API, fetch or metrics connection idle between requests for this long")
	fl.IntVar(&f.maxConns, "max-conns", daemon.DefaultMaxConns, "most open connections each of the API, the fetch server and the metrics endpoint accepts; more wait until one closes")
	fl.IntVar(&f.maxConnsPerSource, "max-conns-per-source", 0, "most open connections from one IP address on each TCP listener, below --max-conns; more are closed at once (default --max-conns/4)")
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
	addServeHAFlags(fl, &f.ha)
	fl.DurationVar(&f.refresh, "refresh", defaultRefresh, "how often watched jobs (the Watch call) have their secrets' versions checked; 0 turns Watch off")
	fl.DurationVar(&f.renewBefore, "renew-before", 0, "renew a watched job's issued certificate this long before it expires (default: at 2/3 of its lifetime)")
	_ = cmd.MarkFlagRequired("listen")
	return cmd
}

func (g *globals) serve(ctx context.Context, f serveFlags) error {
	var tc *tls.Config
	if strings.HasPrefix(f.listen, "tcp://") {
		var err error
		if tc, err = daemon.MutualTLS(f.tlsCert, f.tlsKey, f.clientCA); err != nil {
			return usageError{err}
		}
	}
	ha, err := f.ha.config(f.kube.kubeconfig)
	if err != nil {
		return err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	kopts, err := f.kube.options()
	if err != nil {
		return err
	}
	return daemon.Run(ctx, daemon.Config{
		Host: cfg, HostOptions: g.hostOptions(), BuildCache: f.buildCache,
		Listen: f.listen, TLS: tc, FetchListen: f.fetchListen, FetchURL: f.fetchURL, MaxGrants: f.maxGrants,
		FetchCertFile: f.fetchCert, FetchKeyFile: f.fetchKey, FetchCAOut: f.caOut,
		MetricsListen: f.metricsListen, AuditLog: f.auditLog,
		Limits:  daemon.Limits{ReadHeaderTimeout: f.readHeaderTimeout, IdleTimeout: f.idleTimeout, MaxConns: f.maxConns, MaxConnsPerSource: f.maxConnsPerSource},
		MaxJobs: f.maxJobs, MaxTasks: f.maxTasks, ServerOptions: kopts, ProbeInterval: f.probeInterval,
		Refresh: f.refresh, RenewBefore: f.renewBefore, ShutdownTimeout: f.shutdownTimeout, FetchLinger: f.fetchLinger,
		HA:     ha,
		Logger: g.logger, Signals: true, Events: g.announce,
	})
}

// announce prints the daemon's addresses and stop stages that a launcher
// (and the tests) wait for on stdout.
func (g *globals) announce(ev daemon.Event) {
	switch ev.Stage {
	case daemon.FetchListening:
		fmt.Fprintf(g.stdout, "fetch %s\n", ev.Addr)
	case daemon.MetricsListening:
		fmt.Fprintf(g.stdout, "metrics %s\n", ev.Addr)
	case daemon.APIListening:
		fmt.Fprintf(g.stdout, "listening %s\n", ev.Addr)
	case daemon.ShuttingDown, daemon.FetchClosed:
		fmt.Fprintln(g.stdout, ev.Stage)
	}
}
