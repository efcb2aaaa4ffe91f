package kube_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/shipper/conf"
	"github.com/keyship/keyship/shipper/kube"
	"github.com/keyship/keyship/shipper/kube/kubetest"
)

// client is keyship's client as user "keyship", whose Role for secrets the
// test grants in the namespaces it wants writable.
func client(t *testing.T, c *kubetest.Cluster, ns string) *kube.Client {
	t.Helper()
	kc, err := kube.NewClient(c.Kubeconfig(t, "keyship", ns))
	if err != nil {
		t.Fatal(err)
	}
	if kc.Namespace != ns {
		t.Fatalf("client namespace %q, want the kubeconfig context's %q", kc.Namespace, ns)
	}
	return kc
}

func TestApplyIsIdempotentAndKeepsForeignSecrets(t *testing.T) {
	c := kubetest.Start(t)
	ns := c.Namespace(t, "apply")
	c.GrantSecrets(t, ns, "keyship")
	kc := client(t, c, ns)
	ctx := context.Background()
	sh := shipment(t, "", "", "/x")

	p, err := kube.NewPlan(sh, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := kc.Apply(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if first.Namespace != ns || p.Namespace != ns {
		t.Fatalf("applied in %q (plan %q), want the context's %q", first.Namespace, p.Namespace, ns)
	}
	again, err := kc.Apply(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != first.ResourceVersion || again.UID != first.UID {
		t.Errorf("applying the same plan again changed the Secret: resourceVersion %s -> %s", first.ResourceVersion, again.ResourceVersion)
	}
	// The API server holds exactly the plan, managed by keyship.
	got, err := c.Core(t).Secrets(ns).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != corev1.SecretTypeOpaque || len(got.Data) != len(p.Keys) || string(got.Data[kube.KeyKeystorePassword]) != canary {
		t.Errorf("stored Secret: type %s, %d keys", got.Type, len(got.Data))
	}
	if len(got.ManagedFields) != 1 || got.ManagedFields[0].Manager != kube.FieldManager || got.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Errorf("managed fields %+v, want one Apply entry by %s", got.ManagedFields, kube.FieldManager)
	}
	// A changed plan (another mount path changes nothing stored; another
	// expiry does) is a new resourceVersion, and a removed annotation goes.
	p.Annotations["keyship.io/expires"] = "2030-01-01T00:00:00Z"
	changed, err := kc.Apply(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if changed.ResourceVersion == first.ResourceVersion {
		t.Error("a changed plan kept the resourceVersion")
	}
	delete(p.Annotations, "keyship.io/expires")
	if _, err := kc.Apply(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, _ = c.Core(t).Secrets(ns).Get(ctx, p.Name, metav1.GetOptions{})
	if _, ok := got.Annotations["keyship.io/expires"]; ok {
		t.Error("an annotation keyship no longer applies stayed on the Secret")
	}

	// A Secret keyship did not make is never taken over.
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}, StringData: map[string]string{"a": "b"}}
	if _, err := c.Core(t).Secrets(ns).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p2, _ := kube.NewPlan(sh, kube.Options{Name: "theirs"})
	if _, err := kc.Apply(ctx, p2); err == nil || !strings.Contains(err.Error(), "not keyship's") {
		t.Errorf("Apply over a foreign Secret: %v", err)
	}

	// Delete honours the UID: a Secret made anew under the name stays.
	if err := kc.Delete(ctx, ns, p.Name, "00000000-0000-0000-0000-000000000000"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Core(t).Secrets(ns).Get(ctx, p.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("Delete with another UID deleted the Secret: %v", err)
	}
	if err := kc.Delete(ctx, ns, p.Name, first.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Core(t).Secrets(ns).Get(ctx, p.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after Delete: %v", err)
	}
	if err := kc.Delete(ctx, ns, p.Name, first.UID); err != nil {
		t.Errorf("deleting a deleted Secret: %v", err)
	}
}

func TestApplyWithoutRoleIsPermissionDenied(t *testing.T) {
	c := kubetest.Start(t)
	mine := c.Namespace(t, "mine")
	other := c.Namespace(t, "other")
	c.GrantSecrets(t, mine, "keyship")
	kc := client(t, c, mine)
	p, err := kube.NewPlan(shipment(t, "", "", "/x"), kube.Options{Namespace: other})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kc.Apply(context.Background(), p)
	if !errors.Is(err, plugin.ErrPermissionDenied) || !strings.Contains(err.Error(), `namespace "`+other+`"`) {
		t.Fatalf("Apply in a namespace without a Role: %v", err)
	}
	if strings.Contains(err.Error(), canary) {
		t.Error("the error holds the keystore password")
	}
}

// TestSettingsMakeValidPods builds the pods that Spark and the Flink
// operator would build from the settings and lets the API server validate
// them (dry run): volume names, mount paths and secretKeyRefs must be what
// Kubernetes accepts, and name keys of the applied Secret.
func TestSettingsMakeValidPods(t *testing.T) {
	c := kubetest.Start(t)
	ns := c.Namespace(t, "pods")
	c.GrantSecrets(t, ns, "keyship")
	kc := client(t, c, ns)
	ctx := context.Background()
	p, err := kube.NewPlan(shipment(t, "", "", "/x"), kube.Options{Name: kube.SecretName(strings.Repeat("long-job-id-", 8))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.Apply(ctx, p); err != nil {
		t.Fatal(err)
	}
	stored, err := c.Core(t).Secrets(ns).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Spark: MountSecretsFeatureStep adds volume "<name>-volume" (a secret
	// volume) mounted at the value of spark.kubernetes.driver.secrets.<name>;
	// EnvSecretsFeatureStep splits spark.kubernetes.driver.secretKeyRef.<ENV>
	// at ':' into exactly name and key (Spark 3.5 and 4.0,
	// resource-managers/kubernetes/core/.../features/).
	spark := corev1.Container{Name: "spark-kubernetes-driver", Image: "apache/spark:4.0.0"}
	pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "spark-driver"}}
	for _, s := range p.Settings {
		switch {
		case strings.HasPrefix(s.Key, "spark.kubernetes.driver.secrets."):
			name := strings.TrimPrefix(s.Key, "spark.kubernetes.driver.secrets.")
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name + "-volume", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name}}})
			spark.VolumeMounts = append(spark.VolumeMounts, corev1.VolumeMount{Name: name + "-volume", MountPath: s.Value})
		case strings.HasPrefix(s.Key, "spark.kubernetes.driver.secretKeyRef."):
			parts := strings.Split(s.Value, ":")
			if len(parts) != 2 {
				t.Fatalf("%s=%s: Spark requires name:key", s.Key, s.Value)
			}
			if _, ok := stored.Data[parts[1]]; !ok || parts[0] != stored.Name {
				t.Errorf("%s=%s names no key of the applied Secret", s.Key, s.Value)
			}
			spark.Env = append(spark.Env, corev1.EnvVar{Name: strings.TrimPrefix(s.Key, "spark.kubernetes.driver.secretKeyRef."),
				ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: parts[0]}, Key: parts[1]}}})
		}
	}
	if len(pod.Spec.Volumes) != 1 || len(spark.Env) != 3 {
		t.Fatalf("settings gave %d volumes and %d env, want 1 and 3:\n%s", len(pod.Spec.Volumes), len(spark.Env), conf.Properties(p.Settings))
	}
	pod.Spec.Containers = []corev1.Container{spark}
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict}
	if _, err := c.Core(t).Pods(ns).Create(ctx, &pod, dryRun); err != nil {
		t.Errorf("the API server refuses the pod Spark would make: %v", err)
	}

	// The Flink operator's pod template, as keyship writes it.
	frag, err := kube.FlinkDeployment(p)
	if err != nil {
		t.Fatal(err)
	}
	var fd struct {
		Spec struct {
			PodTemplate corev1.PodTemplateSpec `json:"podTemplate"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(frag, &fd); err != nil {
		t.Fatal(err)
	}
	fpod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "flink-jobmanager"}, Spec: fd.Spec.PodTemplate.Spec}
	fpod.Spec.Containers[0].Image = "flink:2.1"
	if fpod.Spec.Containers[0].Name != kube.FlinkMainContainer {
		t.Errorf("pod template container %q, want %q", fpod.Spec.Containers[0].Name, kube.FlinkMainContainer)
	}
	if _, err := c.Core(t).Pods(ns).Create(ctx, &fpod, dryRun); err != nil {
		t.Errorf("the API server refuses the Flink pod template: %v", err)
	}
}
