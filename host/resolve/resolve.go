// Package resolve fetches the secrets a Spec refers to: every distinct ref
// once, in one batched Get per backend, the backends in parallel, retrying
// only ErrUnavailable (with backoff, inside the caller's deadline).
//
// # Retry policy
//
// A ref whose read fails with plugin.ErrUnavailable is read again, at most
// 4 times in all by default (WithRetry), after about 100ms, 200ms and 400ms
// (±20% jitter, github.com/cenkalti/backoff), and never when the next wait
// would pass the context's deadline; the last ErrUnavailable is then
// returned. Nothing else is retried: ErrNotFound, ErrPermissionDenied,
// ErrInvalidConfig, ErrUnsupported and ErrPluginExited (a plugin that died
// and was already restarted once by the loader) fail at once.
//
// The bound counts store requests, so retries a backend makes on its own
// multiply it: a backend should leave retrying to the host. The Vault
// backend's client retries (its max_retries setting or VAULT_MAX_RETRIES)
// default to 0 and are capped at 2, so a Vault ref costs at most
// 4 × (1 + 2) = 12 requests, and 4 by default.
//
// Quickstart:
//
//	r := resolve.New(ld) // ld is a *loader.Loader
//	secrets, err := r.Resolve(ctx, s.Fields())
//	defer resolve.Zero(secrets)
package resolve

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// Backends gives the resolver a backend by name; *loader.Loader is one.
type Backends interface {
	// Backend returns the backend called name; "" is the default backend.
	Backend(ctx context.Context, name string) (plugin.Backend, error)
	// DefaultBackend names the backend of refs that name none.
	DefaultBackend() string
}

// Option changes a Resolver.
type Option func(*Resolver)

// WithRetry sets how often an ErrUnavailable read is tried in all
// (attempts ≥ 1) and the first backoff, which doubles each time (with ±20%
// jitter).
func WithRetry(attempts int, backoff time.Duration) Option {
	return func(r *Resolver) { r.attempts, r.backoff = max(attempts, 1), backoff }
}

// Resolver fetches secrets through Backends. It is safe for concurrent use.
type Resolver struct {
	backends Backends
	attempts int
	backoff  time.Duration
}

// New returns a Resolver that tries an unavailable store 4 times, backing off
// about 100ms, 200ms, 400ms (never past the context's deadline).
func New(b Backends, opts ...Option) *Resolver {
	r := &Resolver{backends: b, attempts: 4, backoff: 100 * time.Millisecond}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Error is the failure to read one field's ref. It unwraps to the backend's
// error, so errors.Is(err, plugin.ErrNotFound) works.
type Error struct {
	Field spec.Field
	Err   error
}

// Error formats the failure as "<field> (<ref>): <reason>".
func (e *Error) Error() string {
	fe := spec.FieldError{Field: e.Field.Name, Ref: e.Field.Ref.String(), Reason: e.Err.Error()}
	return fe.Error()
}

// Unwrap returns the backend's error.
func (e *Error) Unwrap() error { return e.Err }

// BackendError is one failure of a whole backend (it did not load, or its
// batch failed) that several fields share. It reads once, naming the fields
// after the reason, instead of once per field; it unwraps to one *Error per
// field, so errors.As and errors.Is see each of them.
type BackendError struct {
	Fields []spec.Field
	Err    error
}

// Error formats the failure as "<reason> (fields: <field> (<ref>), ...)".
func (e *BackendError) Error() string {
	names := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		names[i] = f.Name + " (" + f.Ref.String() + ")"
	}
	return e.Err.Error() + " (fields: " + strings.Join(names, ", ") + ")"
}

// Unwrap returns one *Error per field.
func (e *BackendError) Unwrap() []error {
	out := make([]error, len(e.Fields))
	for i, f := range e.Fields {
		out[i] = &Error{Field: f, Err: e.Err}
	}
	return out
}

// key is a ref with its backend made explicit, so "/a" and "file:/a" are one
// read when file is the default backend.
type key struct {
	backend string
	ref     plugin.Ref
}

// Resolve reads the ref of every field and returns the secrets keyed by the
// refs as written in the fields. Each distinct ref is read once. When any ref
// fails, the error lists every failing field (errors.Join of *Error, and of
// *BackendError where one backend failure stops several fields, so that it
// is said once) and the secrets read so far are zeroed and not returned.
func (r *Resolver) Resolve(ctx context.Context, fields []spec.Field) (map[spec.Ref]plugin.Secret, error) {
	byKey := map[key][]spec.Field{}
	byBackend := map[string][]plugin.Ref{}
	for _, f := range fields {
		k := r.key(f.Ref)
		if _, seen := byKey[k]; !seen {
			byBackend[k.backend] = append(byBackend[k.backend], k.ref)
		}
		byKey[k] = append(byKey[k], f)
	}

	type batch struct {
		results map[plugin.Ref]plugin.Result
		err     error
	}
	out := make(map[string]batch, len(byBackend))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, refs := range byBackend {
		wg.Go(func() {
			res, err := r.read(ctx, name, refs)
			mu.Lock()
			out[name] = batch{res, err}
			mu.Unlock()
		})
	}
	wg.Wait()

	secrets := make(map[spec.Ref]plugin.Secret, len(fields))
	var errs []error
	keys := make([]key, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return fieldOrder(fields, byKey[keys[i]][0]) < fieldOrder(fields, byKey[keys[j]][0])
	})
	failed := map[string]*BackendError{} // backend name -> its failure, when it stops several fields
	for _, k := range keys {
		b := out[k.backend]
		var err error
		if b.err != nil {
			if be := failed[k.backend]; be != nil {
				be.Fields = append(be.Fields, byKey[k]...)
				continue
			}
			if n := fieldsOf(byKey, k.backend); n > 1 {
				be := &BackendError{Fields: slices.Clone(byKey[k]), Err: b.err}
				failed[k.backend] = be
				errs = append(errs, be)
				continue
			}
			err = b.err
		} else {
			res := b.results[k.ref]
			err = res.Err
			if err == nil {
				for _, f := range byKey[k] {
					secrets[f.Ref] = res.Secret
				}
			}
		}
		if err != nil {
			for _, f := range byKey[k] {
				errs = append(errs, &Error{Field: f, Err: err})
			}
		}
	}
	if len(errs) > 0 {
		Zero(secrets)
		return nil, errors.Join(errs...)
	}
	return secrets, nil
}

// fieldsOf counts the fields that read from backend.
func fieldsOf(byKey map[key][]spec.Field, backend string) int {
	n := 0
	for k, fs := range byKey {
		if k.backend == backend {
			n += len(fs)
		}
	}
	return n
}

func fieldOrder(fields []spec.Field, f spec.Field) int {
	for i, g := range fields {
		if g.Name == f.Name {
			return i
		}
	}
	return len(fields)
}

func (r *Resolver) key(ref spec.Ref) key {
	b := ref.Backend
	if b == "" {
		b = r.backends.DefaultBackend()
	}
	return key{backend: b, ref: plugin.Ref{Path: ref.Path, Field: ref.Field, Version: ref.Version}}
}

// readBackend reads refs from one backend in one batch, retrying the batch or
// the refs that came back ErrUnavailable (see the package doc's retry policy).
func (r *Resolver) readBackend(ctx context.Context, name string, refs []plugin.Ref) (map[plugin.Ref]plugin.Result, error) {
	b, err := r.backends.Backend(ctx, name)
	if err != nil {
		return nil, err
	}
	results := make(map[plugin.Ref]plugin.Result, len(refs))
	pending := refs
	read := func() error {
		res, err := b.Get(ctx, pending)
		var retry []plugin.Ref
		switch {
		case err != nil && !errors.Is(err, plugin.ErrUnavailable):
			return backoff.Permanent(err)
		case err != nil:
			retry = pending
			for _, ref := range pending {
				results[ref] = plugin.Result{Err: err}
			}
		default:
			for i, ref := range pending {
				results[ref] = res[i]
				if errors.Is(res[i].Err, plugin.ErrUnavailable) {
					retry = append(retry, ref)
				}
			}
		}
		if len(retry) == 0 {
			return nil
		}
		pending = retry
		return errRetry
	}
	err = backoff.Retry(read, backoff.WithContext(deadlineBackOff{ctx: ctx, BackOff: r.policy()}, ctx))
	switch {
	case err == nil, errors.Is(err, errRetry):
		// Done, or out of attempts or time: the unavailable refs keep
		// their last ErrUnavailable.
		return results, nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return nil, fmt.Errorf("backend %s: %w", name, err)
	default:
		return nil, err
	}
}

// errRetry tells backoff.Retry that some refs are still unavailable.
var errRetry = errors.New("some refs are unavailable")

// policy is the backoff between attempts: exponential from r.backoff,
// doubling, ±20% jitter, at most r.attempts-1 waits.
func (r *Resolver) policy() backoff.BackOff {
	exp := backoff.NewExponentialBackOff()
	exp.InitialInterval = r.backoff
	exp.Multiplier = 2
	exp.RandomizationFactor = 0.2
	exp.MaxInterval = math.MaxInt64
	exp.MaxElapsedTime = 0 // bounded by attempts and the context's deadline
	return backoff.WithMaxRetries(exp, uint64(r.attempts-1))
}

// deadlineBackOff stops retrying when the next wait would end after ctx's
// deadline: the caller then gets the store's own ErrUnavailable, not a bare
// "context deadline exceeded".
type deadlineBackOff struct {
	backoff.BackOff
	ctx context.Context
}

func (d deadlineBackOff) NextBackOff() time.Duration {
	next := d.BackOff.NextBackOff()
	if dl, ok := d.ctx.Deadline(); ok && next != backoff.Stop && time.Until(dl) < next {
		return backoff.Stop
	}
	return next
}

// Zero overwrites the bytes of every secret. Call it once the secrets are no
// longer needed; secrets that share a backing array are zeroed once.
func Zero(secrets map[spec.Ref]plugin.Secret) {
	for _, s := range secrets {
		clear(s.Data)
	}
}
