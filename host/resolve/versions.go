package resolve

import (
	"context"
	"sync"

	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// Version is the current version of one ref, or why it cannot be told.
type Version struct {
	// Version is the Secret.Version a Get of the ref would return now.
	Version string
	// Err is the backend's error for the ref (it names the ref, not the
	// field; the caller knows which fields hold the ref).
	Err error
}

// Versions tells the current version of every field's ref without keeping
// any secret: each distinct ref once, in one batch per backend, the
// backends in parallel, through plugin.VersionsOf (the backend's Versions,
// or a Get whose data is zeroed at once for a backend or ref that cannot
// tell). The result is keyed by the refs as written in the fields. It does
// not retry: a watch that asks at every refresh retries on its own
// schedule.
func (r *Resolver) Versions(ctx context.Context, fields []spec.Field) map[spec.Ref]Version {
	byKey := map[key][]spec.Ref{}
	byBackend := map[string][]plugin.Ref{}
	for _, f := range fields {
		if f.Inline() || f.Ref == (spec.Ref{}) {
			continue
		}
		k := r.key(f.Ref)
		if _, seen := byKey[k]; !seen {
			byBackend[k.backend] = append(byBackend[k.backend], k.ref)
		}
		byKey[k] = append(byKey[k], f.Ref)
	}
	out := make(map[spec.Ref]Version, len(fields))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, refs := range byBackend {
		wg.Go(func() {
			res, err := r.versions(ctx, name, refs)
			mu.Lock()
			defer mu.Unlock()
			for i, ref := range refs {
				v := Version{Err: err}
				if err == nil {
					v = Version{Version: res[i].Version, Err: res[i].Err}
				}
				for _, sr := range byKey[key{backend: name, ref: ref}] {
					out[sr] = v
				}
			}
		})
	}
	wg.Wait()
	return out
}

func (r *Resolver) versions(ctx context.Context, name string, refs []plugin.Ref) ([]plugin.VersionResult, error) {
	b, err := r.backends.Backend(ctx, name)
	if err != nil {
		return nil, err
	}
	return plugin.VersionsOf(ctx, b, refs)
}
