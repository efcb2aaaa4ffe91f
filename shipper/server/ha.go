package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/server/replicas"
)

// WithReplicas makes the server one of several replicas sharing st
// (keyship serve --ha): each job's record (its request, to build it again
// from) and each fetch grant (a hash of its token, its uses left) are
// written there, the job and the grants of one Ship in one write, so that
// any replica serves a fetch URI another handed out, once across all of
// them, building the job's bundle from its record when it has not built it
// itself (store bytes are deterministic: every replica serves the same
// bytes). Watched jobs are refreshed by one replica at a time (RunReplica).
func WithReplicas(st *replicas.Store) Option {
	return func(s *Server) {
		s.shared = &shared{store: st, recorded: map[string]time.Time{}}
		s.shared.run.led = make(chan struct{})
		if s.fetch != nil {
			s.fetch.Share(sharedFetch{s})
		}
	}
}

// shared is the server's replica state (WithReplicas).
type shared struct {
	store *replicas.Store

	mu sync.Mutex
	// recorded are the job keys whose record is known to exist (this
	// replica wrote or read it), until the job expires: a later Ship of
	// the job writes only its grants.
	recorded map[string]time.Time

	run replicaRun // RunReplica's (ha_watch.go)

	// failing are the due Secrets whose deletion failed and was logged.
	failing map[replicas.Secret]bool
}

// failedOnce notes that sec's deletion failed and reports whether it is
// the first failure since it last succeeded (the one to log).
func (sh *shared) failedOnce(sec replicas.Secret) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.failing[sec] {
		return false
	}
	if sh.failing == nil {
		sh.failing = map[replicas.Secret]bool{}
	}
	sh.failing[sec] = true
	return true
}

// deleted notes that sec's deletion succeeded.
func (sh *shared) deleted(sec replicas.Secret) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.failing, sec)
}

// known reports whether key's record is known to exist.
func (sh *shared) known(key string, now time.Time) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	exp, ok := sh.recorded[key]
	return ok && now.Before(exp)
}

// remember notes that key's record exists until expires.
func (sh *shared) remember(key string, expires, now time.Time) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.recorded) > 1024 {
		for k, exp := range sh.recorded {
			if !now.Before(exp) {
				delete(sh.recorded, k)
			}
		}
	}
	sh.recorded[key] = expires
}

// stateErr is an error of the shared state in shipper.Outcomes' terms: an
// engine that cannot answer is UNAVAILABLE (retryable), like a backend.
func stateErr(err error) error {
	if errors.Is(err, replicas.ErrUnavailable) || errors.Is(err, replicas.ErrClosed) {
		return fmt.Errorf("the replicas' shared state: %w (%w)", err, plugin.ErrUnavailable)
	}
	return fmt.Errorf("the replicas' shared state: %w", err)
}

// jobRecord is the record of job j as request r made it.
func jobRecord(r Request, j *job) *replicas.Job {
	rec := &replicas.Job{
		ID: j.key, Expires: j.expires,
		Request: replicas.Request{
			Spec: r.Spec, Dialect: r.Dialect, Consumer: r.Consumer,
			ConsumerRelease: r.SparkVersion, FlinkRelease: r.FlinkVersion, FetchUses: r.FetchUses,
		},
		Versions: map[string]string{},
	}
	for _, t := range r.Tasks {
		rec.Request.Tasks = append(rec.Request.Tasks, replicas.Task{ID: t.ID, Role: t.Role, Hosts: t.Hosts})
	}
	for _, t := range r.Targets {
		rec.Request.Targets = append(rec.Request.Targets, t.String())
	}
	if k := r.Kubernetes; k != (KubernetesRequest{}) {
		rec.Request.Kubernetes = &replicas.KubernetesTarget{Namespace: k.Namespace, Secret: k.Secret, MountPath: k.MountPath, Persist: k.Persist, Operator: k.Operator, PEM: k.PEM}
	}
	for _, f := range j.shipment.Files {
		if f.Version != "" {
			rec.Versions[f.Path] = f.Version
		}
	}
	return rec
}

// requestOf is the request a job record was made from.
func requestOf(rec *replicas.Job) Request {
	q := rec.Request
	r := Request{
		JobID: jobIDOf(rec.ID), Spec: q.Spec, Dialect: q.Dialect, Consumer: q.Consumer,
		SparkVersion: q.ConsumerRelease, FlinkVersion: q.FlinkRelease, FetchUses: q.FetchUses,
	}
	for _, t := range q.Tasks {
		r.Tasks = append(r.Tasks, spec.Task{ID: t.ID, Role: t.Role, Hosts: t.Hosts})
	}
	for _, name := range q.Targets {
		if v, ok := hostv1.Target_value[name]; ok {
			r.Targets = append(r.Targets, Target(v))
		}
	}
	if k := q.Kubernetes; k != nil {
		r.Kubernetes = KubernetesRequest{Namespace: k.Namespace, Secret: k.Secret, MountPath: k.MountPath, Persist: k.Persist, Operator: k.Operator, PEM: k.PEM}
	}
	return r
}

// jobIDOf is the caller's job id of a job key.
func jobIDOf(key string) string {
	id, _, _ := strings.Cut(key, "\x00")
	return id
}

// publishFetch hands out the fetch URIs of r's tasks for job j: in this
// process's memory, or (WithReplicas) as grants written with the job's
// record, when this replica does not know it to exist yet, in one write.
func (s *Server) publishFetch(ctx context.Context, r Request, j *job, files []materialize.File, ids []string) (map[string][]fetch.URI, error) {
	ttl := j.expires.Sub(s.now())
	if s.shared == nil {
		return s.publish(ctx, r.JobID, ids, files, r.FetchUses, ttl) // in the room the Ship reserved (intake.go)
	}
	return s.fetch.PublishShared(ctx, ids, files, r.FetchUses, ttl, func(ctx context.Context, gs []fetch.Grant) error {
		grants := make([]replicas.Grant, len(gs))
		for i, g := range gs {
			grants[i] = replicas.Grant{TokenHash: g.TokenHash, JobID: j.key, Task: g.Task, Uses: g.Uses, Expires: g.Expires}
		}
		return s.shared.publish(ctx, s.now(), r, j, grants)
	})
}

// publish writes grants, and j's record unless it is known to exist, in
// one write.
func (sh *shared) publish(ctx context.Context, now time.Time, r Request, j *job, grants []replicas.Grant) error {
	var rec *replicas.Job
	if !sh.known(j.key, now) {
		rec = jobRecord(r, j)
	}
	first, err := sh.store.PublishFirst(ctx, rec, grants)
	if err != nil {
		return stateErr(err)
	}
	if rec != nil && !first {
		if err := sh.outlive(ctx, j); err != nil {
			return err
		}
	}
	sh.remember(j.key, j.expires, now)
	return nil
}

// outlive makes the job's record live as long as this replica's job: when
// another replica wrote it first, for a build with an earlier expiry, the
// record is given j's, so that the URIs this replica hands out until then
// are served by every replica (one read when a replica builds a job whose
// record another wrote; a write only in that case).
func (sh *shared) outlive(ctx context.Context, j *job) error {
	for {
		rec, v, err := sh.store.Job(ctx, j.key)
		if err != nil {
			return stateErr(err)
		}
		if !rec.Expires.Before(j.expires) {
			return nil
		}
		rec.Expires = j.expires
		if _, err := sh.store.UpdateJob(ctx, rec, v); !errors.Is(err, replicas.ErrConflict) {
			if err != nil {
				return stateErr(err)
			}
			return nil
		}
	}
}

// recordJob writes j's record when this replica does not know it to exist
// and r does not ask for TARGET_FETCH (whose grants carry it in the same
// write): before the delivery, so that a Secret it applies is recorded in
// it.
func (s *Server) recordJob(ctx context.Context, r Request, j *job) error {
	if s.shared == nil || s.shared.known(j.key, s.now()) || s.fetch != nil && wantsFetch(r.Targets) {
		return nil
	}
	return s.shared.publish(ctx, s.now(), r, j, nil)
}

// sharedFetch takes fetches' uses in the shared state (fetch.Shared).
type sharedFetch struct{ s *Server }

// Take implements fetch.Shared: it reads the grant, has the job's bundle
// (built here, or from the job's record), and only then takes the use, so
// that a replica that cannot build the bundle loses no use.
func (f sharedFetch) Take(ctx context.Context, th [32]byte, file string, consume bool) (fetch.Taken, error) {
	s := f.s
	st := s.shared.store
	g, _, err := st.Grant(ctx, th)
	if errors.Is(err, replicas.ErrNotFound) {
		return fetch.Taken{}, fetch.ErrUnknown
	}
	if err != nil {
		return fetch.Taken{}, stateErr(err)
	}
	t := fetch.Taken{JobID: jobIDOf(g.JobID), TaskID: g.Task}
	if !s.now().Before(g.Expires) {
		return t, fetch.ErrExpired
	}
	left, ok := g.Uses[file]
	if !ok {
		return t, fetch.ErrUnknown
	}
	if left <= 0 {
		return t, fetch.ErrUsedUp
	}
	j, err := s.sharedJob(ctx, g.JobID, g.Expires)
	if err != nil {
		return t, err
	}
	for _, fl := range j.shipment.Files {
		if fl.Path == file {
			t.Contents, t.Version = fl.Contents, fl.Version
		}
	}
	if t.Contents == nil {
		return t, fetch.ErrUnknown
	}
	if !consume {
		return t, nil
	}
	switch _, err := st.Consume(ctx, th, file); {
	case errors.Is(err, replicas.ErrUsedUp):
		return t, fetch.ErrUsedUp
	case errors.Is(err, replicas.ErrExpired):
		return t, fetch.ErrExpired
	case errors.Is(err, replicas.ErrNotFound):
		return t, fetch.ErrUnknown
	case err != nil:
		return t, stateErr(err)
	}
	return t, nil
}

// sharedJob returns the job at key: this replica's, or built from its
// record (once for all concurrent fetches), kept until the later of the
// record's and the grant's expiry.
func (s *Server) sharedJob(ctx context.Context, key string, until time.Time) (*job, error) {
	if j := s.lookupBuilt(key); j != nil {
		return j, nil
	}
	v, err, _ := s.builds.Do(key, func() (any, error) {
		if j := s.lookupBuilt(key); j != nil {
			return j, nil
		}
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		rec, _, err := s.shared.store.Job(bctx, key)
		if errors.Is(err, replicas.ErrNotFound) {
			return nil, fmt.Errorf("the job's record is gone (it expired): %w", fetch.ErrExpired)
		}
		if err != nil {
			return nil, stateErr(err)
		}
		return s.rebuild(bctx, rec, until)
	})
	if err != nil {
		return nil, err
	}
	return v.(*job), nil
}

// rebuild builds the job of rec here (through its watch when the server
// watches jobs, so that a Watch call here can follow it), under rec's key.
// Call it inside s.builds for the key.
func (s *Server) rebuild(ctx context.Context, rec *replicas.Job, until time.Time) (*job, error) {
	r := requestOf(rec)
	sr, err := readRequest(r, nil)
	if err != nil {
		return nil, fmt.Errorf("job record of %s: %w", r.JobID, err)
	}
	expires := rec.Expires
	if until.After(expires) {
		expires = until
	}
	ttl := expires.Sub(s.now())
	if ttl <= 0 {
		return nil, fetch.ErrExpired
	}
	opts := prepareOptions(sr, r)
	if s.watching != nil {
		return s.buildWatched(ctx, rec.ID, sr, opts, ttl)
	}
	sh, err := shipper.Prepare(ctx, s.builder, sr, opts)
	if err != nil {
		return nil, err
	}
	j, err := s.install(rec.ID, sh, expires)
	if err != nil {
		sh.Zero()
		return nil, err
	}
	s.shared.remember(rec.ID, rec.Expires, s.now())
	return j, nil
}
