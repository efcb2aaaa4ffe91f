package host

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// The build cache: jobs of one application ship the same stores, so a
// Bundle is built once per content (the spec, the version of every secret
// it reads, the build options and, for issued certificates, the host set)
// and shared by every Build that asks for the same content while the entry
// lives. Each Build still reads every ref from its backend (the versions must
// be known to find the entry), so a rotated secret is never served from the
// cache; only materialize (opening, checking and writing the stores) is
// saved. Issued certificates are not cached: each Build issues its own.

// buildCache holds built Bundles by content key. It is safe for concurrent
// use.
type buildCache struct {
	ttl time.Duration
	max int
	now func() time.Time
	// key keys the content digests, so that a digest of inline passwords
	// is of no use outside this process.
	key []byte

	mu      sync.Mutex
	entries map[[32]byte]*cacheEntry
	hits    int64
	builds  int64
}

type cacheEntry struct {
	bundle  *materialize.Bundle // the cache's own copy, zeroed on eviction
	expires time.Time
}

func newBuildCache(ttl time.Duration, maxEntries int, now func() time.Time) *buildCache {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &buildCache{ttl: ttl, max: maxEntries, now: now, key: key, entries: map[[32]byte]*cacheEntry{}}
}

// contentKey is the digest of what a Bundle depends on, or ok false when
// some secret has no version (then its content cannot be told by version
// and the build is not cached).
func (c *buildCache) contentKey(s *spec.Spec, secrets map[spec.Ref]plugin.Secret, opts materialize.Options) (key [32]byte, ok bool) {
	mac := hmac.New(sha256.New, c.key)
	// The Spec as JSON: inline values are base64 bytes, so two specs that
	// differ only in an inline password differ here.
	enc := json.NewEncoder(mac)
	if enc.Encode(s) != nil {
		return key, false
	}
	refs := slices.SortedFunc(func(yield func(spec.Ref) bool) {
		for r := range secrets {
			if !yield(r) {
				return
			}
		}
	}, func(a, b spec.Ref) int { return cmpRef(a, b) })
	for _, r := range refs {
		v := secrets[r].Version
		if v == "" {
			return key, false
		}
		fmt.Fprintf(mac, "%s\x00%d:%s\x00", r, len(v), v)
	}
	var deadline int64
	if !opts.Deadline.IsZero() {
		deadline = opts.Deadline.Unix()
	}
	fmt.Fprintf(mac, "%q\x00%q\x00%q\x00%d\x00%d", opts.Outputs, opts.PKCS12, opts.KeyAlias, opts.ExpiryWarning, deadline)
	copy(key[:], mac.Sum(nil))
	return key, true
}

func cmpRef(a, b spec.Ref) int {
	for _, c := range [][2]string{{a.Backend, b.Backend}, {a.Path, b.Path}, {a.Field, b.Field}, {a.Version, b.Version}} {
		if d := bytes.Compare([]byte(c[0]), []byte(c[1])); d != 0 {
			return d
		}
	}
	return 0
}

// get returns a copy of the live Bundle at key, or nil.
func (c *buildCache) get(key [32]byte) *materialize.Bundle {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !c.now().Before(e.expires) {
		return nil
	}
	c.hits++
	return cloneBundle(e.bundle)
}

// put keeps a copy of b at key, evicting expired entries (and, past max,
// the one closest to expiry).
func (c *buildCache) put(key [32]byte, b *materialize.Bundle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.builds++
	now := c.now()
	if old, ok := c.entries[key]; ok {
		old.bundle.Zero()
	}
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			e.bundle.Zero()
			delete(c.entries, k)
		}
	}
	if len(c.entries) >= c.max {
		var oldest [32]byte
		var first *cacheEntry
		for k, e := range c.entries {
			if first == nil || e.expires.Before(first.expires) {
				oldest, first = k, e
			}
		}
		first.bundle.Zero()
		delete(c.entries, oldest)
	}
	c.entries[key] = &cacheEntry{bundle: cloneBundle(b), expires: now.Add(c.ttl)}
}

// stats returns how many Builds were served from the cache and how many
// were built.
func (c *buildCache) stats() (hits, builds int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.builds
}

// sweep zeroes and drops the expired entries.
func (c *buildCache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			e.bundle.Zero()
			delete(c.entries, k)
		}
	}
}

// zero zeroes and drops every entry.
func (c *buildCache) zero() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		e.bundle.Zero()
		delete(c.entries, k)
	}
}

// cloneBundle copies b with its own file contents and passwords, so that
// each holder zeroes its own.
func cloneBundle(b *materialize.Bundle) *materialize.Bundle {
	c := *b
	c.Files = slices.Clone(b.Files)
	for i := range c.Files {
		c.Files[i].Contents = bytes.Clone(b.Files[i].Contents)
	}
	c.KeystorePassword = bytes.Clone(b.KeystorePassword)
	c.KeyPassword = bytes.Clone(b.KeyPassword)
	c.TruststorePassword = bytes.Clone(b.TruststorePassword)
	c.Warnings = slices.Clone(b.Warnings)
	c.Inputs = slices.Clone(b.Inputs)
	return &c
}
