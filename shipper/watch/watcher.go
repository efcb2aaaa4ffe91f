package watch

import (
	"context"
	"sync"
	"time"

	"github.com/keyship/keyship/host/resolve"
	"github.com/keyship/keyship/host/spec"
)

// rebuildParallelism bounds the rebuilds of one Refresh that run at once:
// a renewal wave of many jobs must not open a backend connection per job.
const rebuildParallelism = 4

// Refresh refreshes jobs once: it asks the versions of every distinct ref of
// the jobs in one call (one batch per backend, however many jobs share a
// ref), then, job by job, rebuilds and ships those whose refs changed or
// whose issued certificate reached its renewal point; the rebuilds share
// their reads (resolve.Shared), so a changed ref is read once however many
// jobs use it. Jobs that are backing
// off after a failure are skipped unless force. It returns one Result per
// job refreshed, in the order of jobs.
func Refresh(ctx context.Context, h Host, jobs []*Job, force bool) []Result {
	var due []*Job
	var fields []spec.Field
	timeout := time.Duration(0)
	for _, j := range jobs {
		if !force && j.backingOff(j.opts.Now()) {
			continue
		}
		due = append(due, j)
		fields = append(fields, j.req.Spec.Fields()...)
		timeout = max(timeout, j.opts.Timeout)
	}
	if len(due) == 0 {
		return nil
	}
	vctx, cancel := context.WithTimeout(ctx, timeout)
	vs := h.Versions(vctx, fields)
	cancel()
	// Jobs rebuilt in this pass that share a ref read it once.
	shared := resolve.NewShared()
	defer shared.Zero()
	ctx = resolve.WithShared(ctx, shared)
	out := make([]Result, len(due))
	sem := make(chan struct{}, rebuildParallelism)
	var wg sync.WaitGroup
	for i, j := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = j.refresh(ctx, vs)
		})
	}
	wg.Wait()
	return out
}

// Watcher refreshes a set of Jobs every interval, and between ticks at a
// job's renewal point or retry time. Create it with NewWatcher, add jobs,
// and Run it. It is safe for concurrent use.
type Watcher struct {
	h        Host
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	jobs map[*Job]struct{}
	// changed wakes Run to look at the set again; force makes it refresh
	// every job now (SIGHUP).
	changed chan struct{}
	force   chan struct{}
	passes  int
}

// NewWatcher returns a Watcher that refreshes its jobs through h every
// interval (at least a second).
func NewWatcher(h Host, interval time.Duration) *Watcher {
	return &Watcher{h: h, interval: max(interval, time.Second), now: time.Now,
		jobs: map[*Job]struct{}{}, changed: make(chan struct{}, 1), force: make(chan struct{}, 1)}
}

// Add puts j in the set; the next tick refreshes it.
func (w *Watcher) Add(j *Job) {
	w.mu.Lock()
	w.jobs[j] = struct{}{}
	w.mu.Unlock()
	signal(w.changed)
}

// Remove takes j out of the set.
func (w *Watcher) Remove(j *Job) {
	w.mu.Lock()
	delete(w.jobs, j)
	w.mu.Unlock()
	signal(w.changed)
}

// Interval returns the Watcher's refresh interval.
func (w *Watcher) Interval() time.Duration { return w.interval }

// Len returns how many jobs the Watcher refreshes.
func (w *Watcher) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.jobs)
}

// Passes returns how many refresh passes ran (each one Versions call).
func (w *Watcher) Passes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.passes
}

// RefreshNow makes Run refresh every job at once, failing ones included
// (keyship ship --watch on SIGHUP).
func (w *Watcher) RefreshNow() { signal(w.force) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run refreshes the jobs until ctx ends, and returns nil then. Each pass
// asks the versions of all due jobs' refs in one Refresh; jobs past their
// Options.Until are dropped.
func (w *Watcher) Run(ctx context.Context) error {
	next := w.now().Add(w.interval)
	timer := time.NewTimer(w.interval)
	defer timer.Stop()
	var last time.Time // the last pass
	for {
		wake := next
		for _, j := range w.snapshot() {
			if t := j.wake(); !t.IsZero() && t.Before(wake) {
				wake = t
			}
			if u := j.opts.Until; !u.IsZero() && u.Before(wake) {
				wake = u
			}
		}
		// A job whose renewal point is already past after a pass (a
		// certificate shorter-lived than a refresh) must not spin.
		wake = later(wake, last.Add(minPassGap))
		timer.Reset(max(wake.Sub(w.now()), 0))
		force := false
		select {
		case <-ctx.Done():
			return nil
		case <-w.changed:
			timer.Stop()
			continue
		case <-w.force:
			force = true
			timer.Stop()
		case <-timer.C:
		}
		now := w.now()
		last = now
		tick := force || !now.Before(next)
		if tick {
			next = now.Add(w.interval)
		}
		var due []*Job
		for _, j := range w.snapshot() {
			switch {
			case j.expired(now):
				w.Remove(j)
			case tick, !j.wake().IsZero() && !now.Before(j.wake()):
				due = append(due, j)
			}
		}
		if len(due) == 0 {
			continue
		}
		Refresh(ctx, w.h, due, force)
		w.mu.Lock()
		w.passes++
		w.mu.Unlock()
	}
}

// minPassGap is the least time between two passes that no tick or SIGHUP
// asked for.
const minPassGap = 250 * time.Millisecond

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

func (w *Watcher) snapshot() []*Job {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*Job, 0, len(w.jobs))
	for j := range w.jobs {
		out = append(out, j)
	}
	return out
}
