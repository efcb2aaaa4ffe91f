package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/shipper/server/replicas"
)

// HA is how a daemon shares its state with other replicas (keyship serve
// --ha zookeeper|kubernetes).
type HA struct {
	// Engine names the engine for logs and errors ("zookeeper",
	// "kubernetes").
	Engine string
	// Open opens the shared state; the daemon closes it when it stops.
	// Required.
	Open func(ctx context.Context) (replicas.State, error)
	// Key is the ref of the 32-byte key that seals every shared record
	// (--ha-key), read through the daemon's backends once at start.
	Key spec.Ref
}

// haStartTimeout bounds reading --ha-key and connecting to the engine.
const haStartTimeout = time.Minute

// openHA reads the sealing key through h's backends and opens the shared
// state: the Store the server shares its jobs and grants through.
func openHA(ctx context.Context, ha *HA, h *host.Host) (*replicas.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, haStartTimeout)
	defer cancel()
	key, err := readKey(ctx, h, ha.Key)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	if len(key) != replicas.KeySize {
		return nil, fmt.Errorf("--ha-key %s: the secret is %d bytes, the sealing key must be exactly %d (e.g. head -c 32 /dev/urandom)", ha.Key, len(key), replicas.KeySize)
	}
	st, err := ha.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("--ha %s: %w", ha.Engine, err)
	}
	store, err := replicas.NewStore(st, key)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return store, nil
}

// readKey reads ref's bytes through its backend; the caller clears them.
func readKey(ctx context.Context, h *host.Host, ref spec.Ref) ([]byte, error) {
	b, err := h.Loader().Backend(ctx, ref.Backend)
	if err != nil {
		return nil, fmt.Errorf("--ha-key %s: %w", ref, err)
	}
	res, err := b.Get(ctx, []plugin.Ref{{Path: ref.Path, Field: ref.Field, Version: ref.Version}})
	if err != nil {
		return nil, fmt.Errorf("--ha-key %s: %w", ref, err)
	}
	if len(res) != 1 {
		return nil, fmt.Errorf("--ha-key %s: the backend answered %d secrets for one ref", ref, len(res))
	}
	if res[0].Err != nil {
		return nil, fmt.Errorf("--ha-key %s: %w", ref, res[0].Err)
	}
	return res[0].Secret.Data, nil
}
