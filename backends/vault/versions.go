package vault

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyship/keyship/plugin"
)

// Versions implements plugin.Versioner. For a KV v2 ref one read of the
// secret's metadata (<mount>/metadata/<path>: current_version and each
// version's deletion state) gives the version Get would return,
// "<mount><path>@<n>", without reading the secret's data; refs naming the
// same path in one batch cost one read. KV v1 keeps no versions, so its
// refs get ErrUnsupported (the caller reads them with Get), as do KV v2
// refs whose metadata the token may not read (a policy that grants "read"
// on <mount>/data/<path> only): grant "read" on <mount>/metadata/<path> to
// make an unchanged refresh read no secret.
//
// Metadata names no fields, so a ref whose field is missing from the
// secret gets a version here and ErrNotFound from Get of that version.
func (b *Backend) Versions(ctx context.Context, refs []plugin.Ref) ([]plugin.VersionResult, error) {
	c, err := b.current("Versions")
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]plugin.VersionResult, len(refs))
	if _, err := c.auth.ensure(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		for i := range out {
			out[i].Err = err
		}
		return out, nil
	}
	bt := &batch{}
	memo := map[string]metadataResult{}
	for i, ref := range refs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i] = c.version(ctx, bt, memo, ref)
	}
	return out, nil
}

// metadataResult is one metadata read, shared by the refs of a batch that
// name the same path.
type metadataResult struct {
	m    mount
	data map[string]any // the metadata: current_version, versions, ...
	err  error
}

// version tells one ref's version from its secret's metadata.
func (c *conn) version(ctx context.Context, bt *batch, memo map[string]metadataResult, ref plugin.Ref) plugin.VersionResult {
	field := ref.Field
	if field == "" {
		field = c.s.defaultField
	}
	name, _, err := splitField(field, c.s.decode)
	if err != nil {
		return plugin.VersionResult{Err: fmt.Errorf("vault backend: %s: %v: %w", refName(ref), err, plugin.ErrInvalidConfig)}
	}
	if name == "" {
		return plugin.VersionResult{Err: fmt.Errorf("vault backend: %s names no field and default_field is not set; add #<field>: %w", refName(ref), plugin.ErrInvalidConfig)}
	}
	p, err := cleanPath(ref)
	if err != nil {
		return plugin.VersionResult{Err: err}
	}
	r, ok := memo[p]
	if !ok {
		r = c.readMetadata(ctx, bt, ref, p)
		memo[p] = r
	}
	if r.err != nil {
		return plugin.VersionResult{Err: r.err}
	}
	n := metaString(r.data, "current_version")
	if ref.Version != "" {
		var ok bool
		if n, ok = positive(ref.Version); !ok {
			return plugin.VersionResult{Err: fmt.Errorf("vault backend: %s: version %q is not a KV v2 version number (1, 2, ...): %w", refName(ref), ref.Version, plugin.ErrInvalidConfig)}
		}
	}
	versions, _ := r.data["versions"].(map[string]any)
	entry, ok := versions[n].(map[string]any)
	switch {
	case !ok && ref.Version != "":
		return plugin.VersionResult{Err: fmt.Errorf("vault backend: %s: no version %s of a secret at %q (%s): %w", refName(ref), n, p, r.m, plugin.ErrNotFound)}
	case !ok || n == "" || n == "0":
		return plugin.VersionResult{Err: fmt.Errorf("vault backend: %s: the secret at %q has no data (%s): %w", refName(ref), p, r.m, plugin.ErrNotFound)}
	case metaBool(entry, "destroyed"):
		return plugin.VersionResult{Err: fmt.Errorf("vault backend: %s: version %s of the secret at %q was destroyed (KV v2); write a new version or read an older one with @<n>: %w",
			refName(ref), n, p, plugin.ErrNotFound)}
	case metaString(entry, "deletion_time") != "":
		return plugin.VersionResult{Err: fmt.Errorf("vault backend: %s: version %s of the secret at %q was deleted at %s (KV v2 soft delete); undelete it (vault kv undelete -versions=%s) or read an older one with @<n>: %w",
			refName(ref), n, p, metaString(entry, "deletion_time"), n, plugin.ErrNotFound)}
	}
	return plugin.VersionResult{Version: p + "@" + n}
}

// readMetadata reads the KV v2 metadata of the secret at p, or says why the
// ref's version must be read with Get (ErrUnsupported).
func (c *conn) readMetadata(ctx context.Context, bt *batch, ref plugin.Ref, p string) metadataResult {
	m, err := c.mountOf(ctx, bt, ref, p)
	if err != nil {
		return metadataResult{err: err}
	}
	rest := strings.TrimPrefix(p, m.path)
	switch {
	case rest == "":
		return metadataResult{err: fmt.Errorf("vault backend: %s names the mount %q itself, not a secret in it: %w", refName(ref), m.path, plugin.ErrInvalidConfig)}
	case m.version != 2:
		return metadataResult{err: fmt.Errorf("vault backend: %s: %s keeps no versions; read the secret to know: %w", refName(ref), m, plugin.ErrUnsupported)}
	}
	apiPath := m.path + "metadata/" + rest
	if c.metadataDeniedRecently(apiPath) {
		return metadataResult{err: fmt.Errorf("vault backend: %s: the token may not read %q; read the secret to know its version: %w", refName(ref), apiPath, plugin.ErrUnsupported)}
	}
	s, err := c.call(ctx, bt, func() (*api.Secret, error) {
		return c.client.Logical().ReadWithContext(ctx, apiPath)
	})
	switch {
	case err != nil && statusOf(err) == 403 && !isSealed(err):
		c.metadataDenied(apiPath)
		return metadataResult{err: fmt.Errorf("vault backend: %s: the token may not read %q; read the secret to know its version: %w", refName(ref), apiPath, plugin.ErrUnsupported)}
	case err != nil:
		return metadataResult{err: mapError(ctx, fmt.Sprintf("read the metadata of the secret at %q", p), err, c.auth.red)}
	case s == nil:
		return metadataResult{err: fmt.Errorf("vault backend: %s: no secret at %q (%s): %w", refName(ref), p, m, plugin.ErrNotFound)}
	}
	return metadataResult{m: m, data: s.Data}
}

// metadataRetry is how long a metadata path the token may not read is not
// asked again: a refresh of it reads the secret instead (one request, not
// two), and a policy granting the read is noticed within this time.
const metadataRetry = 10 * time.Minute

// metadataDeniedRecently reports whether apiPath was denied less than
// metadataRetry ago.
func (c *conn) metadataDeniedRecently(apiPath string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.deniedMetadata[apiPath]
	return ok && time.Since(t) < metadataRetry
}

// metadataDenied records that the token may not read apiPath and logs it,
// once per path and configuration: unchanged refreshes of it read the
// secret.
func (c *conn) metadataDenied(apiPath string) {
	c.mu.Lock()
	if c.deniedMetadata == nil {
		c.deniedMetadata = map[string]time.Time{}
	}
	_, seen := c.deniedMetadata[apiPath]
	c.deniedMetadata[apiPath] = time.Now()
	c.mu.Unlock()
	if !seen {
		c.logger.Info("the token may not read the secret's KV v2 metadata, so telling its version reads the secret; grant \"read\" on the metadata path to make unchanged refreshes cheap", "path", apiPath)
	}
}
