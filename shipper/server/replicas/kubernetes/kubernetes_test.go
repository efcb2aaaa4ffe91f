package kubernetes_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/keyship/keyship/shipper/kube/kubetest"
	"github.com/keyship/keyship/shipper/server/replicas"
	"github.com/keyship/keyship/shipper/server/replicas/kubernetes"
	"github.com/keyship/keyship/shipper/server/replicas/replicastest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.Stop()
	os.Exit(code)
}

// replicaUser is the identity the replicas run as; it holds only
// kubernetes.Rules, as a namespaced Role.
const replicaUser = "keyship-replica"

// The tests' lease timings: a crashed leader is taken over within
// leaseDuration + retryPeriod.
const (
	leaseDuration = 4 * time.Second
	renewDeadline = 3 * time.Second
	retryPeriod   = 500 * time.Millisecond
)

// namespace makes a namespace whose Role is kubernetes.Rules, bound to
// replicaUser.
func namespace(t *testing.T, c *kubetest.Cluster) string {
	t.Helper()
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
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: replicaUser}},
	}
	if _, err := rc.RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns
}

func openState(t testing.TB, cfg *rest.Config, ns string) *kubernetes.State {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 500, 1000
	st, err := kubernetes.Open(kubernetes.Config{REST: cfg, Namespace: ns, ClusterID: "test",
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// cuttable is a transport that fails every request once cut, as a
// replica that was kill -9'd or partitioned away sends nothing.
type cuttable struct {
	rt  http.RoundTripper
	cut *atomic.Bool
}

func (c cuttable) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, errors.New("cut off")
	}
	return c.rt.RoundTrip(r)
}

// raw returns every ConfigMap, Lease and Secret of the namespace as JSON,
// and each ConfigMap's binary data as it is.
func raw(t testing.TB, c *kubetest.Cluster, ns string) []byte {
	t.Helper()
	ctx := context.Background()
	core := c.Core(t)
	var all []byte
	cms, err := core.ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		for _, b := range cm.BinaryData {
			all = append(all, b...)
		}
	}
	secrets, err := core.Secrets(ns).List(ctx, metav1.ListOptions{})
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
	for _, v := range []any{cms, secrets, leases} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestConformance runs the replicas suite against the real kube-apiserver,
// as a user holding only the namespaced Role kubernetes.Rules; a crash is
// a client whose every request fails from then on.
func TestConformance(t *testing.T) {
	c := kubetest.Start(t)
	replicastest.Run(t, func(t *testing.T) replicastest.Shared {
		ns := namespace(t, c)
		user := c.User(t, replicaUser)
		return replicastest.Shared{
			Open: func(t testing.TB) replicas.State { return openState(t, user, ns) },
			Crashable: func(t testing.TB) (replicas.State, func()) {
				cut := &atomic.Bool{}
				cfg := rest.CopyConfig(user)
				cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return cuttable{rt, cut} })
				return openState(t, cfg, ns), func() { cut.Store(true) }
			},
			Raw:      func(t testing.TB) []byte { return raw(t, c, ns) },
			Takeover: 10 * leaseDuration,
		}
	})
}

// TestForbiddenNamesTheRole: without the Role, a call fails saying which
// Role the replicas need.
func TestForbiddenNamesTheRole(t *testing.T) {
	c := kubetest.Start(t)
	ns := c.Namespace(t, "norole")
	st := openState(t, c.User(t, replicaUser), ns)
	_, err := st.List(context.Background(), replicas.KindJob)
	if err == nil || !strings.Contains(err.Error(), "configmaps get, list, create, update, delete") {
		t.Fatalf("List without the Role: %v, want a message naming the Role", err)
	}
}

func TestOpenChecksConfig(t *testing.T) {
	for _, cfg := range []kubernetes.Config{
		{},
		{REST: &rest.Config{Host: "https://127.0.0.1:1"}},
		{REST: &rest.Config{Host: "https://127.0.0.1:1"}, Namespace: "ns", ClusterID: "Not_A_Label"},
	} {
		if _, err := kubernetes.Open(cfg); err == nil {
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

// TestLeaseInteroperatesWithClientGo holds keyship's Lease handling to
// client-go's own leader election on the same Lease: while a keyship
// replica leads, client-go's elector does not take the Lease; once the
// replica resigns, it does; and while client-go's elector leads, a keyship
// campaign waits until it lets go.
func TestLeaseInteroperatesWithClientGo(t *testing.T) {
	c := kubetest.Start(t)
	ns := namespace(t, c)
	user := c.User(t, replicaUser)
	st := openState(t, user, ns)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	lead, err := st.Campaign(ctx, "interop")
	if err != nil {
		t.Fatal(err)
	}
	coord, err := coordinationv1client.NewForConfig(user)
	if err != nil {
		t.Fatal(err)
	}
	var theirs atomic.Bool
	stopped := make(chan struct{})
	clientGo := func(ctx context.Context, identity string) *leaderelection.LeaderElector {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Name: "keyship-test-interop", Namespace: ns},
				Client:     coord,
				LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
			},
			LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) { theirs.Store(true) },
				OnStoppedLeading: func() { theirs.Store(false); close(stopped) },
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return le
	}
	leCtx, leCancel := context.WithCancel(ctx)
	le := clientGo(leCtx, "client-go")
	ran := make(chan struct{})
	go func() { le.Run(leCtx); close(ran) }()

	// Past a lease duration: client-go must see keyship's renewals and wait.
	time.Sleep(leaseDuration + 2*retryPeriod)
	if theirs.Load() {
		t.Fatal("client-go's elector took the Lease while a keyship replica held and renewed it")
	}
	select {
	case <-lead.Done():
		t.Fatal("the keyship replica lost the Lease to client-go's elector")
	default:
	}
	if got := le.GetLeader(); got == "client-go" || got == "" {
		t.Fatalf("client-go's elector reads the holder %q, want the keyship replica's identity", got)
	}

	if err := lead.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(leaseDuration + 4*retryPeriod)
	for !theirs.Load() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !theirs.Load() {
		t.Fatal("client-go's elector did not take the Lease the keyship replica resigned")
	}

	// Now client-go leads: a keyship campaign must wait until it lets go.
	wait, waitCancel := context.WithTimeout(ctx, leaseDuration+2*retryPeriod)
	_, err = st.Campaign(wait, "interop")
	waitCancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a keyship campaign while client-go's elector leads: %v, want it still waiting at its deadline", err)
	}
	leCancel()
	<-ran
	<-stopped
	won, err := st.Campaign(ctx, "interop")
	if err != nil {
		t.Fatalf("a keyship campaign after client-go's elector released the Lease: %v", err)
	}
	_ = won.Resign(ctx)
}
