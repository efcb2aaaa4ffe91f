package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/hashicorp/go-hclog"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"k8s.io/client-go/rest"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/config"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/kube"
	"github.com/keyship/keyship/shipper/kube/kubetest"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/server/replicas"
	"github.com/keyship/keyship/shipper/server/replicas/kubernetes"
	"github.com/keyship/keyship/shipper/server/replicas/replicastest"
)

// haReplicaUser is the identity of the replicas in the real API server: it
// holds kubernetes.Rules as a namespaced Role, nothing cluster-wide.
const haReplicaUser = "keyship-replica"

// kubeEngine is the replicas' state in the real kube-apiserver (ConfigMaps
// and a Lease); raw is every ConfigMap and Lease of the namespace.
func kubeEngine(t testing.TB) engine {
	c := kubetest.Start(t)
	ns := c.Namespace(t, "replicas")
	rc, err := rbacv1client.NewForConfig(c.Admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := rc.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "keyship-replicas"}, Rules: kubernetes.Rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "keyship-replicas"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "keyship-replicas"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: haReplicaUser}},
	}
	if _, err := rc.RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user := c.User(t, haReplicaUser)
	return engine{name: "kubernetes", open: func(t testing.TB, cluster string) replicas.State {
		cfg := rest.CopyConfig(user)
		cfg.QPS, cfg.Burst = 500, 1000
		st, err := kubernetes.Open(kubernetes.Config{REST: cfg, Namespace: ns, ClusterID: cluster,
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}, raw: func(t testing.TB) []byte {
		cms, err := c.Core(t).ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		coord, err := coordinationv1client.NewForConfig(c.Admin)
		if err != nil {
			t.Fatal(err)
		}
		leases, err := coord.Leases(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal([]any{cms, leases})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, control: func(cluster string) string { return fmt.Sprintf("%q:%q", kubernetes.LabelClusterID, cluster) }}
}

// TestReplicasDeleteSecretsAfterRestart: a Secret one replica applied for a
// job is deleted, once the job is due, by a replica started after every
// replica stopped: the deletion's schedule lives in the job's shared
// record, not in the memory of the replica that applied it.
func TestReplicasDeleteSecretsAfterRestart(t *testing.T) {
	c := kubetest.Start(t)
	served := c.Namespace(t, "ha-served")
	c.GrantSecrets(t, served, "keyship-serve")
	kc, err := kube.NewClient(c.Kubeconfig(t, "keyship-serve", served))
	if err != nil {
		t.Fatal(err)
	}
	root := seedRoot(t)
	cfg := &config.Config{DefaultBackend: "file", Backends: map[string]config.Backend{"file": {Config: map[string]string{"root": root}}}}
	mem := replicas.NewMemory()
	now := time.Now()
	clock := func() time.Time { return now }
	replica := func(st replicas.State) *server.Server {
		h := host.New(cfg, host.WithBuiltin("file", file.New))
		t.Cleanup(func() { _ = h.Close() })
		store, err := replicas.NewStore(st, replicastest.Key, replicas.WithClock(clock))
		if err != nil {
			t.Fatal(err)
		}
		return server.New(h, nil, server.WithClock(clock), server.WithKubernetes(kc), server.WithReplicas(store))
	}
	a := replica(mem)
	ctx := context.Background()
	_, err = a.Ship(ctx, &hostv1.ShipRequest{JobId: "job-k", Spec: []byte(haSpec()), Tasks: tasks("exec", 1), TtlSeconds: 60,
		Targets: []hostv1.Target{hostv1.Target_TARGET_KUBERNETES}})
	if err != nil {
		t.Fatal(err)
	}
	secrets := c.Core(t).Secrets(served)
	list, err := secrets.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("after the Ship: %d Secrets (%v), want 1", len(list.Items), err)
	}
	name := list.Items[0].Name
	_ = mem.Close() // every replica gone: a's memory with it

	b := replica(mem.Replica())
	b.Sweep()
	if _, err := secrets.Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Fatalf("a sweep before the job is due deleted its Secret: %v", err)
	}
	now = now.Add(2 * time.Minute)
	b.Sweep()
	if _, err := secrets.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the due job's Secret after a sweep by a replica started after the restart: %v, want NotFound", err)
	}
}

// TestReplicasRetrySecretDeletion: when the leader's deletion of a due
// job's Secret fails (here the API server forbids it: the replica's
// credentials lack delete), the job's record keeps the Secret, and a later
// sweep (by a replica whose deletion succeeds) deletes it.
func TestReplicasRetrySecretDeletion(t *testing.T) {
	c := kubetest.Start(t)
	served := c.Namespace(t, "ha-retry")
	c.GrantSecrets(t, served, "keyship-serve")
	client := func(user string) *kube.Client {
		kc, err := kube.NewClient(c.Kubeconfig(t, user, served))
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	root := seedRoot(t)
	cfg := &config.Config{DefaultBackend: "file", Backends: map[string]config.Backend{"file": {Config: map[string]string{"root": root}}}}
	mem := replicas.NewMemory()
	now := time.Now()
	clock := func() time.Time { return now }
	replica := func(st replicas.State, kc *kube.Client, opts ...server.Option) *server.Server {
		h := host.New(cfg, host.WithBuiltin("file", file.New))
		t.Cleanup(func() { _ = h.Close() })
		store, err := replicas.NewStore(st, replicastest.Key, replicas.WithClock(clock))
		if err != nil {
			t.Fatal(err)
		}
		return server.New(h, nil, append([]server.Option{server.WithClock(clock), server.WithKubernetes(kc), server.WithReplicas(store)}, opts...)...)
	}
	a := replica(mem, client("keyship-serve"))
	ctx := context.Background()
	_, err := a.Ship(ctx, &hostv1.ShipRequest{JobId: "job-r", Spec: []byte(haSpec()), Tasks: tasks("exec", 1), TtlSeconds: 60,
		Targets: []hostv1.Target{hostv1.Target_TARGET_KUBERNETES}})
	if err != nil {
		t.Fatal(err)
	}
	secrets := c.Core(t).Secrets(served)
	list, err := secrets.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("after the Ship: %d Secrets (%v), want 1", len(list.Items), err)
	}
	name := list.Items[0].Name
	now = now.Add(2 * time.Minute)

	// The denied replica watches nothing: its failure is logged all the same.
	var logged bytes.Buffer
	denied := replica(mem.Replica(), client("keyship-no-delete"), server.WithLogger(hclog.New(&hclog.LoggerOptions{Output: &logged})))
	denied.Sweep()
	if _, err := secrets.Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Fatalf("the Secret after a forbidden deletion: %v, want it still there", err)
	}
	if !strings.Contains(logged.String(), name) || !strings.Contains(logged.String(), "forbidden") {
		t.Errorf("a replica that watches no job logged %q for a Secret it may not delete, want a line naming %s and why", logged.String(), name)
	}
	b := replica(mem.Replica(), client("keyship-serve"))
	b.Sweep()
	if _, err := secrets.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the due job's Secret after a sweep that can delete it, following one that could not: %v, want NotFound", err)
	}
	b.Sweep()
	jobs, err := mustStore(t, mem.Replica(), clock).Due(ctx)
	if err != nil || len(jobs) != 0 {
		t.Fatalf("after the Secret was deleted the sweep left %d due job records (%v), want 0", len(jobs), err)
	}
}

// mustStore is a Store over st at clock.
func mustStore(t testing.TB, st replicas.State, clock func() time.Time) *replicas.Store {
	store, err := replicas.NewStore(st, replicastest.Key, replicas.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func haSpec() string { return string(shipReq("", nil).GetSpec()) }
