// Package watch keeps a job's shipped stores fresh: after the first ship it
// asks the backends, at every refresh, for the current version of each of
// the job's refs (without reading secrets where the backend keeps versions:
// plugin.CapabilityVersions), and when a version changed or the certificate
// keyship issued reached its renewal point, it runs the one ship pipeline
// again (shipper.Prepare: resolve, every pre-flight check, the consumer's
// settings) and hands the new Shipment to the job's ShipFunc, which swaps
// it in whole (a sandbox's ..data swap, a server's job table).
//
// A refresh that fails (a sealed store, a rotated keystore whose password
// does not open it) keeps the current set in place, logs why once per
// attempt, naming the setting and the ref, and retries with exponential
// backoff; nothing partial or mixed is ever shipped, since a ShipFunc gets
// either a whole checked Shipment or nothing.
//
// keyship ship --watch runs one Job in a Watcher; keyship serve runs one
// Job per watched job in one Watcher, so that a refresh asks each distinct
// ref's version once, however many jobs share it.
//
// Quickstart:
//
//	j, err := watch.Start(ctx, h, req, watch.Options{Prepare: shipper.Options{Dir: dir}},
//		func(ctx context.Context, sh *shipper.Shipment, u watch.Update) error {
//			return swapSandbox(sh) // all or nothing
//		})
//	w := watch.NewWatcher(h, time.Minute)
//	w.Add(j)
//	err = w.Run(ctx) // until ctx ends; w.RefreshNow() on SIGHUP
package watch

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/resolve"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper"
)

// Host is what a watch needs of the host (a *host.Host): the one pipeline's
// Builder, and the current versions of refs.
type Host interface {
	shipper.Builder
	Versions(ctx context.Context, fields []spec.Field) map[spec.Ref]resolve.Version
}

// Reason says why a job's stores were shipped.
type Reason string

// The reasons of an Update.
const (
	// Initial is the first ship of a job.
	Initial Reason = "initial"
	// Changed is a ship after a ref's version changed (a rotated secret).
	Changed Reason = "changed"
	// Renewed is a ship after the certificate keyship issued reached its
	// renewal point.
	Renewed Reason = "renewed"
)

// Change is one setting whose secret's version changed. It holds versions,
// which are opaque and never reveal a secret.
type Change struct {
	Field, Ref string
	From, To   string
}

// String formats c as "<field> (<ref>): <from> -> <to>".
func (c Change) String() string {
	return fmt.Sprintf("%s (%s): %s -> %s", c.Field, c.Ref, orNone(c.From), orNone(c.To))
}

func orNone(v string) string {
	if v == "" {
		return "(no version)"
	}
	return v
}

// Update is what comes with a Shipment to a ShipFunc.
type Update struct {
	// Reason is why the job ships.
	Reason Reason
	// Changes are the settings whose secret changed (Reason Changed).
	Changes []Change
	// RenewAt is when the certificate issued for the new Shipment will be
	// renewed, or zero when keyship issued none.
	RenewAt time.Time
}

// ShipFunc puts a job's new Shipment in place. It must be all or nothing:
// after it returns an error nothing of sh may be visible to the job's
// tasks, and the watch keeps the current set and retries. On success it
// owns sh (and zeroes the Shipment it replaces once no reader needs it); on
// error the watch zeroes sh.
type ShipFunc func(ctx context.Context, sh *shipper.Shipment, u Update) error

// Defaults of Options.
const (
	// DefaultTimeout bounds one refresh's version check and one rebuild.
	DefaultTimeout = 30 * time.Second
	// DefaultRetryInitial is the first wait after a failed refresh.
	DefaultRetryInitial = time.Second
	// DefaultRetryMax is the longest wait between two attempts.
	DefaultRetryMax = time.Minute
)

// Options tune a Job. Prepare.Dir is required; the rest may be zero.
type Options struct {
	// Prepare is what every build passes to shipper.Prepare.
	Prepare shipper.Options
	// Timeout bounds one rebuild; 0 means DefaultTimeout.
	Timeout time.Duration
	// RenewBefore is how long before its NotAfter a certificate keyship
	// issued is renewed; 0, or a value not shorter than the certificate's
	// lifetime, means a third of the lifetime (renewal at 2/3 of it,
	// cert-manager's rule). See RenewalTime.
	RenewBefore time.Duration
	// ExpiryWarning is how long before its NotAfter a certificate read from
	// a backend (which keyship cannot renew) is warned about, again at
	// every refresh a day apart (an hour apart in its last two days); 0
	// means materialize.DefaultExpiryWarning, a negative value turns the
	// warnings off.
	ExpiryWarning time.Duration
	// RetryInitial and RetryMax bound the exponential backoff between the
	// attempts of a failing refresh; 0 means DefaultRetryInitial and
	// DefaultRetryMax. A Watcher's refresh interval is a good RetryMax.
	RetryInitial, RetryMax time.Duration
	// Until, when set, is when the job stops being refreshed (a server's
	// bundle TTL); a Watcher drops it then.
	Until time.Time
	// Logger receives the watch's log lines; nil discards them.
	Logger hclog.Logger
	// Now is the watch's clock; nil means time.Now.
	Now func() time.Time
}

// Job is one request kept fresh. Create it with Start; a Watcher refreshes
// it. It is safe for concurrent use.
type Job struct {
	h      Host
	req    *spec.Request
	opts   Options
	ship   ShipFunc
	logger hclog.Logger
	key    []byte // HMAC key of the shipped set's digest

	mu       sync.Mutex
	versions map[spec.Ref]string // of the secrets the shipped set was built from
	digest   []byte              // keyed digest of the shipped set's files
	renewAt  time.Time           // zero when keyship issued nothing
	watched  []expiring          // backend-read certificates, warned about near their NotAfter
	fails    int                 // failed attempts since the last success
	retryAt  time.Time           // when a failing job is tried again
	bo       *backoff.ExponentialBackOff
}

// Start ships req the first time (shipper.Prepare, then ship) and returns
// the Job that keeps it fresh. The job remembers the version of every
// secret the shipped set was built from (the Bundle's Inputs), which each
// refresh compares with the current ones. An error means nothing shipped.
func Start(ctx context.Context, h Host, req *spec.Request, opts Options, ship ShipFunc) (*Job, error) {
	if req == nil || req.Spec == nil {
		return nil, errors.New("watch: no request")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.ExpiryWarning == 0 {
		opts.ExpiryWarning = materialize.DefaultExpiryWarning
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = orDefault(opts.RetryInitial, DefaultRetryInitial)
	bo.MaxInterval = orDefault(opts.RetryMax, DefaultRetryMax)
	bo.MaxElapsedTime = 0 // never give up: the current set stays meanwhile
	bo.Reset()
	j := &Job{h: h, req: req, opts: opts, ship: ship, logger: logger, key: make([]byte, 32), bo: bo}
	if _, err := rand.Read(j.key); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	sh, err := shipper.Prepare(ctx, h, req, opts.Prepare)
	if err != nil {
		return nil, err
	}
	st := j.inspect(sh)
	if err := ship(ctx, sh, Update{Reason: Initial, RenewAt: st.renewAt}); err != nil {
		sh.Zero()
		return nil, err
	}
	j.mu.Lock()
	j.commit(st)
	j.mu.Unlock()
	j.warnExpiring(opts.Now())
	return j, nil
}

func orDefault(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// RenewAt returns when the certificate keyship issued for the shipped set
// will be renewed, or zero when it issued none.
func (j *Job) RenewAt() time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.renewAt
}

// Failures returns how many refreshes failed in a row since the last
// success.
func (j *Job) Failures() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.fails
}

// wake returns when the job needs a refresh before the next tick: its
// retry time while failing, else its renewal time; zero for none.
func (j *Job) wake() time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fails > 0 {
		return j.retryAt
	}
	return j.renewAt
}

// backingOff reports whether the job failed and waits for its retry time.
func (j *Job) backingOff(now time.Time) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.fails > 0 && now.Before(j.retryAt)
}

// expired reports whether the job is past Options.Until.
func (j *Job) expired(now time.Time) bool {
	return !j.opts.Until.IsZero() && !now.Before(j.opts.Until)
}

// state is what the watch keeps of a shipped set.
type state struct {
	versions map[spec.Ref]string // of the secrets it was built from
	digest   []byte
	renewAt  time.Time
	watched  []expiring
}

// inspect reads what the watch keeps of sh, before sh is handed over. A
// setting with no recorded input gets the version "", which never matches:
// the next refresh rebuilds, and ships only if the bytes differ.
func (j *Job) inspect(sh *shipper.Shipment) state {
	built := map[string]string{}
	for _, in := range sh.Bundle.Inputs {
		built[in.Field] = in.Version
	}
	versions := map[spec.Ref]string{}
	for _, f := range j.req.Spec.Fields() {
		versions[f.Ref] = built[f.Name]
	}
	mac := hmac.New(sha256.New, j.key)
	for _, f := range sh.SandboxFiles() {
		fmt.Fprintf(mac, "%s\x00%o\x00%d\x00", f.Path, f.Mode, len(f.Contents))
		mac.Write(f.Contents)
	}
	st := state{versions: versions, digest: mac.Sum(nil)}
	b := sh.Bundle
	if s := j.req.Spec; s.Keystore.Issue != nil && len(b.Chain) > 0 {
		st.renewAt = RenewalTime(b.Chain[0].NotBefore, b.Chain[0].NotAfter, j.opts.RenewBefore)
	} else {
		st.watched = append(st.watched, certsToWatch("keystore certificate", keystoreField(s), b.Chain)...)
	}
	st.watched = append(st.watched, certsToWatch("trusted certificate", trustField(j.req.Spec), b.Trusted)...)
	return st
}

// commit records a shipped set; j.mu is held.
func (j *Job) commit(st state) {
	j.versions, j.digest, j.renewAt, j.watched = st.versions, st.digest, st.renewAt, st.watched
	j.fails, j.retryAt = 0, time.Time{}
	j.bo.Reset()
}

// Result is the outcome of one job's refresh.
type Result struct {
	Job *Job
	// Shipped reports that a new set was shipped; Update says why.
	Shipped bool
	Update  Update
	// Err is why the refresh failed; the current set stays.
	Err error
}

// refresh runs one refresh of j with the versions vs of a Refresh pass.
func (j *Job) refresh(ctx context.Context, vs map[spec.Ref]resolve.Version) Result {
	now := j.opts.Now()
	fields := j.req.Spec.Fields()
	var changes []Change
	var errs []error
	j.mu.Lock()
	for _, f := range fields {
		v, ok := vs[f.Ref]
		switch {
		case !ok:
			errs = append(errs, &resolve.Error{Field: f, Err: errors.New("no version was asked for this ref")})
		case v.Err != nil:
			errs = append(errs, &resolve.Error{Field: f, Err: v.Err})
		default:
			if old := j.versions[f.Ref]; v.Version == "" || v.Version != old {
				changes = append(changes, Change{Field: f.Name, Ref: f.Ref.String(), From: old, To: v.Version})
			}
		}
	}
	renew := !j.renewAt.IsZero() && !now.Before(j.renewAt)
	j.mu.Unlock()
	if len(errs) > 0 {
		return j.fail(now, fmt.Errorf("reading the versions of the job's secrets:\n%w", errors.Join(errs...)))
	}
	if len(changes) == 0 && !renew {
		j.succeed(nil)
		j.warnExpiring(now)
		return Result{Job: j}
	}
	u := Update{Reason: Changed, Changes: changes}
	if renew {
		u.Reason = Renewed
	}
	ctx, cancel := context.WithTimeout(ctx, j.opts.Timeout)
	defer cancel()
	sh, err := shipper.Prepare(ctx, j.h, j.req, j.opts.Prepare)
	if err != nil {
		return j.fail(now, fmt.Errorf("rebuilding the stores (%s):\n%w", describe(u), err))
	}
	st := j.inspect(sh)
	j.mu.Lock()
	same := !renew && bytes.Equal(st.digest, j.digest)
	j.mu.Unlock()
	if same {
		// New versions, the same bytes (a secret written again unchanged,
		// a backend without versions): nothing to swap.
		sh.Zero()
		j.succeed(st.versions)
		j.logger.Debug("refresh: new versions, same stores; nothing shipped", "job", j.req.JobID, "changes", changeList(changes))
		return Result{Job: j}
	}
	u.RenewAt = st.renewAt
	if err := j.ship(ctx, sh, u); err != nil {
		sh.Zero()
		return j.fail(now, fmt.Errorf("shipping the new stores (%s): %w", describe(u), err))
	}
	j.mu.Lock()
	j.commit(st)
	j.mu.Unlock()
	args := []any{"job", j.req.JobID, "reason", string(u.Reason)}
	if len(changes) > 0 {
		args = append(args, "changes", changeList(changes))
	}
	if !u.RenewAt.IsZero() {
		args = append(args, "renew_at", u.RenewAt.UTC().Format(time.RFC3339))
	}
	j.logger.Info("shipped new stores", args...)
	j.warnExpiring(now)
	return Result{Job: j, Shipped: true, Update: u}
}

// succeed records a refresh that needed no ship; versions, when not nil,
// replace the recorded ones.
func (j *Job) succeed(versions map[spec.Ref]string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if versions != nil {
		j.versions = versions
	}
	if j.fails > 0 {
		j.logger.Info("refresh works again; the stores in place are current", "job", j.req.JobID, "failed_attempts", j.fails)
	}
	j.fails, j.retryAt = 0, time.Time{}
	j.bo.Reset()
}

// fail records a failed attempt, logs it once and schedules the next one.
func (j *Job) fail(now time.Time, err error) Result {
	j.mu.Lock()
	j.fails++
	wait := j.bo.NextBackOff()
	j.retryAt = now.Add(wait)
	attempt := j.fails
	j.mu.Unlock()
	j.logger.Error("refresh failed; the stores in place stay", "job", j.req.JobID, "attempt", attempt,
		"retry_in", wait.Round(time.Millisecond).String(), "error", err.Error())
	return Result{Job: j, Err: err}
}

func describe(u Update) string {
	if u.Reason == Renewed {
		return "renewing the issued certificate"
	}
	return "changed: " + changeList(u.Changes)
}

func changeList(cs []Change) string {
	var b bytes.Buffer
	for i, c := range cs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.String())
	}
	return b.String()
}

// keystoreField is the setting that names the keystore's certificate.
func keystoreField(s *spec.Spec) spec.Field {
	if c := s.Keystore.Certificate; c != nil && c.IsSet() {
		return *c
	}
	return s.Keystore.Secret
}

// trustField is the setting that names the trusted certificates.
func trustField(s *spec.Spec) spec.Field {
	if ts := s.Truststore; ts != nil {
		if c := ts.Certificate; c != nil && c.IsSet() {
			return *c
		}
		return ts.Secret
	}
	if s.CABundle != nil {
		return *s.CABundle
	}
	return spec.Field{}
}
