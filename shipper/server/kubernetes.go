package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keyship/keyship/plugin"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
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

// shipKubernetes applies the job's Secret and sets resp's settings to the
// ones that mount it.
func (s *Server) shipKubernetes(ctx context.Context, req *hostv1.ShipRequest, j *job, resp *hostv1.ShipResponse) error {
	k := s.kube
	if k == nil {
		return status.Error(codes.FailedPrecondition, "TARGET_KUBERNETES: this server has no Kubernetes client (keyship serve --kubernetes)")
	}
	opts := kube.Options{Name: req.GetKubernetesSecret(), Namespace: req.GetKubernetesNamespace(), MountPath: req.GetKubernetesMountPath()}
	if opts.Namespace == "" {
		opts.Namespace = k.client.Namespace
	}
	persist := req.GetKubernetesPersist()
	if !persist {
		opts.Expires = j.expires
	}
	plan, err := kube.NewPlan(j.shipment, opts)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	defer plan.Zero()
	a, err := k.client.Apply(ctx, plan)
	if err != nil {
		return toStatus(err)
	}
	key := secretKey{a.Namespace, a.Name}
	k.mu.Lock()
	if persist {
		delete(k.owned, key)
	} else if o, ok := k.owned[key]; !ok || o.uid != a.UID || o.deleteAt.Before(j.expires) {
		k.owned[key] = owned{uid: a.UID, deleteAt: j.expires}
	}
	k.mu.Unlock()
	ks := &hostv1.KubernetesSecret{Namespace: a.Namespace, Name: a.Name, MountPath: plan.MountPath, ResourceVersion: a.ResourceVersion}
	if !persist {
		ks.DeleteUnix = j.expires.Unix()
	}
	for _, key := range plan.Keys {
		ks.Keys = append(ks.Keys, key.Name)
	}
	resp.Kubernetes = ks
	resp.Settings = resp.Settings[:0]
	for _, st := range plan.Settings {
		if st.Password == nil {
			resp.Settings = append(resp.Settings, &hostv1.Setting{Key: st.Key, Value: st.Value})
		}
	}
	return nil
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
