package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/kube"
)

// WithKubernetes serves TARGET_KUBERNETES through c: Ship server-side-applies
// the job's Secret in the request's namespace (c.Namespace when it names
// none), and Sweep deletes it once the job's bundle expires, unless the
// request asked it to persist.
//
// The server's credentials need, in each namespace it ships to, a Role for
// secrets with get, create, patch and delete, and nothing cluster-wide (see
// README, "## Kubernetes"). Deletions are remembered in memory only: a
// Secret whose server restarted before its TTL ended keeps its
// keyship.io/expires annotation for an operator's cleanup.
func WithKubernetes(c *kube.Client) Option {
	return func(s *Server) { s.kube = &kubeTarget{client: c, owned: map[secretKey]owned{}} }
}

// kubeTarget applies and later deletes the jobs' Secrets.
type kubeTarget struct {
	client *kube.Client
	mu     sync.Mutex
	owned  map[secretKey]owned // Secrets to delete, by namespace and name
}

type secretKey struct{ namespace, name string }

// owned is a Secret keyship applied and deletes at deleteAt if it is still
// the one with uid.
type owned struct {
	uid      types.UID
	deleteAt time.Time
}

// kubeDeleteTimeout bounds the deletion of one expired Secret.
const kubeDeleteTimeout = 10 * time.Second

// kubeTarget is the job's Kubernetes target: its Secret server-side-applied
// (apply; Sweep deletes it once the job expires, unless the request asks it
// to persist) or written as a manifest among the delivery's files
// (manifest), and the settings that mount it.
func (s *Server) kubeTarget(r Request, j *job, apply, manifest bool) (shipper.Target, error) {
	t := kube.Target{Options: kube.Options{Name: r.Kubernetes.Secret, Namespace: r.Kubernetes.Namespace, MountPath: r.Kubernetes.MountPath},
		Manifest: manifest, Operator: r.Kubernetes.Operator}
	if err := t.Check(r.JobID); err != nil {
		return nil, invalid(err)
	}
	if !apply {
		return t, nil
	}
	k := s.kube
	if k == nil {
		return nil, fmt.Errorf("TARGET_KUBERNETES: this server has no Kubernetes client (keyship serve --kubernetes) (%w)", shipper.ErrNotConfigured)
	}
	t.Client = k.client
	if t.Namespace == "" {
		t.Namespace = k.client.Namespace
	}
	persist := r.Kubernetes.Persist
	if !persist {
		t.Expires = j.expires
	}
	return shipper.TargetFunc(func(ctx context.Context, sh *shipper.Shipment, d *shipper.Delivery) error {
		if err := t.Deliver(ctx, sh, d); err != nil {
			return err
		}
		key := secretKey{d.Secret.Namespace, d.Secret.Name}
		uid := types.UID(d.Secret.UID)
		if s.shared != nil && !persist {
			// The deletion's schedule lives in the job's shared record,
			// so that it survives this replica (ha_watch.go).
			if err := s.recordSecret(ctx, j.key, key.namespace, key.name, uid); err != nil {
				return err
			}
		}
		k.mu.Lock()
		if persist {
			delete(k.owned, key)
		} else if o, ok := k.owned[key]; !ok || o.uid != uid || o.deleteAt.Before(j.expires) {
			k.owned[key] = owned{uid: uid, deleteAt: j.expires}
		}
		k.mu.Unlock()
		return nil
	}), nil
}

// sweepKubernetes deletes the Secrets whose jobs have expired. A deletion
// the API server could not answer is tried again at the next sweep; any
// other failure is final.
func (s *Server) sweepKubernetes() {
	k := s.kube
	if k == nil {
		return
	}
	now := s.now()
	k.mu.Lock()
	due := map[secretKey]owned{}
	for key, o := range k.owned {
		if !now.Before(o.deleteAt) {
			due[key] = o
			delete(k.owned, key)
		}
	}
	k.mu.Unlock()
	for key, o := range due {
		k.mu.Lock()
		_, again := k.owned[key] // shipped again since: a new job owns it
		k.mu.Unlock()
		if again {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), kubeDeleteTimeout)
		err := k.client.Delete(ctx, key.namespace, key.name, o.uid)
		cancel()
		if errors.Is(err, plugin.ErrUnavailable) {
			k.mu.Lock()
			if _, again := k.owned[key]; !again {
				k.owned[key] = o
			}
			k.mu.Unlock()
		}
	}
}
