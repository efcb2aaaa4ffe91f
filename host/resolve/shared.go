package resolve

import (
	"bytes"
	"context"
	"maps"
	"sync"

	"github.com/keyship/keyship/plugin"
)

// Shared lets the Resolves of a batch of builds share their reads: a ref
// that several of them read (jobs that share a secret, rebuilt in one watch
// refresh) is read from its backend once, and each Resolve gets its own
// copy of the bytes, at the same version. Create one with NewShared, pass
// it down with WithShared, and Zero it once the builds are done. It is safe
// for concurrent use.
type Shared struct {
	mu      sync.Mutex
	entries map[key]*sharedRead
}

// sharedRead is one ref's read, done by the first Resolve that needs it.
type sharedRead struct {
	done chan struct{}
	res  plugin.Result
	err  error // the whole batch failed
}

// NewShared returns an empty Shared.
func NewShared() *Shared { return &Shared{entries: map[key]*sharedRead{}} }

type sharedKey struct{}

// WithShared returns ctx carrying s: the Resolves under it read through s.
func WithShared(ctx context.Context, s *Shared) context.Context {
	return context.WithValue(ctx, sharedKey{}, s)
}

// Zero overwrites the bytes s kept. The Resolves' copies are theirs.
func (s *Shared) Zero() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		select {
		case <-e.done:
			clear(e.res.Secret.Data)
		default: // still being read: its reader owns it until done
		}
	}
	clear(s.entries)
}

// read reads refs of backend name through the Shared of ctx, if any.
func (r *Resolver) read(ctx context.Context, name string, refs []plugin.Ref) (map[plugin.Ref]plugin.Result, error) {
	s, _ := ctx.Value(sharedKey{}).(*Shared)
	if s == nil {
		return r.readBackend(ctx, name, refs)
	}
	mine := make([]plugin.Ref, 0, len(refs))
	reads := make(map[plugin.Ref]*sharedRead, len(refs))
	s.mu.Lock()
	for _, ref := range refs {
		k := key{backend: name, ref: ref}
		e, ok := s.entries[k]
		if !ok {
			e = &sharedRead{done: make(chan struct{})}
			s.entries[k] = e
			mine = append(mine, ref)
		}
		reads[ref] = e
	}
	s.mu.Unlock()
	if len(mine) > 0 {
		res, err := r.readBackend(ctx, name, mine)
		for _, ref := range mine {
			e := reads[ref]
			e.res, e.err = res[ref], err
			close(e.done)
		}
	}
	out := make(map[plugin.Ref]plugin.Result, len(refs))
	for ref, e := range reads {
		select {
		case <-e.done:
		case <-ctx.Done():
			zeroResults(out)
			return nil, ctx.Err()
		}
		if e.err != nil {
			zeroResults(out)
			return nil, e.err
		}
		res := e.res
		res.Secret.Data = bytes.Clone(res.Secret.Data)
		res.Secret.Metadata = maps.Clone(res.Secret.Metadata)
		out[ref] = res
	}
	return out, nil
}

// zeroResults overwrites the bytes of res.
func zeroResults(res map[plugin.Ref]plugin.Result) {
	for _, r := range res {
		clear(r.Secret.Data)
	}
}
