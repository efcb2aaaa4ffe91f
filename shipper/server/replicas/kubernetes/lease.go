package kubernetes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mathrand "math/rand/v2"
	"reflect"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/keyship/keyship/shipper/server/replicas"
)

// A Lease is held as client-go's leader election (tools/leaderelection with
// a LeaseLock) holds one, so the two read each other's Leases and kubectl
// shows the holder:
//
//   - a candidate reads the Lease; it takes a Lease that does not exist,
//     has no holder, or whose record has not changed for its
//     leaseDurationSeconds as measured on the candidate's own clock (never
//     the renewTime written by another machine's clock);
//   - it writes itself as holder by an update at the resourceVersion it
//     read, so of two candidates exactly one wins;
//   - the leader renews every RetryPeriod, and steps down when it has not
//     renewed for RenewDeadline (shorter than LeaseDuration, so it stops
//     before another can take over);
//   - on Resign or Close it writes the holder empty, so the next candidate
//     takes it at its next try.
//
// It is written here rather than taken from client-go because that
// package links client-go's whole clientset and informers (see the
// package comment); the API calls are two, a get and an update.

// leaseObject is the part of a coordination.k8s.io/v1 Lease keyship
// writes and reads.
type leaseObject struct {
	APIVersion string            `json:"apiVersion,omitempty"`
	Kind       string            `json:"kind,omitempty"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       leaseSpec         `json:"spec"`
}

// leaseSpec is a LeaseSpec as client-go's leader election writes it.
type leaseSpec struct {
	HolderIdentity       *string           `json:"holderIdentity,omitempty"`
	LeaseDurationSeconds *int32            `json:"leaseDurationSeconds,omitempty"`
	AcquireTime          *metav1.MicroTime `json:"acquireTime,omitempty"`
	RenewTime            *metav1.MicroTime `json:"renewTime,omitempty"`
	LeaseTransitions     *int32            `json:"leaseTransitions,omitempty"`
}

func (l *leaseSpec) holder() string {
	if l.HolderIdentity == nil {
		return ""
	}
	return *l.HolderIdentity
}

func (l *leaseSpec) transitions() int32 {
	if l.LeaseTransitions == nil {
		return 0
	}
	return *l.LeaseTransitions
}

// elector is one campaign's view of the Lease.
type elector struct {
	s        *State
	name     string // the Lease's name
	identity string // this campaign's holder identity

	// observed is the Lease as last read or written, and observedAt when
	// its spec was last seen to change, on this machine's clock.
	observed   *leaseObject
	observedAt time.Time
}

// leases starts a request on the namespace's Leases.
func (e *elector) leases(req *rest.Request) *rest.Request {
	return req.Namespace(e.s.namespace).Resource("leases")
}

func (e *elector) leaseDuration() time.Duration { return e.s.timing[0] }
func (e *elector) renewDeadline() time.Duration { return e.s.timing[1] }
func (e *elector) retryPeriod() time.Duration   { return e.s.timing[2] }

// send writes l (a create when it has no resourceVersion, otherwise an
// update at it) and returns the Lease the API server stored.
func (e *elector) send(ctx context.Context, l *leaseObject) (*leaseObject, error) {
	l.APIVersion, l.Kind = coordinationV1.String(), "Lease"
	body, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	req := e.leases(e.s.coord.Post())
	if l.Metadata.ResourceVersion != "" {
		req = e.leases(e.s.coord.Put()).Name(l.Metadata.Name)
	}
	return decodeLease(req.Body(body).Do(ctx))
}

// decodeLease reads the Lease of a response.
func decodeLease(res rest.Result) (*leaseObject, error) { return decodeAs[leaseObject](res, "Lease") }

// tryAcquireOrRenew takes or renews the Lease once and reports whether
// this campaign holds it now.
func (e *elector) tryAcquireOrRenew(ctx context.Context) bool {
	now := time.Now()
	mnow := metav1.NewMicroTime(now)
	seconds := int32(e.leaseDuration() / time.Second)
	if seconds < 1 {
		seconds = 1
	}
	spec := leaseSpec{HolderIdentity: &e.identity, LeaseDurationSeconds: &seconds, AcquireTime: &mnow, RenewTime: &mnow}

	cur, err := decodeLease(e.leases(e.s.coord.Get()).Name(e.name).Do(ctx))
	switch {
	case apierrors.IsNotFound(err):
		zero := int32(0)
		spec.LeaseTransitions = &zero
		l := &leaseObject{Metadata: metav1.ObjectMeta{Name: e.name, Namespace: e.s.namespace,
			Labels: map[string]string{LabelManagedBy: managedBy, LabelClusterID: e.s.cluster}}, Spec: spec}
		got, err := e.send(ctx, l)
		if err != nil {
			return false
		}
		e.observed, e.observedAt = got, now
		return true
	case err != nil:
		return false
	}
	if e.observed == nil || !reflect.DeepEqual(e.observed.Spec, cur.Spec) {
		e.observedAt = now
	}
	e.observed = cur
	holder := cur.Spec.holder()
	if holder != "" && holder != e.identity {
		held := time.Duration(0)
		if cur.Spec.LeaseDurationSeconds != nil {
			held = time.Duration(*cur.Spec.LeaseDurationSeconds) * time.Second
		}
		if e.observedAt.Add(held).After(now) {
			return false // another holds it and has renewed within its lease
		}
	}
	transitions := cur.Spec.transitions()
	if holder == e.identity {
		spec.AcquireTime = cur.Spec.AcquireTime
	} else {
		transitions++
	}
	spec.LeaseTransitions = &transitions
	next := *cur
	next.Spec = spec
	if next.Metadata.Labels == nil {
		next.Metadata.Labels = map[string]string{}
	}
	next.Metadata.Labels[LabelManagedBy], next.Metadata.Labels[LabelClusterID] = managedBy, e.s.cluster
	got, err := e.send(ctx, &next)
	if err != nil {
		return false // a conflict: another candidate wrote first
	}
	e.observed, e.observedAt = got, now
	return true
}

// holds reports whether the Lease as last seen names this campaign.
func (e *elector) holds() bool {
	return e.observed != nil && e.observed.Spec.holder() == e.identity
}

// release writes the holder empty when this campaign holds the Lease.
func (e *elector) release() {
	if !e.holds() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.renewDeadline())
	defer cancel()
	now := metav1.NewMicroTime(time.Now())
	empty, one, transitions := "", int32(1), e.observed.Spec.transitions()
	next := *e.observed
	next.Spec = leaseSpec{HolderIdentity: &empty, LeaseDurationSeconds: &one, AcquireTime: &now, RenewTime: &now, LeaseTransitions: &transitions}
	if got, err := e.send(ctx, &next); err == nil {
		e.observed = got
	}
}

// sleep waits d or until ctx is done, and reports whether ctx is live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// jitter is d plus up to 1.2 d, as client-go spaces a candidate's tries.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration(mathrand.Float64()*1.2*float64(d))
}

// run campaigns until ctx is done or the leadership is lost, closing won
// when the Lease is taken; it releases the Lease before it returns.
func (e *elector) run(ctx context.Context, won chan<- struct{}) {
	defer e.release()
	for !e.tryAcquireOrRenew(ctx) {
		if !sleep(ctx, jitter(e.retryPeriod())) {
			return
		}
	}
	close(won)
	for sleep(ctx, e.retryPeriod()) {
		deadline, cancel := context.WithTimeout(ctx, e.renewDeadline())
		renewed := e.tryAcquireOrRenew(deadline)
		for !renewed && sleep(deadline, e.retryPeriod()) {
			renewed = e.tryAcquireOrRenew(deadline)
		}
		cancel()
		if !renewed {
			return // not renewed within the deadline: lost
		}
	}
}

// leadership is one campaign's elector, from its start until run returns.
type leadership struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the elector's run returns
}

// Done implements replicas.Leadership.
func (l *leadership) Done() <-chan struct{} { return l.done }

// Resign implements replicas.Leadership: the Lease is released (its holder
// cleared), so the next candidate takes it at its next try.
func (l *leadership) Resign(ctx context.Context) error {
	l.cancel()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Campaign implements replicas.State on the Lease
// keyship-<cluster-id>-<election>.
func (s *State) Campaign(ctx context.Context, election string) (replicas.Leadership, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if !isLabel(election, maxLabel) {
		return nil, fmt.Errorf("kubernetes: election name %q: want a DNS-1123 label of at most %d characters", election, maxLabel)
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	e := &elector{s: s, name: "keyship-" + s.cluster + "-" + election, identity: s.identity + "_" + hex.EncodeToString(suffix[:])}
	won := make(chan struct{})
	l := &leadership{done: make(chan struct{})}
	runCtx, cancel := context.WithCancel(s.ctx)
	l.cancel = cancel
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		return nil, replicas.ErrClosed
	}
	s.runs.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.runs.Done()
		e.run(runCtx, won)
		close(l.done)
	}()
	select {
	case <-won:
		return l, nil
	case <-l.done:
		cancel()
		if s.check(context.Background()) != nil {
			return nil, replicas.ErrClosed
		}
		return nil, fmt.Errorf("%w: kubernetes: the election ended before it was won", replicas.ErrUnavailable)
	case <-ctx.Done():
		cancel()
		<-l.done
		return nil, ctx.Err()
	}
}
