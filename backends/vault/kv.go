package vault

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyship/keyship/plugin"
)

// mountCacheTTL is how long a detected mount's KV version is trusted.
const mountCacheTTL = time.Minute

// mount is a secrets engine mount: its path ("secret/"), engine type and KV
// version (1 for every engine that is not KV v2).
type mount struct {
	path    string
	typ     string
	version int
}

func (m mount) String() string {
	if m.typ != "kv" && m.typ != "generic" && m.typ != "" {
		return fmt.Sprintf("%s mount %q", m.typ, m.path)
	}
	return fmt.Sprintf("KV v%d mount %q", m.version, m.path)
}

// readResult is one request's outcome, shared by the refs of a batch that
// name the same secret and version.
type readResult struct {
	m      mount
	rest   string         // path inside the mount
	fields map[string]any // the secret's fields
	meta   map[string]any // KV v2 metadata of the version read
	err    error
}

// cleanPath trims a ref path's slashes and refuses empty or ".." paths.
func cleanPath(ref plugin.Ref) (string, error) {
	p := strings.Trim(ref.Path, "/")
	if p == "" {
		return "", fmt.Errorf("vault backend: %s: empty path; want <mount>/<path>#<field>: %w", refName(ref), plugin.ErrInvalidConfig)
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == ".." || seg == "." || seg == "" {
			return "", fmt.Errorf("vault backend: %s: path segments may not be empty, \".\" or \"..\": %w", refName(ref), plugin.ErrInvalidConfig)
		}
	}
	return p, nil
}

// mountOf finds the mount holding path p (no leading or trailing "/").
func (c *conn) mountOf(ctx context.Context, bt *batch, ref plugin.Ref, p string) (mount, error) {
	best := ""
	for mp := range c.s.kvMounts {
		if strings.HasPrefix(p+"/", mp) && len(mp) > len(best) {
			best = mp
		}
	}
	if best != "" {
		return mount{path: best, typ: "kv", version: c.s.kvMounts[best]}, nil
	}
	now := time.Now()
	c.mu.Lock()
	var hit *mount
	for mp, e := range c.mounts {
		if strings.HasPrefix(p+"/", mp) && now.Before(e.expires) && (hit == nil || len(mp) > len(hit.path)) {
			m := e.mount
			hit = &m
		}
	}
	c.mu.Unlock()
	if hit != nil {
		return *hit, nil
	}
	s, err := c.call(ctx, bt, func() (*api.Secret, error) {
		return c.client.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+p)
	})
	if err != nil || s == nil {
		noMount := fmt.Errorf("vault backend: %s: no secrets engine is mounted at %q (enable one, or fix the mount in the path): %w",
			refName(ref), p, plugin.ErrNotFound)
		switch code := statusOf(err); {
		case err == nil || code == 404:
			return mount{}, noMount
		case code == 403 && !isSealed(err):
			// Vault answers 403 both when nothing is mounted there and when
			// the token may not see the mount. A token that has capabilities
			// on the path tells the two apart.
			if c.mayAccess(ctx, p) {
				return mount{}, noMount
			}
			return mount{}, fmt.Errorf("vault backend: %s: permission denied: the token's policies grant no capability on %q, or no secrets engine is mounted there "+
				"(a KV v2 secret needs \"read\" on <mount>/data/<path>, KV v1 on <mount>/<path>; kv_mounts skips this detection): %w",
				refName(ref), p, plugin.ErrPermissionDenied)
		}
		return mount{}, mapError(ctx, "find the mount of "+refName(ref), err, c.auth.red)
	}
	m := mount{version: 1}
	m.path, _ = s.Data["path"].(string)
	m.typ, _ = s.Data["type"].(string)
	if opts, ok := s.Data["options"].(map[string]any); ok && (m.typ == "kv" || m.typ == "generic") {
		if v, _ := opts["version"].(string); v == "2" {
			m.version = 2
		}
	}
	if m.path == "" || !strings.HasPrefix(p+"/", m.path) {
		return mount{}, fmt.Errorf("vault backend: %s: Vault named mount %q for it, which does not contain the path: %w",
			refName(ref), m.path, plugin.ErrUnavailable)
	}
	c.mu.Lock()
	c.mounts[m.path] = mountEntry{mount: m, expires: now.Add(mountCacheTTL)}
	c.mu.Unlock()
	c.logger.Debug("detected mount", "mount", m.path, "type", m.typ, "kv_version", m.version)
	return m, nil
}

// mayAccess reports whether the token's policies grant any capability on
// path p (sys/capabilities-self, which the default policy allows).
func (c *conn) mayAccess(ctx context.Context, p string) bool {
	caps, err := c.client.Sys().CapabilitiesSelfWithContext(ctx, p)
	if err != nil {
		return false
	}
	for _, cp := range caps {
		if cp != "deny" {
			return true
		}
	}
	return false
}

// get reads one ref.
func (c *conn) get(ctx context.Context, ref plugin.Ref, bt *batch) plugin.Result {
	field, decode := ref.Field, c.s.decode
	if field == "" {
		field = c.s.defaultField
	}
	name, decode, err := splitField(field, decode)
	if err != nil {
		return plugin.Result{Err: fmt.Errorf("vault backend: %s: %v: %w", refName(ref), err, plugin.ErrInvalidConfig)}
	}
	p, err := cleanPath(ref)
	if err != nil {
		return plugin.Result{Err: err}
	}
	key := p + "@" + ref.Version
	r, ok := bt.memo[key]
	if !ok {
		r = c.readSecret(ctx, bt, ref, p)
		bt.memo[key] = r
	}
	if r.err != nil {
		return plugin.Result{Err: r.err}
	}
	if name == "" {
		return plugin.Result{Err: fmt.Errorf("vault backend: %s names no field and default_field is not set; add #<field> (fields: %s): %w",
			refName(ref), fieldNames(r.fields), plugin.ErrInvalidConfig)}
	}
	raw, ok := r.fields[name]
	if !ok {
		return plugin.Result{Err: fmt.Errorf("vault backend: %s: the secret at %q has no field %q (fields: %s): %w",
			refName(ref), p, name, fieldNames(r.fields), plugin.ErrNotFound)}
	}
	data, err := fieldBytes(raw, decode)
	if err != nil {
		return plugin.Result{Err: fmt.Errorf("vault backend: %s: field %q: %v: %w", refName(ref), name, err, plugin.ErrInvalidConfig)}
	}
	sec := plugin.Secret{Data: data, Metadata: map[string]string{
		"mount":      r.m.path,
		"kv_version": fmt.Sprint(r.m.version),
	}}
	if r.m.version == 2 {
		n := metaString(r.meta, "version")
		sec.Version = p + "@" + n
		sec.Metadata["version"] = n
		if t := metaString(r.meta, "created_time"); t != "" {
			sec.Metadata["created_time"] = t
		}
	} else {
		mac := hmac.New(sha256.New, c.versionKey)
		mac.Write([]byte(p + "#" + name + "\x00"))
		mac.Write(data)
		sec.Version = "h1:" + hex.EncodeToString(mac.Sum(nil))[:32]
	}
	return plugin.Result{Secret: sec}
}

// readSecret reads the secret at p (a ref's cleaned path) and its version.
func (c *conn) readSecret(ctx context.Context, bt *batch, ref plugin.Ref, p string) readResult {
	m, err := c.mountOf(ctx, bt, ref, p)
	if err != nil {
		return readResult{err: err}
	}
	r := readResult{m: m, rest: strings.TrimPrefix(p, m.path)}
	if r.rest == "" {
		r.err = fmt.Errorf("vault backend: %s names the mount %q itself, not a secret in it: %w", refName(ref), m.path, plugin.ErrInvalidConfig)
		return r
	}
	apiPath := m.path + r.rest
	var params map[string][]string
	if m.version == 2 {
		apiPath = m.path + "data/" + r.rest
		if ref.Version != "" {
			if n, ok := positive(ref.Version); !ok {
				r.err = fmt.Errorf("vault backend: %s: version %q is not a KV v2 version number (1, 2, ...): %w", refName(ref), ref.Version, plugin.ErrInvalidConfig)
				return r
			} else {
				params = map[string][]string{"version": {n}}
			}
		}
	} else if ref.Version != "" {
		r.err = fmt.Errorf("vault backend: %s: %s keeps no versions; drop the @%s: %w", refName(ref), m, ref.Version, plugin.ErrInvalidConfig)
		return r
	}
	s, err := c.call(ctx, bt, func() (*api.Secret, error) {
		return c.client.Logical().ReadWithDataWithContext(ctx, apiPath, params)
	})
	if err != nil {
		if statusOf(err) == 403 && !isSealed(err) {
			r.err = fmt.Errorf("vault backend: %s: permission denied: the token's policies must grant the \"read\" capability on %q: %w",
				refName(ref), apiPath, plugin.ErrPermissionDenied)
		} else {
			r.err = mapError(ctx, "read "+refName(ref), err, c.auth.red)
		}
		return r
	}
	if s == nil {
		what := "no secret at"
		if ref.Version != "" {
			what = fmt.Sprintf("no version %s of a secret at", ref.Version)
		}
		r.err = fmt.Errorf("vault backend: %s: %s %q (%s): %w", refName(ref), what, p, m, plugin.ErrNotFound)
		return r
	}
	if m.version == 1 {
		r.fields = s.Data
		return r
	}
	r.meta, _ = s.Data["metadata"].(map[string]any)
	r.fields, _ = s.Data["data"].(map[string]any)
	if r.fields == nil {
		n := metaString(r.meta, "version")
		switch {
		case metaBool(r.meta, "destroyed"):
			r.err = fmt.Errorf("vault backend: %s: version %s of the secret at %q was destroyed (KV v2); write a new version or read an older one with @<n>: %w",
				refName(ref), n, p, plugin.ErrNotFound)
		case metaString(r.meta, "deletion_time") != "":
			r.err = fmt.Errorf("vault backend: %s: version %s of the secret at %q was deleted at %s (KV v2 soft delete); undelete it (vault kv undelete -versions=%s) or read an older one with @<n>: %w",
				refName(ref), n, p, metaString(r.meta, "deletion_time"), n, plugin.ErrNotFound)
		default:
			r.err = fmt.Errorf("vault backend: %s: the secret at %q has no data (%s): %w", refName(ref), p, m, plugin.ErrNotFound)
		}
	}
	return r
}

// positive returns v as a canonical positive integer.
func positive(v string) (string, bool) {
	n := 0
	for _, ch := range v {
		if ch < '0' || ch > '9' || n > 1<<30 {
			return "", false
		}
		n = n*10 + int(ch-'0')
	}
	if n <= 0 {
		return "", false
	}
	return fmt.Sprint(n), true
}

func metaString(m map[string]any, k string) string {
	switch v := m[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func metaBool(m map[string]any, k string) bool {
	b, _ := m[k].(bool)
	return b
}

// fieldNames lists a secret's field names (not their values) for errors.
func fieldNames(fields map[string]any) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, fmt.Sprintf("%q", k))
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "none"
	}
	if len(names) > 20 {
		names = append(names[:20], "...")
	}
	return strings.Join(names, ", ")
}

// fieldBytes turns a field's JSON value into the secret's bytes. Errors
// never quote the value.
func fieldBytes(v any, decode string) ([]byte, error) {
	var text string
	switch v := v.(type) {
	case string:
		text = v
	case json.Number:
		text = v.String()
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("value is not JSON-encodable")
		}
		text = string(b)
	}
	if decode != DecodeBase64 {
		return []byte(text), nil
	}
	if _, ok := v.(string); !ok {
		return nil, fmt.Errorf("base64 decoding asked for, but the value is not a string")
	}
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, text)
	out, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		return nil, fmt.Errorf("base64 decoding asked for (decode setting or :base64), but the value is not standard base64 (%d characters; bad input near character %v)",
			len(clean), corruptOffset(err))
	}
	return out, nil
}

func corruptOffset(err error) string {
	if c, ok := err.(base64.CorruptInputError); ok {
		return fmt.Sprint(int64(c))
	}
	return "?"
}

// list implements Backend.List.
func (c *conn) list(ctx context.Context, prefix string) ([]string, error) {
	p := strings.Trim(prefix, "/")
	if p == "" {
		return c.listMounts(ctx)
	}
	ref := plugin.Ref{Path: prefix}
	if _, err := cleanPath(ref); err != nil {
		return nil, err
	}
	bt := &batch{}
	m, err := c.mountOf(ctx, bt, ref, p)
	if err != nil {
		return nil, err
	}
	rest := strings.TrimPrefix(p+"/", m.path)
	apiPath := m.path + rest
	if m.version == 2 {
		apiPath = m.path + "metadata/" + rest
	}
	s, err := c.call(ctx, bt, func() (*api.Secret, error) {
		return c.client.Logical().ListWithContext(ctx, strings.TrimSuffix(apiPath, "/"))
	})
	switch {
	case err != nil && statusOf(err) == 403 && !isSealed(err):
		return nil, fmt.Errorf("vault backend: list %q: permission denied: the token's policies must grant the \"list\" capability on %q: %w",
			prefix, apiPath, plugin.ErrPermissionDenied)
	case err != nil:
		return nil, mapError(ctx, fmt.Sprintf("list %q", prefix), err, c.auth.red)
	case s == nil:
		return nil, fmt.Errorf("vault backend: list %q: nothing under %q (%s): %w", prefix, p, m, plugin.ErrNotFound)
	}
	keys, _ := s.Data["keys"].([]any)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if ks, ok := k.(string); ok {
			out = append(out, m.path+rest+ks)
		}
	}
	slices.Sort(out)
	return out, nil
}

// listMounts lists the KV mounts the token can see.
func (c *conn) listMounts(ctx context.Context) ([]string, error) {
	s, err := c.call(ctx, &batch{}, func() (*api.Secret, error) {
		return c.client.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts")
	})
	if err != nil {
		return nil, mapError(ctx, "list mounts", err, c.auth.red)
	}
	var out []string
	if s != nil {
		engines, _ := s.Data["secret"].(map[string]any)
		for path, info := range engines {
			m, _ := info.(map[string]any)
			if t, _ := m["type"].(string); t == "kv" || t == "generic" {
				out = append(out, path)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
