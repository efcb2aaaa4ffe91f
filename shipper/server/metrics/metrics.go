// Package metrics is keyship serve's Prometheus metrics: calls to the host
// API by outcome and code, secret reads by backend and outcome, the time
// spent resolving, building and answering, live jobs and fetch grants, fetch
// requests by outcome, plugin restarts, and the days left on every live
// job's certificates. Names and labels follow Prometheus' instrumentation
// guidelines (keyship_ prefix, _total counters, _seconds histograms). No
// label ever holds a secret or a password: labels are codes, backend names,
// job ids and certificate subjects and serial numbers.
//
// Quickstart (what keyship serve does):
//
//	m := metrics.New()
//	h := host.New(cfg, host.WithObserver(m))
//	fs := fetch.New(url, fetch.WithObserver(m.Fetch))
//	srv := server.New(h, fs)
//	m.WatchServer(srv); m.WatchFetch(fs); m.WatchRestarts(prober.Restarts)
//	api := server.Handler(srv, server.WithObserver(m))
//	http.Handle("/metrics", m.Handler())
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/server"
)

// Metrics holds keyship serve's collectors in a registry of its own. It
// implements server.Observer and host.Observer; Fetch is a fetch observer.
type Metrics struct {
	reg     *prometheus.Registry
	ships   *prometheus.CounterVec
	checks  *prometheus.CounterVec
	reads   *prometheus.CounterVec
	stages  map[string]prometheus.Histogram
	ship    prometheus.Histogram
	fetches *prometheus.CounterVec
}

// buckets span a warm in-memory Ship (about a millisecond) to a slow secret
// store with retries (tens of seconds).
var buckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New returns Metrics with every keyship_ collector registered, plus the
// Go runtime's and the process's.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		ships: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyship_ships_total",
			Help: "Ship calls answered, by outcome (ok, error) and code (ok, invalid_argument, not_found, unavailable, ...)."}, []string{"outcome", "code"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyship_checks_total",
			Help: "Check calls answered, by outcome (ok, problems, error) and code."}, []string{"outcome", "code"}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyship_backend_reads_total",
			Help: "Secrets read from a backend (one per ref and try), by backend and outcome (ok, not_found, permission_denied, unavailable, invalid_config, unsupported, plugin_exited, error)."}, []string{"backend", "outcome"}),
		stages: map[string]prometheus.Histogram{
			"resolve": prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keyship_resolve_seconds",
				Help: "Time to read every ref of a job from its backends.", Buckets: buckets}),
			"build": prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keyship_build_seconds",
				Help: "Time to issue, open, check and write a job's stores.", Buckets: buckets}),
		},
		ship: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keyship_ship_seconds",
			Help: "Time to answer a Ship call (a job already built answers from memory).", Buckets: buckets}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyship_fetch_requests_total",
			Help: "Fetch URI requests, by outcome (served, reused: a used-up URI presented again, expired, unknown, shutdown)."}, []string{"outcome"}),
	}
	m.reg.MustRegister(m.ships, m.checks, m.reads, m.stages["resolve"], m.stages["build"], m.ship, m.fetches,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{fetch.OutcomeServed, fetch.OutcomeReused, fetch.OutcomeExpired, fetch.OutcomeUnknown, fetch.OutcomeUnavailable} {
		m.fetches.WithLabelValues(o) // present at 0 from the start
	}
	return m
}

// Registry returns the registry, for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Observe implements server.Observer.
func (m *Metrics) Observe(_ context.Context, c *server.Call) {
	switch c.Method {
	case "Ship":
		m.ships.WithLabelValues(c.Outcome(), c.CodeName()).Inc()
		m.ship.Observe(c.Duration.Seconds())
	case "Check":
		m.checks.WithLabelValues(c.Outcome(), c.CodeName()).Inc()
	}
}

// SecretRead implements host.Observer.
func (m *Metrics) SecretRead(backend string, err error) {
	m.reads.WithLabelValues(backend, readOutcome(err)).Inc()
}

// Stage implements host.Observer.
func (m *Metrics) Stage(stage string, d time.Duration, _ error) {
	if h, ok := m.stages[stage]; ok {
		h.Observe(d.Seconds())
	}
}

// Fetch counts one fetch request; pass it to fetch.WithObserver.
func (m *Metrics) Fetch(ev fetch.Event) { m.fetches.WithLabelValues(ev.Outcome).Inc() }

func readOutcome(err error) string {
	return shipper.OutcomeOf(err).Metric
}

// WatchServer adds the gauges read from s at each scrape: live jobs, and
// the days left on each live job's certificates.
func (m *Metrics) WatchServer(s *server.Server) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyship_live_jobs",
		Help: "Jobs whose built stores are held in memory."}, func() float64 { return float64(s.Jobs()) }))
	m.reg.MustRegister(&expiry{s: s, now: time.Now})
}

// WatchFetch adds the live fetch grants gauge, read from fs at each scrape.
func (m *Metrics) WatchFetch(fs *fetch.Server) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyship_live_fetch_grants",
		Help: "Tasks holding fetch URIs that have not expired."}, func() float64 { return float64(fs.Len()) }))
}

// WatchRestarts adds the plugin restarts counter, read from restarts (how
// many times backend plugin processes were started again after dying) at
// each scrape.
func (m *Metrics) WatchRestarts(restarts func() int) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyship_plugin_restarts_total",
		Help: "Backend plugin processes started again after they died."}, func() float64 { return float64(restarts()) }))
}

// expiry collects keyship_certificate_expiry_days for every live job.
type expiry struct {
	s   *server.Server
	now func() time.Time
}

var expiryDesc = prometheus.NewDesc("keyship_certificate_expiry_days",
	"Days until a certificate of a live job expires (negative: expired), by job, store (keystore: the key's chain; truststore: trusted certificates), subject and serial number.",
	[]string{"job_id", "store", "subject", "serial"}, nil)

func (e *expiry) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (e *expiry) Collect(ch chan<- prometheus.Metric) {
	now := e.now()
	seen := map[[4]string]bool{}
	for _, j := range e.s.LiveCertificates() {
		for store, certs := range map[string][]materialize.CertInfo{"keystore": j.Chain, "truststore": j.Trusted} {
			for _, c := range certs {
				k := [4]string{j.JobID, store, c.Subject, c.SerialNumber}
				if seen[k] {
					continue // the same CA in the truststore and the CA bundle
				}
				seen[k] = true
				ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, c.NotAfter.Sub(now).Hours()/24, k[:]...)
			}
		}
	}
}
