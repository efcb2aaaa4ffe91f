// Package server is the host API (proto keyship.host.v1) that Spark
// dispatchers, Flink AppMasters and other launchers call at job submission,
// and its Go client.
//
// One job is resolved and built once: calls with the same job id and spec
// within the bundle's TTL share the build (concurrent calls too, through a
// singleflight), so a job with a thousand executors costs one backend read
// per distinct ref. Each call gets fresh fetch URIs for its own tasks. A
// job's bundle is kept in memory only, until its TTL ends, then zeroed.
//
// Quickstart (what keyship serve does):
//
//	h := host.New(cfg, host.WithBuiltin("file", file.New))
//	fs := fetch.New("https://dispatcher.example.com:8443")
//	// each Ship runs shipper.Prepare, the one ship pipeline, once per job
//	srv := server.New(h, fs)
//	api := server.HTTPServer(server.Handler(srv), tlsConfig) // gRPC, gRPC-Web, Connect JSON
//	l, _ := server.Listen("unix:///run/keyship.sock")
//	api.Serve(l)
package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/hashicorp/go-hclog"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/status"

	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/kube"
	"github.com/keyship/keyship/shipper/mesos"
)

// Limits on a request beyond spec.ReadRequest's; larger ones are refused
// with INVALID_ARGUMENT.
const (
	DefaultTTL  = 10 * time.Minute
	maxTTL      = 24 * time.Hour
	maxFetchUse = 1000
)

// Server implements hostv1.ShipperServiceServer.
type Server struct {
	logger hclog.Logger
	hostv1.UnimplementedShipperServiceServer
	builder shipper.Builder
	fetch   *fetch.Server
	kube    *kubeTarget // TARGET_KUBERNETES (kubernetes.go)
	now     func() time.Time

	maxJobs  int // 0: no limit
	maxTasks int

	builds singleflight.Group
	mu     sync.Mutex
	jobs   map[string]*job // by job key (job id + spec digest)
	// known maps the digest of a request that was shipped to its job's
	// key, so that the same request again skips the parse (known.go).
	known map[digest]string
	// retired are replaced jobs whose bundles are zeroed after zeroGrace.
	retired   []*job
	lastSweep time.Time
	// zeroGrace is how long an expired job's bundle stays readable before
	// it is zeroed (WithZeroGrace).
	zeroGrace time.Duration
	// watching keeps watched jobs fresh (watch.go); nil without WithWatch.
	watching *watching
	// shared is the state shared with other replicas (ha.go); nil without
	// WithReplicas.
	shared *shared
}

// sweepEvery bounds how often a lookup sweeps expired jobs and fetch grants.
// Expiry is enforced at lookup; sweeping only frees and zeroes memory, and it
// walks every job, so it stays off most requests (keyship serve also sweeps
// on a timer).
const sweepEvery = 10 * time.Second

// job is one prepared shipment and when it expires.
type job struct {
	key      string // jobKey's
	shipment *shipper.Shipment
	expires  time.Time

	// plan is the job's Mesos secrets, planned once for every Ship of the
	// job (they are the same for each of its tasks).
	mesosOnce sync.Once
	plan      *mesos.Plan
	mesosErr  error
}

// mesos returns the job's Mesos secret plan.
func (j *job) mesos() (*mesos.Plan, error) {
	j.mesosOnce.Do(func() { j.plan, j.mesosErr = j.shipment.Mesos() })
	return j.plan, j.mesosErr
}

// Option changes a Server.
type Option func(*Server)

// The default limits of a Server: a live job holds its stores (a few
// kilobytes) and its Mesos and fetch plans.
const (
	DefaultMaxJobs  = 10000
	DefaultMaxTasks = spec.MaxTasks
)

// WithLimits sets how many jobs may be live at once and how many tasks one
// Ship may name (0 keeps the default). Past a limit a Ship fails with
// RESOURCE_EXHAUSTED naming it.
func WithLimits(maxJobs, maxTasks int) Option {
	return func(s *Server) {
		if maxJobs > 0 {
			s.maxJobs = maxJobs
		}
		if maxTasks > 0 {
			s.maxTasks = min(maxTasks, spec.MaxTasks)
		}
	}
}

// WithZeroGrace sets how long an expired job's bundle stays readable, for
// a response being built when its TTL ended, before a sweep zeroes it
// (default DefaultZeroGrace; 0 keeps the default).
func WithZeroGrace(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.zeroGrace = d
		}
	}
}

// WithClock sets the server's clock (for tests of expiry).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithLogger sets where the server logs what fails in the background (a
// shared record it cannot read, a Secret it cannot delete), whether or not
// it watches jobs; without it, only a server that watches logs them, to
// its watch's logger.
func WithLogger(l hclog.Logger) Option { return func(s *Server) { s.logger = l } }

// New returns a Server that builds through b (a *host.Host) and publishes
// fetch URIs on fs (nil disables TARGET_FETCH).
func New(b shipper.Builder, fs *fetch.Server, opts ...Option) *Server {
	s := &Server{builder: b, fetch: fs, now: time.Now, jobs: map[string]*job{}, known: map[digest]string{}, zeroGrace: DefaultZeroGrace, maxJobs: DefaultMaxJobs, maxTasks: DefaultMaxTasks}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Ship implements hostv1.ShipperServiceServer.
func (s *Server) Ship(ctx context.Context, req *hostv1.ShipRequest) (*hostv1.ShipResponse, error) {
	r, err := requestFromProto(req)
	if err != nil {
		return nil, toStatus(invalid(err))
	}
	d, j, err := s.ship(ctx, r, "Ship")
	if err != nil {
		return nil, toStatus(err)
	}
	return deliveryToProto(d, j.expires), nil
}

// invalid marks err as the request's fault.
func invalid(err error) error { return fmt.Errorf("%w (%w)", err, shipper.ErrInvalidRequest) }

// ship is one Ship (or the first response of a Watch, for method): the
// request checked and read, the job built once, delivered to the request's
// targets.
func (s *Server) ship(ctx context.Context, r Request, method string) (*shipper.Delivery, *job, error) {
	if err := checkShipRequest(r); err != nil {
		return nil, nil, invalid(err)
	}
	if n := len(r.Tasks); n > s.maxTasks {
		return nil, nil, fmt.Errorf("tasks: %d in one %s, the server's limit is %d (keyship serve --max-tasks); ship the job's tasks in several calls (%w)", n, method, s.maxTasks, shipper.ErrLimit)
	}
	ctx, release, err := s.reserveRoom(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	ttl := DefaultTTL
	if r.TTL > 0 {
		ttl = min(r.TTL, maxTTL)
	}
	rd := requestDigest(r)
	j := s.knownJob(rd) // the same request shipped before, to a job still held: no parse (known.go)
	if j != nil {
		noteBuilt(ctx, j) // for the audit log (observe.go)
	} else {
		sr, err := readRequest(r, nil)
		if err != nil {
			return nil, nil, invalid(err)
		}
		j, err = s.job(ctx, sr, r, ttl)
		noteJob(ctx, sr, j)
		if err != nil {
			return nil, nil, err
		}
		s.remember(rd, j.key)
	}
	if err := s.recordJob(ctx, r, j); err != nil { // WithReplicas: the job's record (ha.go)
		return nil, nil, err
	}
	d, err := s.deliver(ctx, r, j)
	return d, j, err
}

// checkShipRequest checks what the API adds to spec.ReadRequest's checks.
func checkShipRequest(r Request) error {
	var errs []error
	if len(r.Tasks) == 0 {
		errs = append(errs, fmt.Errorf("tasks: at least one and at most %d", spec.MaxTasks))
	}
	if r.FetchUses > maxFetchUse {
		errs = append(errs, fmt.Errorf("fetch_uses: at most %d", maxFetchUse))
	}
	if len(r.Dir) > maxDirLen || path.Clean(r.Dir) != r.Dir && r.Dir != "" || r.Dir == ".." || strings.HasPrefix(r.Dir, "../") {
		errs = append(errs, fmt.Errorf("dir %q: want a clean path without \"..\", at most %d bytes", r.Dir, maxDirLen))
	}
	return errors.Join(errs...)
}

// maxDirLen bounds ShipRequest.dir (PATH_MAX).
const maxDirLen = 4096

// readRequest makes the API's request a spec.Request; its problems are the
// caller's (INVALID_ARGUMENT).
func readRequest(r Request, hosts []string) (*spec.Request, error) {
	sr, err := spec.ReadRequest(spec.Document{JobID: r.JobID, Data: r.Spec, Dialect: r.Dialect, Consumer: r.Consumer, Tasks: r.Tasks, Hosts: hosts})
	if err != nil {
		return nil, err
	}
	if err := (shipper.Releases{Spark: r.SparkVersion, Flink: r.FlinkVersion}).Apply(sr.Spec); err != nil {
		return nil, err
	}
	return sr, nil
}

// job returns the job's shipment, prepared once for all concurrent callers
// (keyed by jobKey).
func (s *Server) job(ctx context.Context, sr *spec.Request, r Request, ttl time.Duration) (*job, error) {
	key := jobKey(sr, r)
	if j := s.lookupBuilt(key); j != nil {
		return j, nil
	}
	v, err, _ := s.builds.Do(key, func() (any, error) {
		if j := s.lookupBuilt(key); j != nil {
			return j, nil
		}
		// The build outlives any one caller's cancellation: it is shared.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		opts := prepareOptions(sr, r)
		if s.watching != nil {
			return s.buildWatched(bctx, key, sr, opts, ttl)
		}
		sh, err := shipper.Prepare(bctx, s.builder, sr, opts)
		if err != nil {
			return nil, err
		}
		j, err := s.install(key, sh, s.now().Add(ttl))
		if err != nil {
			sh.Zero()
		}
		return j, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*job), nil
}

// prepareOptions are the pipeline's options for a job: the files in the
// task's sandbox (other directories are the Shipment's At), PEM files too
// when the request's Secret asks for them.
func prepareOptions(sr *spec.Request, r Request) shipper.Options {
	opts := shipper.Options{Dir: shipper.TaskDir}
	if r.Kubernetes.PEM {
		opts.Build.Outputs = kube.PEMOutputs(sr.Spec.StoreType)
	}
	return opts
}

// jobKey is the key of a job: its id, spec, consumer and releases (another
// consumer or release is another build); the hosts join it only when the
// spec issues per-host certificates (a new host set needs a new
// certificate), so that a Flink AppMaster asking for each new TaskManager
// reuses the build.
func jobKey(sr *spec.Request, r Request) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%q\x00%q\x00%t\x00%d\x00", r.Dialect, sr.Consumer, sr.Spec.SparkVersion, sr.Spec.FlinkVersion, r.Kubernetes.PEM, len(r.Spec))
	h.Write(r.Spec)
	if len(sr.Spec.Issues()) > 0 {
		fmt.Fprintf(h, "\x00%q", sr.Spec.Hosts)
	}
	return sr.JobID + "\x00" + hex.EncodeToString(h.Sum(nil))
}

// install makes sh the job at key until expires, retiring the one it
// replaces (zeroed after its own expiry, when no fetch URI can want it). A
// new job past the server's limit of live jobs is refused
// (RESOURCE_EXHAUSTED); the caller still owns sh then.
func (s *Server) install(key string, sh *shipper.Shipment, expires time.Time) (*job, error) {
	j := &job{key: key, shipment: sh, expires: expires}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, replaces := s.jobs[key]
	if !replaces && len(s.jobs) >= s.maxJobs {
		s.sweepLocked()
		if len(s.jobs) >= s.maxJobs {
			return nil, fmt.Errorf("live jobs: the server holds its limit of %d (keyship serve --max-jobs); retry when jobs expire, or ship with a shorter ttl_seconds (%w)", s.maxJobs, shipper.ErrLimit)
		}
	}
	if replaces {
		s.retired = append(s.retired, old)
	}
	s.jobs[key] = j
	return j, nil
}

// lookupBuilt is lookup for a caller about to use the job: on a server that
// watches, a job counts only once its watch is registered. The first
// bundle installs the job a moment before buildWatched registers its watch,
// and a Watch that found the job in that moment failed "built without its
// watch"; a caller that misses it here joins the build in flight instead.
func (s *Server) lookupBuilt(key string) *job {
	j := s.lookup(key)
	if j != nil && s.watching != nil && s.watching.get(key, s.now()) == nil {
		return nil
	}
	return j
}

// lookup returns the live job at key, or nil.
func (s *Server) lookup(key string) *job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.now().Sub(s.lastSweep) >= sweepEvery {
		s.sweepLocked()
	}
	if j, ok := s.jobs[key]; ok && s.now().Before(j.expires) {
		return j
	}
	return nil
}

// toStatus is err on the wire: its code from the one table
// (shipper.Outcomes), its message err's own.
func toStatus(err error) error {
	if st, ok := status.FromError(err); ok && errors.As(err, new(interface{ GRPCStatus() *status.Status })) && st.Message() == err.Error() {
		return st.Err()
	}
	return status.Error(shipper.OutcomeOf(err).Code, err.Error())
}

// deliver delivers the job to the request's targets (TARGET_FETCH when it
// names none), for the files in the request's dir.
func (s *Server) deliver(ctx context.Context, r Request, j *job) (*shipper.Delivery, error) {
	sh := j.shipment
	if r.Dir != "" && r.Dir != sh.Dir {
		var err error
		if sh, err = sh.At(r.Dir); err != nil {
			return nil, err
		}
	}
	want := map[Target]bool{}
	for _, t := range r.Targets {
		want[t] = true
	}
	if len(want) == 0 {
		want[TargetFetch] = true
	}
	var targets []shipper.Target
	if want[TargetSandbox] {
		targets = append(targets, shipper.Sandbox)
	}
	if want[TargetFiles] {
		targets = append(targets, shipper.Files)
	}
	targets = append(targets, s.tasksTarget(r, j, want[TargetFetch], want[TargetMesos]))
	switch {
	case want[TargetMesosTaskInfo]:
		targets = append(targets, shipper.Fragment{})
	case want[TargetMarathonApp]:
		targets = append(targets, shipper.Fragment{Marathon: true})
	}
	if want[TargetKubernetes] || want[TargetKubernetesManifest] {
		t, err := s.kubeTarget(r, j, want[TargetKubernetes], want[TargetKubernetesManifest] && want[TargetSandbox])
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	return sh.Deliver(ctx, targets...)
}

// tasksTarget delivers to the request's tasks: each its own fetch URIs
// (fetch), and the job's Mesos secrets, planned once per job (mesos).
func (s *Server) tasksTarget(r Request, j *job, toFetch, toMesos bool) shipper.Target {
	return shipper.TargetFunc(func(ctx context.Context, sh *shipper.Shipment, d *shipper.Delivery) error {
		if (toFetch || toMesos) && sh.Dir != shipper.TaskDir {
			return fmt.Errorf("dir %q: TARGET_FETCH and TARGET_MESOS deliver to %s (%w)", sh.Dir, shipper.TaskDir, shipper.ErrInvalidRequest)
		}
		d.Tasks = make([]shipper.TaskDelivery, len(r.Tasks))
		for i, t := range r.Tasks {
			d.Tasks[i].TaskID = t.ID
		}
		if toFetch {
			if s.fetch == nil {
				return fmt.Errorf("TARGET_FETCH: this server has no fetch server (keyship serve --fetch-listen) (%w)", shipper.ErrNotConfigured)
			}
			if s.fetch.Dir() != sh.Dir {
				return fmt.Errorf("fetch server writes into %q, the settings point at %q", s.fetch.Dir(), sh.Dir)
			}
			ids := make([]string, len(r.Tasks))
			for i, t := range r.Tasks {
				ids[i] = t.ID
			}
			uris, err := s.publishFetch(ctx, r, j, sh.Files, ids)
			if err != nil {
				if errors.Is(err, fetch.ErrGrantLimit) {
					err = fmt.Errorf("%w (%w)", err, shipper.ErrLimit)
				}
				return err
			}
			for i := range d.Tasks {
				d.Tasks[i].URIs = uris[d.Tasks[i].TaskID]
			}
		}
		if toMesos {
			plan, err := j.mesos()
			if err != nil {
				return err
			}
			d.Mesos = plan
		}
		return nil
	})
}

// Check implements hostv1.ShipperServiceServer: it runs the pre-flight
// checks and keeps nothing.
func (s *Server) Check(ctx context.Context, req *hostv1.CheckRequest) (*hostv1.CheckResponse, error) {
	dialect, ok := dialects[req.GetDialect()]
	if !ok {
		return nil, toStatus(invalid(fmt.Errorf("dialect %s: %w", req.GetDialect(), plugin.ErrUnsupported)))
	}
	r, err := readRequest(Request{JobID: "check", Spec: req.GetSpec(), Dialect: dialect}, req.GetHosts())
	if err == nil {
		var sh *shipper.Shipment
		sh, err = shipper.Prepare(ctx, s.builder, r, shipper.Options{ChecksOnly: true})
		noteShipment(ctx, r, sh) // for the audit log (observe.go)
		if err == nil {
			defer sh.Zero()
			return &hostv1.CheckResponse{Ok: true, Warnings: sh.Bundle.Warnings}, nil
		}
	} else if shipper.Problems(err) == nil {
		return nil, toStatus(invalid(err))
	}
	problems := shipper.Problems(err)
	if problems == nil {
		return nil, toStatus(err)
	}
	return &hostv1.CheckResponse{Problems: problemsToProto(problems)}, nil
}

// Sweep zeroes and drops expired jobs, and deletes their Kubernetes
// Secrets; keyship serve calls it on a timer.
func (s *Server) Sweep() {
	s.mu.Lock()
	s.sweepLocked()
	s.mu.Unlock()
	if s.watching != nil {
		s.watching.sweep(s.now())
	}
	s.sweepKubernetes()
	s.sweepShared() // WithReplicas (ha_watch.go)
}

// DefaultZeroGrace is how long an expired job's bundle stays readable
// before it is zeroed, so that a response being built when the TTL ends
// stays whole.
const DefaultZeroGrace = time.Minute

func (s *Server) sweepLocked() {
	now := s.now()
	s.lastSweep = now
	for k, j := range s.jobs {
		if !now.Before(j.expires.Add(s.zeroGrace)) {
			j.shipment.Zero()
			delete(s.jobs, k)
		}
	}
	s.sweepKnownLocked(now)
	kept := s.retired[:0]
	for _, j := range s.retired {
		if now.Before(j.expires.Add(s.zeroGrace)) {
			kept = append(kept, j)
		} else {
			j.shipment.Zero()
		}
	}
	s.retired = kept
	if s.fetch != nil {
		s.fetch.Sweep()
	}
}

// Jobs returns how many built jobs are held (for tests and metrics).
func (s *Server) Jobs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.jobs)
}
