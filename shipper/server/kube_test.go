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
