package server_test

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/host/keystore"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/kube"
	"github.com/keyship/keyship/shipper/kube/kubetest"
	"github.com/keyship/keyship/shipper/server"
)

// TestMain stops the API server kubetest starts for the package's tests.
func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.Stop()
	os.Exit(code)
}

func TestServeKubernetesTarget(t *testing.T) {
	c := kubetest.Start(t)
	served := c.Namespace(t, "served")
	other := c.Namespace(t, "unserved")
	c.GrantSecrets(t, served, "keyship-serve")
	kc, err := kube.NewClient(c.Kubeconfig(t, "keyship-serve", served))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	filetest.Seed(t, root, "store-pass-k8s")
	cfg := &config.Config{DefaultBackend: "file", Backends: map[string]config.Backend{"file": {Config: map[string]string{"root": root}}}}
	h := host.New(cfg, host.WithBuiltin("file", file.New))
	t.Cleanup(func() { _ = h.Close() })
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	srv := server.New(h, nil, server.WithClock(func() time.Time { return *now.Load() }), server.WithKubernetes(kc))
	ctx := context.Background()
	secrets := c.Core(t).Secrets(served)

	ship := func(jobID, ns string, persist bool) (*hostv1.ShipResponse, error) {
		return srv.Ship(ctx, &hostv1.ShipRequest{
			JobId: jobID, Spec: []byte(filetest.Spec), Tasks: tasks(jobID, 2), TtlSeconds: 60,
			Targets: []hostv1.Target{hostv1.Target_TARGET_KUBERNETES}, KubernetesNamespace: ns, KubernetesPersist: persist,
		})
	}
	resp, err := ship("spark-driver-20260101-0001", served, false)
	if err != nil {
		t.Fatal(err)
	}
	ks := resp.GetKubernetes()
	if ks.GetNamespace() != served || ks.GetName() != "keyship-spark-driver-20260101-0001" || ks.GetDeleteUnix() != resp.GetExpiresUnix() {
		t.Fatalf("kubernetes %+v (expires %d)", ks, resp.GetExpiresUnix())
	}
	s, err := secrets.Get(ctx, ks.GetName(), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Secret is not in the job's namespace: %v", err)
	}
	if s.ResourceVersion != ks.GetResourceVersion() || len(s.Data) != len(ks.GetKeys()) || s.Annotations[kube.AnnotationExpires] == "" {
		t.Errorf("stored Secret rv %s (response %s), %d keys (response %v), annotations %v", s.ResourceVersion, ks.GetResourceVersion(), len(s.Data), ks.GetKeys(), s.Annotations)
	}
	settings := map[string]string{}
	for _, st := range resp.GetSettings() {
		settings[st.GetKey()] = st.GetValue()
	}
	if settings["spark.kubernetes.executor.secrets."+ks.GetName()] != kube.DefaultMountPath || settings["spark.ssl.keyStore"] != kube.DefaultMountPath+"/keystore.jks" {
		t.Errorf("settings do not mount the Secret: %v", settings)
	}
	for _, st := range resp.GetSettings() {
		if strings.Contains(st.GetValue(), "store-pass-k8s") {
			t.Errorf("setting %s holds the keystore password", st.GetKey())
		}
	}

	// Shipping the job again (a new executor) changes nothing.
	again, err := ship("spark-driver-20260101-0001", served, false)
	if err != nil {
		t.Fatal(err)
	}
	if again.GetKubernetes().GetResourceVersion() != ks.GetResourceVersion() {
		t.Errorf("the same job shipped again: resourceVersion %s -> %s", ks.GetResourceVersion(), again.GetKubernetes().GetResourceVersion())
	}
	kept, err := ship("spark-streaming-0002", served, true)
	if err != nil {
		t.Fatal(err)
	}
	if kept.GetKubernetes().GetDeleteUnix() != 0 {
		t.Errorf("a persisted Secret has a delete time %d", kept.GetKubernetes().GetDeleteUnix())
	}

	// A namespace the server's credentials cannot write.
	_, err = ship("spark-other-0003", other, false)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), `namespace "`+other+`"`) {
		t.Errorf("Ship into %s without a Role: %v, want PERMISSION_DENIED naming it", other, err)
	}

	// Before the TTL, a sweep keeps the Secret; after, it is deleted, and the
	// persisted one stays.
	srv.Sweep()
	if _, err := secrets.Get(ctx, ks.GetName(), metav1.GetOptions{}); err != nil {
		t.Fatalf("a sweep inside the TTL deleted the Secret: %v", err)
	}
	later := start.Add(61 * time.Second)
	now.Store(&later)
	srv.Sweep()
	if _, err := secrets.Get(ctx, ks.GetName(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after the bundle's TTL the Secret is still there (%v)", err)
	}
	if _, err := secrets.Get(ctx, kept.GetKubernetes().GetName(), metav1.GetOptions{}); err != nil {
		t.Errorf("the persisted Secret was deleted: %v", err)
	}
}

func TestServeKubernetesWithoutClient(t *testing.T) {
	f := newFixture(t)
	_, err := f.srv.Ship(context.Background(), &hostv1.ShipRequest{JobId: "j", Spec: []byte(filetest.Spec), Tasks: tasks("t", 1),
		Targets: []hostv1.Target{hostv1.Target_TARGET_KUBERNETES}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "--kubernetes") {
		t.Errorf("TARGET_KUBERNETES without a client: %v", err)
	}
}

// TestWatchKubernetesReappliesSecret: a Watch of a job with
// TARGET_KUBERNETES on a watching server applies the job's Secret, and when
// the watch rebuilds the job after a rotated keystore, applies it again in
// place: the Secret read back holds the new certificate, under a new
// resourceVersion the WatchResponse names.
func TestWatchKubernetesReappliesSecret(t *testing.T) {
	c := kubetest.Start(t)
	ns := c.Namespace(t, "watched")
	c.GrantSecrets(t, ns, "keyship-serve")
	kc, err := kube.NewClient(c.Kubeconfig(t, "keyship-serve", ns))
	if err != nil {
		t.Fatal(err)
	}
	f := newWatchFixture(t, time.Hour, server.WithKubernetes(kc)) // passes on RefreshNow only
	secrets := c.Core(t).Secrets(ns)
	serial := func(name string) (string, string) {
		t.Helper()
		s, err := secrets.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("read back Secret %s/%s: %v", ns, name, err)
		}
		st, err := keystore.OpenJKS(s.Data["keystore.jks"], s.Data["keystore.password"])
		if err != nil || len(st.Keys) != 1 || len(st.Keys[0].Chain) == 0 {
			t.Fatalf("the Secret's keystore does not open with its keystore.password: %v", err)
		}
		defer st.Zero()
		return st.Keys[0].Chain[0].SerialNumber.Text(16), s.ResourceVersion
	}

	got := make(chan *hostv1.WatchResponse, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- f.client.WatchJob(ctx, &hostv1.WatchRequest{Ship: shipReq("job-k8s", tasks("exec", 1), hostv1.Target_TARGET_KUBERNETES)},
			func(r *hostv1.WatchResponse) error { got <- r; return nil })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	recv := func() *hostv1.WatchResponse {
		t.Helper()
		select {
		case r := <-got:
			return r
		case err := <-done:
			t.Fatalf("the Watch ended: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("no WatchResponse within 20s")
		}
		return nil
	}
	first := recv().GetShipment().GetKubernetes()
	if first.GetNamespace() != ns || first.GetName() == "" {
		t.Fatalf("first WatchResponse: kubernetes %+v", first)
	}
	before, rv := serial(first.GetName())
	if rv != first.GetResourceVersion() {
		t.Errorf("the Secret's resourceVersion %s, the response says %s", rv, first.GetResourceVersion())
	}

	want := f.rotate(t)
	f.pass(t)
	r := recv()
	ks := r.GetShipment().GetKubernetes()
	if r.GetReason() != hostv1.WatchReason_WATCH_REASON_CHANGED || ks.GetName() != first.GetName() {
		t.Fatalf("after the rotation: %v, Secret %q (was %q)", r.GetReason(), ks.GetName(), first.GetName())
	}
	now, rv2 := serial(ks.GetName())
	if now != want || now == before {
		t.Errorf("the Secret's keystore has serial %s after the rotation, want %s (was %s)", now, want, before)
	}
	if rv2 == rv || rv2 != ks.GetResourceVersion() {
		t.Errorf("resourceVersion %s -> %s, the response says %s", rv, rv2, ks.GetResourceVersion())
	}
}
