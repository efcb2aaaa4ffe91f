package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/server/replicas"
	"github.com/keyship/keyship/shipper/watch"
)

// refreshElection is the election of the replica that refreshes watched
// jobs and sweeps the shared state.
const refreshElection = "refresher"

// campaignRetry is how long RunReplica waits before it campaigns again
// after the state failed to answer.
const campaignRetry = time.Second

// replicaRun is what RunReplica keeps while it runs.
type replicaRun struct {
	running atomic.Bool // RunReplica runs: only the leader sweeps
	leading atomic.Bool
	ledOnce sync.Once
	led     chan struct{} // closed when the replica first leads
}

// Led returns a channel closed once this replica has led (for tests and
// readiness); nil without WithReplicas.
func (s *Server) Led() <-chan struct{} {
	if s.shared == nil {
		return nil
	}
	return s.shared.run.led
}

// Leading reports whether this replica leads now: it refreshes watched
// jobs and sweeps the shared state. False without WithReplicas.
func (s *Server) Leading() bool { return s.shared != nil && s.shared.run.leading.Load() }

// RunReplica runs what a replica does besides answering calls, until ctx
// ends: it campaigns for the refresher's leadership and, while it leads,
// runs the Watcher (w, the one WithWatch was given; nil when the server
// does not watch) over every watched job in the shared state, whichever
// replica its Watch came to, and records each new bundle in the job's
// record; on every replica it polls the records of the jobs its own Watch
// streams follow, every refresh interval, and ships a newer generation to
// them. Without WithReplicas it only runs w.
//
// Polling, not ZooKeeper watches or a Kubernetes informer: State has no
// watch primitive on all three engines, and one Get per followed job per
// refresh interval is bounded by the jobs this replica streams.
func (s *Server) RunReplica(ctx context.Context, w *watch.Watcher) error {
	if s.shared == nil {
		if w != nil {
			return w.Run(ctx)
		}
		<-ctx.Done()
		return nil
	}
	run := &s.shared.run
	run.running.Store(true)
	defer run.running.Store(false)
	if w != nil {
		go s.pollWatched(ctx, w.Interval())
	}
	for ctx.Err() == nil {
		l, err := s.shared.store.Campaign(ctx, refreshElection)
		if err != nil {
			if ctx.Err() == nil {
				s.logf("campaign for the refresher's leadership", err)
				wait(ctx, campaignRetry)
			}
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-l.Done():
				cancel()
			case <-lctx.Done():
			}
		}()
		run.leading.Store(true)
		run.ledOnce.Do(func() { close(run.led) })
		s.lead(lctx, w)
		run.leading.Store(false)
		cancel()
		if ctx.Err() != nil {
			rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = l.Resign(rctx)
			rcancel()
		}
	}
	return nil
}

// wait waits for d or ctx's end.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// logf logs an error of the replica's background work.
func (s *Server) logf(what string, err error) {
	switch {
	case s.logger != nil:
		s.logger.Warn(what, "error", err)
	case s.watching != nil:
		s.watching.cfg.Logger.Warn(what, "error", err)
	}
}

// lead is the leader's work until ctx ends (the leadership ended): the
// Watcher runs, and every watched job in the shared state is adopted into
// it at once and then every refresh interval.
func (s *Server) lead(ctx context.Context, w *watch.Watcher) {
	if w == nil {
		<-ctx.Done()
		return
	}
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	defer func() { <-done }()
	for {
		s.adopt(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.Interval()):
		}
	}
}

// adopt builds and follows every watched job of the shared state that this
// replica does not follow yet (its Watch came to another replica, or came
// before every replica restarted).
func (s *Server) adopt(ctx context.Context) {
	jobs, err := s.shared.store.Jobs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.logf("list the watched jobs", err)
		}
		return
	}
	for _, rec := range jobs {
		if !rec.Watched || s.watching.get(rec.ID, s.now()) != nil {
			continue
		}
		if _, err := s.sharedJob(ctx, rec.ID, rec.Expires); err != nil {
			s.logf("build a watched job", err)
			continue
		}
		if wj := s.watching.follow(rec.ID, s.now()); wj != nil {
			wj.seen(rec.Generation)
		}
	}
}

// pollWatched ships, to this replica's Watch streams, each newer
// generation of their jobs that the leader recorded, every interval, with
// the reason and changes the leader recorded with it (those of the newest
// generation, when the leader recorded more than one since the last poll).
func (s *Server) pollWatched(ctx context.Context, interval time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		if s.Leading() {
			continue // the Watcher ships to this replica's streams itself
		}
		for key, wj := range s.watching.followed(s.now()) {
			rec, _, err := s.shared.store.Job(ctx, key)
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, replicas.ErrNotFound) {
					s.logf("read a watched job's record", err)
				}
				continue
			}
			if !wj.seen(rec.Generation) {
				continue
			}
			sh, err := shipper.Prepare(ctx, s.builder, wj.req, wj.opts)
			if err != nil {
				s.logf("build a watched job's new bundle", err)
				continue
			}
			j, err := s.install(key, sh, wj.expires)
			if err != nil {
				sh.Zero()
				continue
			}
			wj.publish(j, updateOf(rec))
		}
	}
}

// markWatched records that a Watch follows the job at key, so that the
// leader keeps it fresh, and notes the record's generation.
func (s *Server) markWatched(ctx context.Context, key string, wj *watchedJob) error {
	st := s.shared.store
	for {
		rec, v, err := st.Job(ctx, key)
		if err != nil {
			return stateErr(err)
		}
		wj.seen(rec.Generation)
		if rec.Watched {
			return nil
		}
		rec.Watched = true
		if _, err := st.UpdateJob(ctx, rec, v); !errors.Is(err, replicas.ErrConflict) {
			if err != nil {
				return stateErr(err)
			}
			return nil
		}
	}
}

// recordBundle records a watched job's new bundle (the leader's refresh)
// in its record: the next generation and its versions, which the other
// replicas' polls ship to their streams.
func (s *Server) recordBundle(ctx context.Context, key string, wj *watchedJob, sh *shipper.Shipment, u watch.Update) {
	st := s.shared.store
	for ctx.Err() == nil {
		rec, v, err := st.Job(ctx, key)
		if err != nil {
			s.logf("record a watched job's new bundle", err)
			return
		}
		rec.Generation++
		rec.Update = recordedUpdate(u)
		rec.Versions = map[string]string{}
		for _, f := range sh.Files {
			if f.Version != "" {
				rec.Versions[f.Path] = f.Version
			}
		}
		if _, err := st.UpdateJob(ctx, rec, v); errors.Is(err, replicas.ErrConflict) {
			continue
		} else if err != nil {
			s.logf("record a watched job's new bundle", err)
			return
		}
		wj.seen(rec.Generation)
		return
	}
}

// recordedUpdate is u as a job record keeps it.
func recordedUpdate(u watch.Update) *replicas.Update {
	ru := &replicas.Update{Reason: string(u.Reason), RenewAt: u.RenewAt}
	for _, c := range u.Changes {
		ru.Changes = append(ru.Changes, replicas.Change{Field: c.Field, Ref: c.Ref, From: c.From, To: c.To})
	}
	return ru
}

// updateOf is the update rec's generation shipped with (Changed without
// changes when a replica that did not record it wrote the record).
func updateOf(rec *replicas.Job) watch.Update {
	ru := rec.Update
	if ru == nil {
		return watch.Update{Reason: watch.Changed}
	}
	u := watch.Update{Reason: watch.Reason(ru.Reason), RenewAt: ru.RenewAt}
	for _, c := range ru.Changes {
		u.Changes = append(u.Changes, watch.Change{Field: c.Field, Ref: c.Ref, From: c.From, To: c.To})
	}
	return u
}

// recordSecret adds a Secret shipped for the job at key to its record, so
// that whichever replica sweeps after the job expires deletes it, even
// after a restart.
func (s *Server) recordSecret(ctx context.Context, key, namespace, name string, uid types.UID) error {
	st := s.shared.store
	for {
		rec, v, err := st.Job(ctx, key)
		if err != nil {
			return stateErr(err)
		}
		sec := replicas.Secret{Namespace: namespace, Name: name, UID: string(uid)}
		known := false
		for i, o := range rec.Secrets {
			if o.Namespace == namespace && o.Name == name {
				rec.Secrets[i], known = sec, o.UID == sec.UID
			}
		}
		if known {
			return nil
		}
		if len(rec.Secrets) == 0 || rec.Secrets[len(rec.Secrets)-1] != sec {
			rec.Secrets = append(rec.Secrets, sec)
		}
		if _, err := st.UpdateJob(ctx, rec, v); !errors.Is(err, replicas.ErrConflict) {
			if err != nil {
				return stateErr(err)
			}
			return nil
		}
	}
}

// sweepShared deletes the Secrets of the shared state's expired jobs, then
// their records and expired grants. A Secret whose deletion failed stays
// in its job's record, which the sweep keeps: the next sweep (by whichever
// replica leads then) tries again, until the Secret is deleted or gone.
// Only the leader sweeps while RunReplica runs; without it (a test, a tool)
// any caller does.
func (s *Server) sweepShared() {
	sh := s.shared
	if sh == nil || sh.run.running.Load() && !sh.run.leading.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	due, err := sh.store.Due(ctx)
	if err != nil {
		s.logf("list the expired jobs", err)
		return
	}
	for _, rec := range due {
		if len(rec.Secrets) > 0 {
			s.deleteSecrets(ctx, rec)
		}
	}
	if _, err := sh.store.Sweep(ctx); err != nil {
		s.logf("sweep the shared state", err)
	}
}

// deleteSecrets deletes the Secrets of the due job rec and writes its
// record back with those whose deletion failed (none: the sweep deletes
// the record). A replica without a Kubernetes client cannot delete them:
// it drops them, saying so. Each Secret's first failure is logged.
func (s *Server) deleteSecrets(ctx context.Context, rec *replicas.Job) {
	var left []replicas.Secret
	for _, sec := range rec.Secrets {
		if s.kube == nil {
			s.logf("drop a due job's Secret from its record", fmt.Errorf("secret %q in namespace %q: this replica has no Kubernetes client (--kubeconfig) to delete it", sec.Name, sec.Namespace))
			continue
		}
		dctx, dcancel := context.WithTimeout(ctx, kubeDeleteTimeout)
		err := s.kube.client.Delete(dctx, sec.Namespace, sec.Name, types.UID(sec.UID))
		dcancel()
		if err != nil {
			if s.shared.failedOnce(sec) {
				s.logf("delete a due job's Secret (kept in its record, retried at the next sweep)", err)
			}
			left = append(left, sec)
			continue
		}
		s.shared.deleted(sec)
	}
	if len(left) == len(rec.Secrets) {
		return
	}
	for {
		cur, v, err := s.shared.store.Job(ctx, rec.ID)
		if errors.Is(err, replicas.ErrNotFound) {
			return
		}
		if err != nil {
			s.logf("record a due job's deleted Secrets", err)
			return
		}
		cur.Secrets = slices.DeleteFunc(cur.Secrets, func(sec replicas.Secret) bool {
			return slices.Contains(rec.Secrets, sec) && !slices.Contains(left, sec)
		})
		if _, err := s.shared.store.UpdateJob(ctx, cur, v); !errors.Is(err, replicas.ErrConflict) {
			if err != nil {
				s.logf("record a due job's deleted Secrets", err)
			}
			return
		}
	}
}
