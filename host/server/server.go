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
//	srv := server.New(h, fs)
//	g := grpc.NewServer()
//	hostv1.RegisterShipperServiceServer(g, srv)
package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/resolve"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/conf"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/mesos"
)

// Limits on a request; larger ones are refused with INVALID_ARGUMENT.
const (
	maxJobID    = 256
	maxSpec     = 1 << 20
	maxTasks    = 10000
	DefaultTTL  = 10 * time.Minute
	maxTTL      = 24 * time.Hour
	maxFetchUse = 1000
)

// Server implements hostv1.ShipperServiceServer.
type Server struct {
	hostv1.UnimplementedShipperServiceServer
	host  *host.Host
	fetch *fetch.Server
	now   func() time.Time

	builds singleflight.Group
	mu     sync.Mutex
	jobs   map[string]*job // by job key (job id + spec digest)
	// retired are replaced jobs whose bundles are zeroed after zeroGrace.
	retired   []*job
	lastSweep time.Time
}

// sweepEvery bounds how often a lookup sweeps expired jobs and fetch grants.
// Expiry is enforced at lookup; sweeping only frees and zeroes memory, and it
// walks every job, so it stays off most requests (keyship serve also sweeps
// on a timer).
const sweepEvery = 10 * time.Second

// job is one built bundle, what ships with it, and when it expires.
type job struct {
	bundle *materialize.Bundle
	// files are the bundle's files plus the consumer's extra files.
	files    []materialize.File
	settings []conf.Setting
	sources  mesos.Sources
	expires  time.Time
}

// Option changes a Server.
type Option func(*Server)

// WithClock sets the server's clock (for tests of expiry).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New returns a Server that builds through h and publishes fetch URIs on fs
// (nil disables TARGET_FETCH).
func New(h *host.Host, fs *fetch.Server, opts ...Option) *Server {
	s := &Server{host: h, fetch: fs, now: time.Now, jobs: map[string]*job{}}
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
	ttl := DefaultTTL
	if req.GetTtlSeconds() > 0 {
		ttl = min(time.Duration(req.GetTtlSeconds())*time.Second, maxTTL)
	}
	var hosts []string
	for _, t := range req.GetTasks() {
		hosts = append(hosts, t.GetHosts()...)
	}
	j, err := s.job(ctx, req.GetJobId(), req.GetSpec(), req.GetDialect(), hosts, ttl)
	if err != nil {
		return nil, err
	}
	return s.response(req, j)
}

func checkShipRequest(req *hostv1.ShipRequest) error {
	var errs []error
	if req.GetJobId() == "" || len(req.GetJobId()) > maxJobID {
		errs = append(errs, fmt.Errorf("job_id: required, at most %d bytes", maxJobID))
	}
	if len(req.GetSpec()) == 0 || len(req.GetSpec()) > maxSpec {
		errs = append(errs, fmt.Errorf("spec: required, at most %d bytes", maxSpec))
	}
	if n := len(req.GetTasks()); n == 0 || n > maxTasks {
		errs = append(errs, fmt.Errorf("tasks: at least one and at most %d", maxTasks))
	}
	seen := map[string]bool{}
	for i, t := range req.GetTasks() {
		if t.GetId() == "" || seen[t.GetId()] {
			errs = append(errs, fmt.Errorf("tasks[%d].id: required and unique in the job", i))
		}
		seen[t.GetId()] = true
	}
	if req.GetFetchUses() > maxFetchUse {
		errs = append(errs, fmt.Errorf("fetch_uses: at most %d", maxFetchUse))
	}
	return errors.Join(errs...)
}

// job returns the job's bundle, building it once for all concurrent callers.
// The key is the job id and the spec; the hosts join it only when the spec
// issues per-host certificates (a new host set needs a new certificate),
// so that a Flink AppMaster asking for each new TaskManager reuses the build.
func (s *Server) job(ctx context.Context, jobID string, specDoc []byte, dialect hostv1.Dialect, hosts []string, ttl time.Duration) (*job, error) {
	sp, name, err := parseSpec(specDoc, dialect)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00", dialect, len(specDoc))
	h.Write(specDoc)
	if len(sp.Issues()) > 0 {
		sorted := slices.Clone(hosts)
		slices.Sort(sorted)
		fmt.Fprintf(h, "\x00%q", slices.Compact(sorted))
	}
	key := jobID + "\x00" + hex.EncodeToString(h.Sum(nil))
	if j := s.lookup(key); j != nil {
		return j, nil
	}
	v, err, _ := s.builds.Do(key, func() (any, error) {
		if j := s.lookup(key); j != nil {
			return j, nil
		}
		sp.Hosts = append(sp.Hosts, hosts...)
		// The build outlives any one caller's cancellation: it is shared.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		j, err := s.build(bctx, sp, name)
		if err != nil {
			return nil, err
		}
		j.expires = s.now().Add(ttl)
		s.mu.Lock()
		if old, ok := s.jobs[key]; ok {
			s.retired = append(s.retired, old)
		}
		s.jobs[key] = j
		s.mu.Unlock()
		return j, nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return v.(*job), nil
}

// build builds sp for its dialect's consumer: the stores, the consumer's
// settings and extra files, and which outputs DC/OS can send by reference.
func (s *Server) build(ctx context.Context, sp *spec.Spec, dialect string) (*job, error) {
	consumer := conf.ConsumerOf(dialect)
	b, origins, err := s.host.BuildWithOrigins(ctx, sp, materialize.Options{Outputs: conf.Outputs(consumer)})
	if err != nil {
		return nil, err
	}
	settings, extra, err := conf.For(consumer, b, shipDir, sp)
	if err != nil {
		b.Zero()
		return nil, err
	}
	return &job{bundle: b, files: append(slices.Clone(b.Files), extra...), settings: settings, sources: MesosSources(ctx, s.host, origins)}, nil
}

// MesosSources keeps the origins that a Mesos secret resolver can read by
// reference: whole secrets of a DC/OS backend, named by their path.
func MesosSources(ctx context.Context, h *host.Host, o *host.Origins) mesos.Sources {
	src := mesos.Sources{Files: map[materialize.Role]mesos.Reference{}}
	ref := func(f *spec.Field) *mesos.Reference {
		if f == nil || f.Ref.Field != "" || f.Ref.Version != "" {
			return nil
		}
		if name, err := h.BackendName(ctx, f.Ref); err != nil || name != "dcos" {
			return nil
		}
		return &mesos.Reference{Name: f.Ref.Path}
	}
	for role, f := range o.Files {
		if r := ref(&f); r != nil {
			src.Files[role] = *r
		}
	}
	src.KeystorePassword, src.KeyPassword, src.TruststorePassword = ref(o.KeystorePassword), ref(o.KeyPassword), ref(o.TruststorePassword)
	return src
}

// shipDir is where, relative to a task's sandbox, the files land.
const shipDir = ".keyship"

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

// parseSpec parses a request document in its dialect and returns the
// dialect it was read as.
func parseSpec(doc []byte, dialect hostv1.Dialect) (*spec.Spec, string, error) {
	name, ok := dialects[dialect]
	if !ok {
		return nil, "", fmt.Errorf("dialect %s: %w", dialect, plugin.ErrUnsupported)
	}
	if name == "" {
		var err error
		if name, err = spec.Detect(doc); err != nil {
			return nil, "", err
		}
	}
	sp, err := spec.Parse(doc, name)
	return sp, name, err
}

// toStatus maps pipeline errors to gRPC codes: spec and check failures are
// the caller's input (INVALID_ARGUMENT); backend errors keep their kind.
func toStatus(err error) error {
	var fe *spec.FieldError
	code := codes.Internal
	switch {
	case errors.Is(err, plugin.ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, plugin.ErrPermissionDenied):
		code = codes.PermissionDenied
	case errors.Is(err, plugin.ErrNotFound):
		code = codes.NotFound
	case errors.As(err, &fe), errors.Is(err, plugin.ErrInvalidConfig):
		code = codes.InvalidArgument
	case errors.Is(err, plugin.ErrUnsupported):
		code = codes.Unimplemented
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}

func (s *Server) response(req *hostv1.ShipRequest, j *job) (*hostv1.ShipResponse, error) {
	targets := map[hostv1.Target]bool{}
	for _, t := range req.GetTargets() {
		targets[t] = true
	}
	if len(targets) == 0 {
		targets[hostv1.Target_TARGET_FETCH] = true
	}
	dir := shipDir
	if s.fetch != nil && s.fetch.Dir() != shipDir {
		return nil, status.Errorf(codes.Internal, "fetch server writes into %q, the settings point at %q", s.fetch.Dir(), shipDir)
	}
	resp := &hostv1.ShipResponse{JobId: req.GetJobId(), Warnings: j.bundle.Warnings, ExpiresUnix: j.expires.Unix()}
	for _, f := range j.files {
		pf := &hostv1.File{Path: path.Join(dir, f.Path), Mode: uint32(f.Mode), Version: f.Version, Role: string(f.Role)}
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
		files := make([]fetch.File, len(j.files))
		for i, f := range j.files {
			files[i] = fetch.File{Path: f.Path, Contents: f.Contents}
		}
		tasks := make([]string, len(req.GetTasks()))
		for i, t := range req.GetTasks() {
			tasks[i] = t.GetId()
		}
		var err error
		if uris, err = s.fetch.Publish(tasks, files, int(req.GetFetchUses()), j.expires.Sub(s.now())); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
	}
	var vols []*hostv1.SecretVolume
	var env []*hostv1.SecretEnv
	if targets[hostv1.Target_TARGET_MESOS] {
		var err error
		if vols, env, err = mesosSecrets(j, dir); err != nil {
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
	for _, st := range j.settings {
		if st.Password == nil {
			resp.Settings = append(resp.Settings, &hostv1.Setting{Key: st.Key, Value: st.Value})
		}
	}
	return resp, nil
}

// mesosSecrets returns the job's secret volumes (one per file) and secret
// environment variables (the passwords): a REFERENCE where DC/OS holds
// exactly the bytes, a VALUE where keyship built them.
func mesosSecrets(j *job, dir string) ([]*hostv1.SecretVolume, []*hostv1.SecretEnv, error) {
	plan, err := mesos.NewPlan(&materialize.Bundle{Files: j.files, KeystorePassword: j.bundle.KeystorePassword,
		KeyPassword: j.bundle.KeyPassword, TruststorePassword: j.bundle.TruststorePassword}, dir, j.sources)
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
	if len(req.GetSpec()) == 0 || len(req.GetSpec()) > maxSpec {
		return nil, status.Errorf(codes.InvalidArgument, "spec: required, at most %d bytes", maxSpec)
	}
	sp, _, err := parseSpec(req.GetSpec(), req.GetDialect())
	if err != nil && Problems(err) == nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err == nil {
		sp.Hosts = append(sp.Hosts, req.GetHosts()...)
		var b *materialize.Bundle
		if b, err = s.host.Build(ctx, sp, materialize.Options{}); err == nil {
			defer b.Zero()
			return &hostv1.CheckResponse{Ok: true, Warnings: b.Warnings}, nil
		}
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

// Sweep zeroes and drops expired jobs; keyship serve calls it on a timer.
func (s *Server) Sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
}

// zeroGrace is how long an expired job's bundle stays readable before it is
// zeroed, so that a response being built when the TTL ends stays whole.
const zeroGrace = time.Minute

func (s *Server) sweepLocked() {
	now := s.now()
	s.lastSweep = now
	for k, j := range s.jobs {
		if !now.Before(j.expires.Add(zeroGrace)) {
			j.bundle.Zero()
			delete(s.jobs, k)
		}
	}
	kept := s.retired[:0]
	for _, j := range s.retired {
		if now.Before(j.expires.Add(zeroGrace)) {
			kept = append(kept, j)
		} else {
			j.bundle.Zero()
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
