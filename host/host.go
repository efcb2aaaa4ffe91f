package host

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/host/loader"
	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/resolve"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// Host runs a job's TLS request through the pipeline: resolve every ref once
// through the configured backends, then materialize and check the stores.
// It is safe for concurrent use; Close stops its plugin processes.
type Host struct {
	loader   *loader.Loader
	resolver *resolve.Resolver
	// caps caches each backend's Info.Capabilities (Info is static): asking
	// a plugin for it on every ship costs a round trip per call.
	caps     sync.Map // backend config name -> []string
	observer Observer
	// cache shares built Bundles by content, or is nil (WithBuildCache).
	cache *buildCache
}

// Observer is told what the host does, for metrics. Its methods are called
// on the request path and must return quickly; they never see secret bytes.
type Observer interface {
	// SecretRead is called once per ref read from the backend named
	// backend (every try of a retried read counts), with nil or the
	// read's error.
	SecretRead(backend string, err error)
	// Stage is called when a stage of Build ends: "resolve" (reading every
	// ref) or "build" (issuing, opening, checking and writing the stores).
	Stage(stage string, d time.Duration, err error)
}

// Option changes a Host.
type Option func(*options)

type options struct {
	builtins   map[string]func() plugin.Backend
	logger     hclog.Logger
	resolve    []resolve.Option
	observer   Observer
	cacheTTL   time.Duration
	cacheMax   int
	cacheClock func() time.Time
}

// WithBuildCache makes Build share the Bundle of identical content (the same
// spec, the same version of every secret, the same options) for ttl, keeping
// at most maxEntries Bundles: jobs of one application then cost one
// materialize, not one each. Every Build still reads each ref from its
// backend, to know the versions; a spec that issues certificates, or reads a
// secret without a version, is always built. now is the cache's clock (nil
// for time.Now).
func WithBuildCache(ttl time.Duration, maxEntries int, now func() time.Time) Option {
	return func(o *options) { o.cacheTTL, o.cacheMax, o.cacheClock = ttl, maxEntries, now }
}

// WithBuiltin makes the backend constructor available in-process under name.
func WithBuiltin(name string, newBackend func() plugin.Backend) Option {
	return func(o *options) { o.builtins[name] = newBackend }
}

// WithLogger sets the logger that host and plugin logs go to.
func WithLogger(l hclog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithResolveOptions passes options to the resolver (retry policy).
func WithResolveOptions(opts ...resolve.Option) Option {
	return func(o *options) { o.resolve = append(o.resolve, opts...) }
}

// WithObserver makes the host tell o of every secret read and how long
// each stage of Build takes.
func WithObserver(o Observer) Option {
	return func(o2 *options) { o2.observer = o }
}

// New returns a Host for cfg. Backends start on first use.
func New(cfg *config.Config, opts ...Option) *Host {
	o := options{builtins: map[string]func() plugin.Backend{}, logger: hclog.NewNullLogger()}
	for _, opt := range opts {
		opt(&o)
	}
	lopts := []loader.Option{loader.WithLogger(o.logger)}
	for name, nb := range o.builtins {
		lopts = append(lopts, loader.WithBuiltin(name, nb))
	}
	l := loader.New(cfg, lopts...)
	var backends resolve.Backends = l
	if o.observer != nil {
		backends = observedBackends{l, o.observer}
	}
	h := &Host{loader: l, resolver: resolve.New(backends, o.resolve...), observer: o.observer}
	if o.cacheTTL > 0 && o.cacheMax > 0 {
		now := o.cacheClock
		if now == nil {
			now = time.Now
		}
		h.cache = newBuildCache(o.cacheTTL, o.cacheMax, now)
	}
	return h
}

// observedBackends reports every ref a backend is asked for to an Observer.
type observedBackends struct {
	*loader.Loader
	observer Observer
}

func (o observedBackends) Backend(ctx context.Context, name string) (plugin.Backend, error) {
	b, err := o.Loader.Backend(ctx, name)
	if err != nil {
		return nil, err
	}
	return observedBackend{Backend: b, name: name, observer: o.observer}, nil
}

// observedBackend reports the outcome of each ref of a Get.
type observedBackend struct {
	plugin.Backend
	name     string
	observer Observer
}

func (o observedBackend) Get(ctx context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	res, err := o.Backend.Get(ctx, refs)
	for i := range refs {
		switch {
		case err != nil:
			o.observer.SecretRead(o.name, err)
		case i < len(res):
			o.observer.SecretRead(o.name, res[i].Err)
		}
	}
	return res, err
}

// Loader returns the host's backend loader.
func (h *Host) Loader() *loader.Loader { return h.loader }

// Build resolves the refs of s and materializes its stores for the hosts in
// s.Hosts. The secrets read are zeroed before Build returns; the caller owns
// the Bundle and must call its Zero once it is shipped. Each File and password
// Source that is exactly one secret is marked Referable when that secret's
// backend declares plugin.CapabilityMesosReference. The Bundle's Inputs list
// every secret read and certificate issued, with its version. Errors name
// the spec field and ref and never hold secret bytes.
func (h *Host) Build(ctx context.Context, s *spec.Spec, opts materialize.Options) (*materialize.Bundle, error) {
	start := time.Now()
	secrets, err := h.resolver.Resolve(ctx, s.Fields())
	h.stage("resolve", start, err)
	if err != nil {
		return nil, err
	}
	defer resolve.Zero(secrets)
	start = time.Now()
	var key [32]byte
	cacheable := h.cache != nil && len(s.Issues()) == 0
	if cacheable {
		if key, cacheable = h.cache.contentKey(s, secrets, opts); cacheable {
			if b := h.cache.get(key); b != nil {
				h.stage("build", start, nil)
				return b, nil
			}
		}
	}
	b, err := h.build(ctx, s, secrets, opts)
	h.stage("build", start, err)
	if err == nil && cacheable {
		h.cache.put(key, b)
	}
	return b, err
}

// CacheStats returns how many Builds the build cache served and how many it
// built (both 0 without WithBuildCache).
func (h *Host) CacheStats() (hits, builds int64) {
	if h.cache == nil {
		return 0, 0
	}
	return h.cache.stats()
}

func (h *Host) stage(name string, start time.Time, err error) {
	if h.observer != nil {
		h.observer.Stage(name, time.Since(start), err)
	}
}

// inputs lists the secrets read and the certificates issued for s, in
// field order, each with its backend named and its version.
func (h *Host) inputs(s *spec.Spec, secrets map[spec.Ref]plugin.Secret, issued map[string]plugin.Issued) []materialize.Input {
	var out []materialize.Input
	add := func(f spec.Field, version string) {
		ref := f.Ref
		if ref.Backend == "" {
			ref.Backend = h.loader.DefaultBackend()
		}
		out = append(out, materialize.Input{Field: f.Name, Ref: ref, Version: version})
	}
	for _, f := range s.Fields() {
		add(f, secrets[f.Ref].Version)
	}
	for _, is := range s.Issues() {
		add(is.Field, issued[is.Field.Name].Version)
	}
	return out
}

// build issues the spec's certificates and materializes its stores.
func (h *Host) build(ctx context.Context, s *spec.Spec, secrets map[spec.Ref]plugin.Secret, opts materialize.Options) (*materialize.Bundle, error) {
	if issues := s.Issues(); len(issues) > 0 {
		issued, err := h.issue(ctx, issues, s.Hosts)
		defer func() {
			for _, is := range issued {
				clear(is.PrivateKey)
			}
		}()
		if err != nil {
			return nil, err
		}
		opts.Issued = issued
	}
	b, err := materialize.Build(ctx, s, secrets, opts)
	if err != nil {
		return nil, err
	}
	h.markReferable(ctx, b)
	b.Inputs = h.inputs(s, secrets, opts.Issued)
	return b, nil
}

// markReferable sets Source.Referable on the bundle's exact sources whose
// backend the Mesos secret resolver can read by name: a whole secret (no
// #field) at its latest version (no @version), as Mesos reads it.
func (h *Host) markReferable(ctx context.Context, b *materialize.Bundle) {
	mark := func(src *materialize.Source) {
		if !src.Exact() || src.Ref.Field != "" || src.Ref.Version != "" {
			return
		}
		src.Referable = slices.Contains(h.capabilities(ctx, src.Ref.Backend), plugin.CapabilityMesosReference)
	}
	for i := range b.Files {
		mark(&b.Files[i].Source)
	}
	mark(&b.KeystorePasswordSource)
	mark(&b.KeyPasswordSource)
	mark(&b.TruststorePasswordSource)
}

// capabilities returns the capabilities the backend named backend ("" for
// the default) declares in its Info, or nil when it cannot be asked. Info is
// static, so each backend is asked once.
func (h *Host) capabilities(ctx context.Context, backend string) []string {
	key := backend
	if key == "" {
		key = h.loader.DefaultBackend()
	}
	if caps, ok := h.caps.Load(key); ok {
		return caps.([]string)
	}
	b, err := h.loader.Backend(ctx, backend)
	if err != nil {
		return nil
	}
	info, err := b.Info(ctx)
	if err != nil {
		return nil
	}
	h.caps.Store(key, info.Capabilities)
	return info.Capabilities
}

// issue asks each Issue's backend for a certificate covering hosts. Every
// call issues a new certificate, so the caller builds once per job and host
// set (shipper/server caches by both).
func (h *Host) issue(ctx context.Context, issues []*spec.Issue, hosts []string) (map[string]plugin.Issued, error) {
	out := map[string]plugin.Issued{}
	var errs []error
	for _, is := range issues {
		fail := func(reason string) {
			errs = append(errs, &spec.FieldError{Field: is.Field.Name, Ref: is.Field.Ref.String(), Reason: reason})
		}
		if len(hosts) == 0 {
			fail("a certificate is issued for the job's hosts, and the request names none (give the tasks' hosts, or --hosts)")
			continue
		}
		b, err := h.loader.Backend(ctx, is.Field.Ref.Backend)
		if err != nil {
			errs = append(errs, &resolve.Error{Field: is.Field, Err: err})
			continue
		}
		issuer, ok := b.(plugin.Issuer)
		if !ok {
			fail("this backend cannot issue certificates (no certificate authority)")
			continue
		}
		req := plugin.IssueRequest{Path: is.Field.Ref.Path, TTL: is.TTL}
		for _, host := range hosts {
			if ip := net.ParseIP(host); ip != nil {
				req.IPAddresses = append(req.IPAddresses, ip.String())
			} else {
				req.DNSNames = append(req.DNSNames, host)
			}
		}
		got, err := issuer.Issue(ctx, req)
		if err != nil {
			errs = append(errs, &resolve.Error{Field: is.Field, Err: err})
			continue
		}
		out[is.Field.Name] = got
	}
	return out, errors.Join(errs...)
}

// SweepCache zeroes and drops the build cache's expired Bundles (a cache
// otherwise drops them only when it stores another); keyship serve calls
// it on a timer.
func (h *Host) SweepCache() {
	if h.cache != nil {
		h.cache.sweep()
	}
}

// Close stops every plugin process the host started and zeroes the build
// cache.
func (h *Host) Close() error {
	if h.cache != nil {
		h.cache.zero()
	}
	return h.loader.Close()
}
