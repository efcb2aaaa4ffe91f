package host

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"

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
	// infoNames caches each backend's Info.Name (Info is static): asking a
	// plugin for it on every ship costs a round trip per call.
	infoNames sync.Map // backend config name -> Info.Name
}

// Option changes a Host.
type Option func(*options)

type options struct {
	builtins map[string]func() plugin.Backend
	logger   hclog.Logger
	resolve  []resolve.Option
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
	return &Host{loader: l, resolver: resolve.New(l, o.resolve...)}
}

// Loader returns the host's backend loader.
func (h *Host) Loader() *loader.Loader { return h.loader }

// Build resolves the refs of s and materializes its stores. The secrets read
// are zeroed before Build returns; the caller owns the Bundle and must call
// its Zero once it is shipped. Errors name the spec field and ref and never
// hold secret bytes.
func (h *Host) Build(ctx context.Context, s *spec.Spec, opts materialize.Options) (*materialize.Bundle, error) {
	b, _, err := h.BuildWithOrigins(ctx, s, opts)
	return b, err
}

// Origins says which outputs of a build are byte-identical to the secret of
// one spec field, so that a shipper may send a reference to that secret
// instead of its bytes (a Mesos secret REFERENCE on DC/OS).
type Origins struct {
	// Files maps the role of a bundle file to the field whose secret is
	// exactly the file's bytes.
	Files map[materialize.Role]spec.Field
	// KeystorePassword, KeyPassword and TruststorePassword are the fields
	// whose secrets are exactly the bundle's passwords, or nil.
	KeystorePassword, KeyPassword, TruststorePassword *spec.Field
}

// BackendName returns the name of the backend a ref is read from (its own,
// or the default), as Info reports it, e.g. "dcos".
func (h *Host) BackendName(ctx context.Context, r spec.Ref) (string, error) {
	key := r.Backend
	if key == "" {
		key = h.loader.DefaultBackend()
	}
	if name, ok := h.infoNames.Load(key); ok {
		return name.(string), nil
	}
	b, err := h.loader.Backend(ctx, r.Backend)
	if err != nil {
		return "", err
	}
	info, err := b.Info(ctx)
	if err != nil {
		return "", err
	}
	h.infoNames.Store(key, info.Name)
	return info.Name, nil
}

// BuildWithOrigins is Build that also reports the Origins of the outputs.
func (h *Host) BuildWithOrigins(ctx context.Context, s *spec.Spec, opts materialize.Options) (*materialize.Bundle, *Origins, error) {
	secrets, err := h.resolver.Resolve(ctx, s.Fields())
	if err != nil {
		return nil, nil, err
	}
	defer resolve.Zero(secrets)
	if issues := s.Issues(); len(issues) > 0 {
		hosts := opts.Hosts
		if len(hosts) == 0 {
			hosts = s.Hosts
		}
		issued, err := h.issue(ctx, issues, hosts)
		defer func() {
			for _, is := range issued {
				clear(is.PrivateKey)
			}
		}()
		if err != nil {
			return nil, nil, err
		}
		opts.Issued = issued
	}
	b, err := materialize.Build(ctx, s, secrets, opts)
	if err != nil {
		return nil, nil, err
	}
	return b, origins(s, secrets, b), nil
}

// origins compares the bundle's outputs with the secrets they came from.
func origins(s *spec.Spec, secrets map[spec.Ref]plugin.Secret, b *materialize.Bundle) *Origins {
	o := &Origins{Files: map[materialize.Role]spec.Field{}}
	same := func(f *spec.Field, out []byte) bool {
		if f == nil || !f.IsSet() || f.Inline() || f.Encoding != "" || out == nil {
			return false
		}
		sec, ok := secrets[f.Ref]
		return ok && bytes.Equal(sec.Data, out)
	}
	fields := s.Fields()
	for _, file := range b.Files {
		for i := range fields {
			if same(&fields[i], file.Contents) {
				o.Files[file.Role] = fields[i]
				break
			}
		}
	}
	pick := func(out []byte, candidates ...*spec.Field) *spec.Field {
		for _, f := range candidates {
			if same(f, out) {
				c := *f
				return &c
			}
		}
		return nil
	}
	o.KeystorePassword = pick(b.KeystorePassword, &s.Keystore.Password)
	o.KeyPassword = pick(b.KeyPassword, s.Keystore.KeyPassword, &s.Keystore.Password)
	if s.Truststore != nil {
		o.TruststorePassword = pick(b.TruststorePassword, &s.Truststore.Password)
	}
	return o
}

// issue asks each Issue's backend for a certificate covering hosts. Every
// call issues a new certificate, so the caller builds once per job and host
// set (host/server caches by both).
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

// Close stops every plugin process the host started.
func (h *Host) Close() error { return h.loader.Close() }
