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
	"path"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyship/keyship/host/resolve"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/fetch"
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
	// retired are replaced jobs whose bundles are zeroed after zeroGrace.
	retired   []*job
	lastSweep time.Time
	// watching keeps watched jobs fresh (watch.go); nil without WithWatch.
	watching *watching
}

// sweepEvery bounds how often a lookup sweeps expired jobs and fetch grants.
// Expiry is enforced at lookup; sweeping only frees and zeroes memory, and it
// walks every job, so it stays off most requests (keyship serve also sweeps
// on a timer).
const sweepEvery = 10 * time.Second

// job is one prepared shipment and when it expires.
type job struct {
	shipment *shipper.Shipment
	expires  time.Time

	// mesos holds the job's secret volumes and environment, planned once
	// for every Ship of the job (they are the same for each of its tasks).
	mesosOnce sync.Once
	vols      []*hostv1.SecretVolume
	env       []*hostv1.SecretEnv
	mesosErr  error
}

// mesos returns the job's Mesos secret volumes and environment.
func (j *job) mesos() ([]*hostv1.SecretVolume, []*hostv1.SecretEnv, error) {
	j.mesosOnce.Do(func() { j.vols, j.env, j.mesosErr = mesosSecrets(j.shipment) })
	return j.vols, j.env, j.mesosErr
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

// WithClock sets the server's clock (for tests of expiry).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New returns a Server that builds through b (a *host.Host) and publishes
// fetch URIs on fs (nil disables TARGET_FETCH).
func New(b shipper.Builder, fs *fetch.Server, opts ...Option) *Server {
	s := &Server{builder: b, fetch: fs, now: time.Now, jobs: map[string]*job{}, maxJobs: DefaultMaxJobs, maxTasks: DefaultMaxTasks}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Ship implements hostv1.ShipperServiceServer.
func (s *Server) Ship(ctx context.Context, req *hostv1.ShipRequest) (*hostv1.ShipResponse, error) {
	if err := checkShipRequest(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if n := len(req.GetTasks()); n > s.maxTasks {
		return nil, status.Errorf(codes.ResourceExhausted, "tasks: %d in one Ship, the server's limit is %d (keyship serve --max-tasks); ship the job's tasks in several calls", n, s.maxTasks)
	}
	if err := s.checkRoom(req); err != nil {
		return nil, err
	}
	ttl := DefaultTTL
	if req.GetTtlSeconds() > 0 {
		ttl = min(time.Duration(req.GetTtlSeconds())*time.Second, maxTTL)
	}
	r, err := readRequest(req.GetJobId(), req.GetSpec(), req.GetDialect(), tasksOf(req.GetTasks()), nil)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	j, err := s.job(ctx, r, req.GetSpec(), req.GetDialect(), ttl)
	noteJob(ctx, r, j) // for the audit log (observe.go)
	if err != nil {
		return nil, err
	}
	return s.response(ctx, req, j)
}

// checkShipRequest checks what the API adds to spec.ReadRequest's checks.
func checkShipRequest(req *hostv1.ShipRequest) error {
	var errs []error
	if len(req.GetTasks()) == 0 {
		errs = append(errs, fmt.Errorf("tasks: at least one and at most %d", spec.MaxTasks))
	}
	if req.GetFetchUses() > maxFetchUse {
		errs = append(errs, fmt.Errorf("fetch_uses: at most %d", maxFetchUse))
	}
	errs = append(errs, checkTTL(req.GetTtlSeconds()), checkTargets(req.GetTargets()))
	return errors.Join(errs...)
}

func tasksOf(in []*hostv1.Task) []spec.Task {
	out := make([]spec.Task, len(in))
	for i, t := range in {
		out[i] = spec.Task{ID: t.GetId(), Role: t.GetRole(), Hosts: t.GetHosts()}
	}
	return out
}

// readRequest makes the API's request a spec.Request; its problems are the
// caller's (INVALID_ARGUMENT).
func readRequest(jobID string, doc []byte, dialect hostv1.Dialect, tasks []spec.Task, hosts []string) (*spec.Request, error) {
	name, ok := dialects[dialect]
	if !ok {
		return nil, fmt.Errorf("dialect %s: %w", dialect, plugin.ErrUnsupported)
	}
	return spec.ReadRequest(spec.Document{JobID: jobID, Data: doc, Dialect: name, Tasks: tasks, Hosts: hosts})
}

// job returns the job's shipment, prepared once for all concurrent callers
// (keyed by jobKey).
func (s *Server) job(ctx context.Context, r *spec.Request, doc []byte, dialect hostv1.Dialect, ttl time.Duration) (*job, error) {
	key := jobKey(r, doc, dialect)
	if j := s.lookup(key); j != nil {
		return j, nil
	}
	v, err, _ := s.builds.Do(key, func() (any, error) {
		if j := s.lookup(key); j != nil {
			return j, nil
		}
		// The build outlives any one caller's cancellation: it is shared.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if s.watching != nil {
			return s.buildWatched(bctx, key, r, ttl)
		}
		sh, err := shipper.Prepare(bctx, s.builder, r, shipper.Options{Dir: shipper.TaskDir})
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
		return nil, toStatus(err)
	}
	return v.(*job), nil
}

// jobKey is the key of a job: its id and spec; the hosts join it only when
// the spec issues per-host certificates (a new host set needs a new
// certificate), so that a Flink AppMaster asking for each new TaskManager
// reuses the build.
func jobKey(r *spec.Request, doc []byte, dialect hostv1.Dialect) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00", dialect, len(doc))
	h.Write(doc)
	if len(r.Spec.Issues()) > 0 {
		fmt.Fprintf(h, "\x00%q", r.Spec.Hosts)
	}
	return r.JobID + "\x00" + hex.EncodeToString(h.Sum(nil))
}

// install makes sh the job at key until expires, retiring the one it
// replaces (zeroed after its own expiry, when no fetch URI can want it). A
// new job past the server's limit of live jobs is refused
// (RESOURCE_EXHAUSTED); the caller still owns sh then.
func (s *Server) install(key string, sh *shipper.Shipment, expires time.Time) (*job, error) {
	j := &job{shipment: sh, expires: expires}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, replaces := s.jobs[key]
	if !replaces && len(s.jobs) >= s.maxJobs {
		s.sweepLocked()
		if len(s.jobs) >= s.maxJobs {
			return nil, status.Errorf(codes.ResourceExhausted, "live jobs: the server holds its limit of %d (keyship serve --max-jobs); retry when jobs expire, or ship with a shorter ttl_seconds", s.maxJobs)
		}
	}
	if replaces {
		s.retired = append(s.retired, old)
	}
	s.jobs[key] = j
	return j, nil
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

// dialects maps the API's dialects to host/spec's.
var dialects = map[hostv1.Dialect]string{
	hostv1.Dialect_DIALECT_UNSPECIFIED: "",
	hostv1.Dialect_DIALECT_DCOS:        spec.DialectDCOS,
	hostv1.Dialect_DIALECT_SPARK:       spec.DialectSpark,
	hostv1.Dialect_DIALECT_FLINK:       spec.DialectFlink,
	hostv1.Dialect_DIALECT_LIBPROCESS:  spec.DialectLibprocess,
}

// DialectOf returns the API dialect of a host/spec dialect name ("" is
// DIALECT_UNSPECIFIED: detect).
func DialectOf(name string) hostv1.Dialect {
	for d, n := range dialects {
		if n == name {
			return d
		}
	}
	return hostv1.Dialect_DIALECT_UNSPECIFIED
}

// toStatus maps pipeline errors to gRPC codes: spec and check failures are
// the caller's input (INVALID_ARGUMENT); backend errors keep their kind.
func toStatus(err error) error {
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	// Spec and check failures are the caller's input; everything else maps
	// through the one table of the plugin SDK.
	if fe := (*spec.FieldError)(nil); errors.As(err, &fe) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	code := plugin.Code(err)
	if code == codes.Unknown {
		code = codes.Internal
	}
	return status.Error(code, err.Error())
}

func (s *Server) response(ctx context.Context, req *hostv1.ShipRequest, j *job) (*hostv1.ShipResponse, error) {
	targets := map[hostv1.Target]bool{}
	for _, t := range req.GetTargets() {
		targets[t] = true
	}
	if len(targets) == 0 {
		targets[hostv1.Target_TARGET_FETCH] = true
	}
	sh := j.shipment
	dir := sh.Dir
	if s.fetch != nil && s.fetch.Dir() != dir {
		return nil, status.Errorf(codes.Internal, "fetch server writes into %q, the settings point at %q", s.fetch.Dir(), dir)
	}
	resp := &hostv1.ShipResponse{JobId: req.GetJobId(), Warnings: sh.Bundle.Warnings, ExpiresUnix: j.expires.Unix()}
	notAfter := sh.NotAfter()
	for _, f := range sh.Files {
		pf := &hostv1.File{Path: path.Join(dir, f.Path), Mode: uint32(f.Mode), Version: f.Version, Role: string(f.Role)}
		if t, ok := notAfter[f.Path]; ok {
			pf.NotAfterUnix = t.Unix()
		}
		if targets[hostv1.Target_TARGET_FILES] {
			pf.Contents = f.Contents
		}
		resp.Files = append(resp.Files, pf)
	}
	var uris map[string][]fetch.URI
	if targets[hostv1.Target_TARGET_FETCH] {
		if s.fetch == nil {
			return nil, status.Error(codes.FailedPrecondition, "TARGET_FETCH: this server has no fetch server (keyship serve --fetch-listen)")
		}
		tasks := make([]string, len(req.GetTasks()))
		for i, t := range req.GetTasks() {
			tasks[i] = t.GetId()
		}
		var err error
		if uris, err = s.fetch.PublishJob(req.GetJobId(), tasks, sh.Files, int(req.GetFetchUses()), j.expires.Sub(s.now())); err != nil {
			code := codes.Internal
			if errors.Is(err, fetch.ErrGrantLimit) {
				code = codes.ResourceExhausted
			}
			return nil, status.Error(code, err.Error())
		}
	}
	var vols []*hostv1.SecretVolume
	var env []*hostv1.SecretEnv
	if targets[hostv1.Target_TARGET_MESOS] {
		var err error
		if vols, env, err = j.mesos(); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
	}
	for _, t := range req.GetTasks() {
		ts := &hostv1.TaskShipment{TaskId: t.GetId(), Volumes: vols, Env: env}
		for _, u := range uris[t.GetId()] {
			ts.Uris = append(ts.Uris, &hostv1.FetchURI{Value: u.Value, OutputFile: u.OutputFile})
		}
		resp.Tasks = append(resp.Tasks, ts)
	}
	for _, st := range sh.Settings {
		if st.Password == nil {
			resp.Settings = append(resp.Settings, &hostv1.Setting{Key: st.Key, Value: st.Value})
		}
	}
	if targets[hostv1.Target_TARGET_KUBERNETES] {
		if err := s.shipKubernetes(ctx, req, j, resp); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// mesosSecrets returns the job's secret volumes (one per file) and secret
// environment variables (the passwords): a REFERENCE where DC/OS holds
// exactly the bytes, a VALUE where keyship built them.
func mesosSecrets(sh *shipper.Shipment) ([]*hostv1.SecretVolume, []*hostv1.SecretEnv, error) {
	plan, err := sh.Mesos()
	if err != nil {
		return nil, nil, err
	}
	var vols []*hostv1.SecretVolume
	var env []*hostv1.SecretEnv
	for _, it := range plan.Items {
		sec := &hostv1.Secret{}
		if ms := it.Secret(); ms.Reference != nil {
			sec.Source = &hostv1.Secret_Reference{Reference: &hostv1.SecretReference{Name: ms.Reference.Name, Key: ms.Reference.Key}}
		} else {
			sec.Source = &hostv1.Secret_Value{Value: ms.Value.Data}
		}
		if it.Env != "" {
			env = append(env, &hostv1.SecretEnv{Name: it.Env, Secret: sec})
		} else {
			vols = append(vols, &hostv1.SecretVolume{ContainerPath: it.Path, Secret: sec})
		}
	}
	return vols, env, nil
}

// Check implements hostv1.ShipperServiceServer: it runs the pre-flight
// checks and keeps nothing.
func (s *Server) Check(ctx context.Context, req *hostv1.CheckRequest) (*hostv1.CheckResponse, error) {
	r, err := readRequest("check", req.GetSpec(), req.GetDialect(), nil, req.GetHosts())
	if err == nil {
		var sh *shipper.Shipment
		sh, err = shipper.Prepare(ctx, s.builder, r, shipper.Options{ChecksOnly: true})
		noteShipment(ctx, r, sh) // for the audit log (observe.go)
		if err == nil {
			defer sh.Zero()
			return &hostv1.CheckResponse{Ok: true, Warnings: sh.Bundle.Warnings}, nil
		}
	} else if Problems(err) == nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	problems := Problems(err)
	if problems == nil {
		return nil, toStatus(err)
	}
	return &hostv1.CheckResponse{Problems: problems}, nil
}

// Problems turns spec, resolve and materialize errors into the API's
// Problems, or returns nil when err holds none of them.
func Problems(err error) []*hostv1.Problem {
	var out []*hostv1.Problem
	var walk func(error)
	walk = func(e error) {
		var re *resolve.Error
		var fe *spec.FieldError
		switch {
		case errors.As(e, &re) && re == e:
			out = append(out, &hostv1.Problem{Field: re.Field.Name, Ref: re.Field.Ref.String(), Reason: re.Err.Error()})
			return
		case errors.As(e, &fe) && fe == e:
			out = append(out, &hostv1.Problem{Field: fe.Field, Ref: fe.Ref, Reason: fe.Reason})
			return
		}
		if u, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range u.Unwrap() {
				walk(x)
			}
		} else if x := errors.Unwrap(e); x != nil {
			walk(x)
		}
	}
	walk(err)
	return out
}

// Sweep zeroes and drops expired jobs, and deletes their Kubernetes
// Secrets; keyship serve calls it on a timer.
func (s *Server) Sweep() {
	s.mu.Lock()
	s.sweepLocked()
	s.mu.Unlock()
	s.sweepKubernetes()
}

// zeroGrace is how long an expired job's bundle stays readable before it is
// zeroed, so that a response being built when the TTL ends stays whole.
const zeroGrace = time.Minute

func (s *Server) sweepLocked() {
	now := s.now()
	s.lastSweep = now
	for k, j := range s.jobs {
		if !now.Before(j.expires.Add(zeroGrace)) {
			j.shipment.Zero()
			delete(s.jobs, k)
		}
	}
	kept := s.retired[:0]
	for _, j := range s.retired {
		if now.Before(j.expires.Add(zeroGrace)) {
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
