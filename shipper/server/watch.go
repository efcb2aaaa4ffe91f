package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyship/keyship/host/spec"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/conf"
	"github.com/keyship/keyship/shipper/watch"
)

// WatchConfig is what a server needs to keep watched jobs fresh.
type WatchConfig struct {
	// Host gives the refs' versions and builds (the server's *host.Host).
	// Required.
	Host watch.Host
	// Watcher refreshes the watched jobs; the caller runs it (Run).
	// Required.
	Watcher *watch.Watcher
	// RenewBefore is watch.Options.RenewBefore: 0 renews an issued
	// certificate at 2/3 of its lifetime.
	RenewBefore time.Duration
	// Logger receives the watch's log lines; nil discards them.
	Logger hclog.Logger
}

// WithWatch makes the server keep watched jobs fresh (the Watch rpc): every
// job it builds goes through watch.Start, which records its secrets'
// versions, and a Watch call adds the job to c.Watcher, which refreshes it
// until the job's TTL ends.
func WithWatch(c WatchConfig) Option {
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return func(s *Server) {
		s.watching = &watching{cfg: c, jobs: map[string]*watchedJob{}}
	}
}

// watching is the server's watch state: one watchedJob per built job.
type watching struct {
	cfg WatchConfig

	mu   sync.Mutex
	jobs map[string]*watchedJob // by job key; expired ones until the next sweep
	// lastSweep is when expired jobs were last dropped from jobs: at most
	// every sweepEvery on a build, and at every Server.Sweep, so that a new
	// job does not walk every live one.
	lastSweep time.Time
}

// sweepLocked drops the watched jobs expired at now (wa.mu held).
func (wa *watching) sweepLocked(now time.Time) {
	wa.lastSweep = now
	for k, old := range wa.jobs {
		if !now.Before(old.expires) {
			delete(wa.jobs, k)
		}
	}
}

// sweep is sweepLocked, taking wa.mu.
func (wa *watching) sweep(now time.Time) {
	wa.mu.Lock()
	defer wa.mu.Unlock()
	wa.sweepLocked(now)
}

// watchedJob is a built job that a Watch can follow: its watch.Job and the
// bundles it shipped, broadcast to every stream of the job.
type watchedJob struct {
	job     *watch.Job
	expires time.Time
	// req and opts build the job again (a replica's poll, ha_watch.go).
	req  *spec.Request
	opts shipper.Options

	mu      sync.Mutex
	current *job
	gen     uint64 // bundles shipped, the first one included
	update  watch.Update
	changed chan struct{} // closed when a new bundle is in place
	added   bool          // in the Watcher
	// recordGen is the newest generation of the job's shared record this
	// replica has shipped (WithReplicas).
	recordGen uint64
}

// seen notes generation gen of the job's shared record and reports
// whether it is newer than any noted before.
func (wj *watchedJob) seen(gen uint64) bool {
	wj.mu.Lock()
	defer wj.mu.Unlock()
	if gen <= wj.recordGen {
		return false
	}
	wj.recordGen = gen
	return true
}

// publish makes j the job's bundle and wakes its streams.
func (wj *watchedJob) publish(j *job, u watch.Update) {
	wj.mu.Lock()
	defer wj.mu.Unlock()
	wj.current, wj.update = j, u
	wj.gen++
	close(wj.changed)
	wj.changed = make(chan struct{})
}

// snapshot returns the job's bundle, its number and why it shipped, and the
// channel closed at the next one.
func (wj *watchedJob) snapshot() (*job, uint64, watch.Update, <-chan struct{}) {
	wj.mu.Lock()
	defer wj.mu.Unlock()
	return wj.current, wj.gen, wj.update, wj.changed
}

// buildWatched builds the job at key through watch.Start, so that a Watch
// can follow it: each bundle the watch ships replaces the job's (Ship calls
// get the current one) and reaches every stream of the job.
func (s *Server) buildWatched(ctx context.Context, key string, r *spec.Request, opts shipper.Options, ttl time.Duration) (*job, error) {
	expires := s.now().Add(ttl)
	wj := &watchedJob{expires: expires, changed: make(chan struct{}), req: r, opts: opts}
	wa := s.watching
	j, err := watch.Start(ctx, wa.cfg.Host, r, watch.Options{
		Prepare:     opts,
		Until:       expires,
		RenewBefore: wa.cfg.RenewBefore,
		RetryMax:    wa.cfg.Watcher.Interval(),
		Logger:      wa.cfg.Logger,
		Now:         s.now,
	}, func(sctx context.Context, sh *shipper.Shipment, u watch.Update) error {
		j, err := s.install(key, sh, expires)
		if err != nil {
			return err
		}
		wj.publish(j, u)
		if s.shared != nil && u.Reason != watch.Initial {
			s.recordBundle(sctx, key, wj, sh, u) // the leader's refresh, for the other replicas (ha_watch.go)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	wj.job = j
	now := s.now()
	wa.mu.Lock()
	if now.Sub(wa.lastSweep) >= sweepEvery {
		wa.sweepLocked(now)
	}
	wa.jobs[key] = wj
	wa.mu.Unlock()
	cur, _, _, _ := wj.snapshot()
	return cur, nil
}

// get returns the watched job at key that has not expired at now, or nil.
func (wa *watching) get(key string, now time.Time) *watchedJob {
	wa.mu.Lock()
	defer wa.mu.Unlock()
	if wj := wa.jobs[key]; wj != nil && now.Before(wj.expires) {
		return wj
	}
	return nil
}

// followed returns the watched jobs that Watch calls follow and that have
// not expired, by key.
func (wa *watching) followed(now time.Time) map[string]*watchedJob {
	wa.mu.Lock()
	defer wa.mu.Unlock()
	out := map[string]*watchedJob{}
	for k, wj := range wa.jobs {
		if wj.added && now.Before(wj.expires) {
			out[k] = wj
		}
	}
	return out
}

// follow returns the watched job at key that has not expired at now, or
// nil, and has the Watcher refresh it.
func (wa *watching) follow(key string, now time.Time) *watchedJob {
	wa.mu.Lock()
	defer wa.mu.Unlock()
	wj := wa.jobs[key]
	if wj != nil && !now.Before(wj.expires) {
		return nil
	}
	if wj != nil && !wj.added {
		wj.added = true
		wa.cfg.Watcher.Add(wj.job)
	}
	return wj
}

// Watch implements hostv1.ShipperServiceServer: the job's bundle now, then
// each new one, until the bundle's TTL passes or the caller goes away.
func (s *Server) Watch(req *hostv1.WatchRequest, stream hostv1.ShipperService_WatchServer) error {
	return s.watch(stream.Context(), req, stream.Send)
}

// watch is Watch for any transport: send sends one response.
func (s *Server) watch(ctx context.Context, req *hostv1.WatchRequest, send func(*hostv1.WatchResponse) error) error {
	if s.watching == nil {
		return toStatus(fmt.Errorf("this server does not watch jobs (keyship serve --refresh 0) (%w)", shipper.ErrNotConfigured))
	}
	if req.GetShip() == nil {
		return toStatus(invalid(errors.New("ship: required (the job, as Ship takes it)")))
	}
	r, err := requestFromProto(req.GetShip())
	if err != nil {
		return toStatus(invalid(err))
	}
	var version spec.Version
	if v := req.GetConsumerVersion(); v != "" {
		if version, err = spec.ParseVersion(v); err != nil {
			return toStatus(invalid(fmt.Errorf("consumer_version: %w", err)))
		}
	}
	d, j, err := s.ship(ctx, r, "Watch")
	if err != nil {
		return toStatus(err)
	}
	sr, _ := readRequest(r, nil) // read once by ship already: it cannot fail here
	key := jobKey(sr, r)
	wj := s.watching.follow(key, s.now())
	if wj == nil {
		return status.Error(codes.Internal, "the job was built without its watch")
	}
	if s.shared != nil {
		if err := s.markWatched(ctx, key, wj); err != nil {
			return toStatus(err)
		}
	}
	var sent uint64
	for {
		cur, gen, u, changed := wj.snapshot()
		if gen != sent {
			if d == nil || cur != j {
				if d, err = s.deliver(ctx, r, cur); err != nil {
					return toStatus(err)
				}
			}
			if err := send(s.watchResponse(d, cur, version, u, sent == 0)); err != nil {
				return err
			}
			sent, d = gen, nil
		}
		left := wj.expires.Sub(s.now())
		if left <= 0 {
			return nil
		}
		t := time.NewTimer(left)
		select {
		case <-changed:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
			return nil // the TTL passed: the bundle is no longer refreshed
		}
	}
}

// watchResponse is the WatchResponse of delivery d of bundle j for one
// stream: its own fetch URIs, and the settings that make the consumer reload
// what it can.
func (s *Server) watchResponse(d *shipper.Delivery, j *job, version spec.Version, u watch.Update, first bool) *hostv1.WatchResponse {
	resp := deliveryToProto(d, j.expires)
	if d.Consumer == conf.ConsumerSpark {
		for _, st := range conf.SparkReload(j.shipment.Bundle, version, s.watching.cfg.Watcher.Interval()) {
			resp.Settings = append(resp.Settings, &hostv1.Setting{Key: st.Key, Value: st.Value})
		}
	}
	out := &hostv1.WatchResponse{Shipment: resp, Reason: hostv1.WatchReason_WATCH_REASON_INITIAL}
	if !first {
		out.Reason = hostv1.WatchReason_WATCH_REASON_CHANGED
		if u.Reason == watch.Renewed {
			out.Reason = hostv1.WatchReason_WATCH_REASON_RENEWED
		}
		for _, c := range u.Changes {
			out.Changes = append(out.Changes, c.String())
		}
	}
	if !u.RenewAt.IsZero() {
		out.RenewAtUnix = u.RenewAt.Unix()
	}
	return out
}

// WatchJob calls Watch and hands each response to each, in order, until
// the stream ends: nil when the bundle's TTL passed, the error of each,
// ctx's or the server's otherwise.
func (c *Client) WatchJob(ctx context.Context, req *hostv1.WatchRequest, each func(*hostv1.WatchResponse) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Watch(ctx, req)
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := each(resp); err != nil {
			return err
		}
	}
}

// WatchSet is one set a Watch streams, in the domain's terms: the delivery
// (as Deliver returns it), why it was sent, the settings whose secret
// changed ("<field> (<ref>): <old> -> <new>", watch.Change's form) and when
// the certificate keyship issued is renewed (zero when it issued none).
type WatchSet struct {
	Delivery *shipper.Delivery
	Reason   watch.Reason
	Changes  []string
	RenewAt  time.Time
}

// WatchSets watches r's job: it yields the job's set now (watch.Initial),
// then each new one the server ships (its refresh and renewal cadence, not
// the caller's), until the bundle's TTL passes (the sequence ends), ctx
// ends (ctx's error) or the call fails (the error, as Deliver's). The
// consumer release of the reload settings is r's SparkVersion (or
// FlinkVersion for a Flink consumer). Zero each delivery once its files are
// written; stopping the range ends the stream.
func (c *Client) WatchSets(ctx context.Context, r Request) iter.Seq2[*WatchSet, error] {
	return func(yield func(*WatchSet, error) bool) {
		req := &hostv1.WatchRequest{Ship: requestToProto(r), ConsumerVersion: r.SparkVersion}
		if r.Consumer == conf.ConsumerFlink {
			req.ConsumerVersion = r.FlinkVersion
		}
		stop := errors.New("the caller stopped")
		err := c.WatchJob(ctx, req, func(resp *hostv1.WatchResponse) error {
			if !yield(watchSetFromProto(resp, r.Dir), nil) {
				return stop
			}
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			yield(nil, errorFromProto(err))
		}
	}
}
