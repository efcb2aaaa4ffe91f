package kube_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/conf"
	"github.com/keyship/keyship/shipper/kube"
	"github.com/keyship/keyship/shipper/kube/kubetest"
)

// canary is the keystore password of every fixture: it must reach the
// Secret's data and nothing else.
const canary = "canary-Kube-4c1d7e"

// shipment builds a Shipment of seed 000's secrets for doc (DC/OS JSON when
// empty) and consumer ("" for the dialect's), with the files in dir.
func shipment(t testing.TB, doc, consumer, dir string, outputs ...materialize.Format) *shipper.Shipment {
	t.Helper()
	root := t.TempDir()
	filetest.Seed(t, root, canary)
	cfg := &config.Config{DefaultBackend: "file", Backends: map[string]config.Backend{"file": {Config: map[string]string{"root": root}}}}
	h := host.New(cfg, host.WithBuiltin("file", file.New))
	t.Cleanup(func() { _ = h.Close() })
	if doc == "" {
		doc = filetest.Spec
	}
	req, err := spec.ReadRequest(spec.Document{JobID: "spark-20260101-0001", Data: []byte(doc), Consumer: consumer, Hosts: []string{"node1.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	sh, err := shipper.Prepare(context.Background(), h, req, shipper.Options{Dir: dir, Build: materialize.Options{Outputs: outputs}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sh.Zero)
	return sh
}

// flinkDoc is a flink-conf.yaml request over seed 000's secrets.
const flinkDoc = `security.ssl.enabled: true
security.ssl.keystore: /spark/keystore
security.ssl.keystore-password: ${secret:/spark/keystore_password}
security.ssl.key-password: ${secret:/spark/key_password}
security.ssl.truststore: /spark/truststore
security.ssl.truststore-password: ${secret:/spark/truststore_password}
`

func TestSecretName(t *testing.T) {
	long := strings.Repeat("a", 80)
	for _, tc := range []struct{ id, want string }{
		{"spark-20260101-0001", "keyship-spark-20260101-0001"},
		{"keyship-cli-0123456789abcdef", "keyship-cli-0123456789abcdef"},
		{"Spark_Job/1", ""}, // changed: hashed
		{"", ""},
		{long, ""},
		{"job.with.dots", ""},
	} {
		got := kube.SecretName(tc.id)
		if tc.want != "" && got != tc.want {
			t.Errorf("SecretName(%q) = %q, want %q", tc.id, got, tc.want)
		}
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 || len(got) > kube.MaxNameLen {
			t.Errorf("SecretName(%q) = %q: not a DNS-1123 label of at most %d: %v", tc.id, got, kube.MaxNameLen, errs)
		}
		if len(validation.IsDNS1123Label(got+"-volume")) > 0 {
			t.Errorf("SecretName(%q) = %q: Spark's and Flink's volume name %q is not a DNS-1123 label", tc.id, got, got+"-volume")
		}
	}
	// Ids that differ only in what the name cannot carry get different names.
	if a, b := kube.SecretName("Job_1"), kube.SecretName("job-1"); a == b {
		t.Errorf("SecretName of Job_1 and job-1 are both %q", a)
	}
	if a, b := kube.SecretName(long+"x"), kube.SecretName(long+"y"); a == b {
		t.Errorf("SecretName of two long ids are both %q", a)
	}
}

func TestJobLabel(t *testing.T) {
	for _, id := range []string{"spark-1", "Spark_Job/1", "", strings.Repeat("x", 100), "-lead", "a b c"} {
		got := kube.JobLabel(id)
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 || got == "" {
			t.Errorf("JobLabel(%q) = %q: %v", id, got, errs)
		}
	}
	if got := kube.JobLabel("spark-1"); got != "spark-1" {
		t.Errorf("JobLabel(spark-1) = %q: a valid value is kept", got)
	}
}

func TestPlanSpark(t *testing.T) {
	sh := shipment(t, "", "", "/ignored/for/kubernetes")
	p, err := kube.NewPlan(sh, kube.Options{Namespace: "jobs", Expires: time.Unix(1_900_000_000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range p.Keys {
		names = append(names, k.Name)
	}
	if got, want := strings.Join(names, ","), "ca-bundle.jks,key.password,keystore.jks,keystore.password,truststore.jks,truststore.password"; got != want {
		t.Errorf("keys %s, want %s", got, want)
	}
	if k := p.Key(kube.KeyKeystorePassword); k == nil || string(k.Contents) != canary || k.Env != conf.EnvKeystorePassword {
		t.Errorf("keystore.password key: %+v", k)
	}
	for _, s := range p.Settings {
		if strings.Contains(s.Value, "/ignored") {
			t.Errorf("%s=%s points at the Shipment's dir, not the mount path", s.Key, s.Value)
		}
	}
	if p.Labels[kube.LabelManagedBy] != "keyship" || p.Labels[kube.LabelJob] != "spark-20260101-0001" {
		t.Errorf("labels %v", p.Labels)
	}
	if p.Annotations[kube.AnnotationExpires] != "2030-03-17T17:46:40Z" || p.Annotations[kube.AnnotationVersionPrefix+"keystore.jks"] != p.Key("keystore.jks").Version || p.Key("keystore.jks").Version == "" {
		t.Errorf("annotations %v", p.Annotations)
	}

	// The manifest is the Secret, read back by Kubernetes' own types.
	m := p.Manifest()
	var s corev1.Secret
	if err := yaml.UnmarshalStrict(m, &s); err != nil {
		t.Fatalf("manifest does not decode as a Secret: %v", err)
	}
	if s.APIVersion != "v1" || s.Kind != "Secret" || s.Type != corev1.SecretTypeOpaque || s.Name != "keyship-spark-20260101-0001" || s.Namespace != "jobs" {
		t.Errorf("manifest header: %s %s %s %s/%s", s.APIVersion, s.Kind, s.Type, s.Namespace, s.Name)
	}
	for _, k := range p.Keys {
		if !bytes.Equal(s.Data[k.Name], k.Contents) {
			t.Errorf("manifest key %s does not hold the plan's bytes", k.Name)
		}
	}
	if len(s.Data) != len(p.Keys) || s.Labels[kube.LabelJob] != p.Labels[kube.LabelJob] || len(s.Annotations) != len(p.Annotations) {
		t.Errorf("manifest metadata or data differ from the plan: %d keys, labels %v", len(s.Data), s.Labels)
	}
	// Deterministic: the same Shipment and options, the same bytes.
	p2, err := kube.NewPlan(sh, kube.Options{Namespace: "jobs", Expires: time.Unix(1_900_000_000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m, p2.Manifest()) {
		t.Error("two plans of one Shipment give different manifests")
	}
	// Only data holds the password.
	meta, _ := yaml.Marshal(s.ObjectMeta)
	if bytes.Contains(meta, []byte(canary)) || strings.Contains(conf.Properties(p.Settings), canary) {
		t.Error("the keystore password is in the metadata or the settings")
	}
}

func TestPlanFlinkFragmentPointsAtMountPath(t *testing.T) {
	sh := shipment(t, flinkDoc, "", "/ignored")
	p, err := kube.NewPlan(sh, kube.Options{MountPath: "/opt/flink/tls"})
	if err != nil {
		t.Fatal(err)
	}
	k := p.Key(conf.FlinkSecretFile)
	if k == nil {
		t.Fatalf("no %s key", conf.FlinkSecretFile)
	}
	var frag map[string]any
	if err := yaml.Unmarshal(k.Contents, &frag); err != nil {
		t.Fatal(err)
	}
	if frag["security.ssl.internal.keystore"] != "/opt/flink/tls/keystore.jks" || frag["security.ssl.internal.keystore-password"] != canary {
		t.Errorf("the fragment does not point at the mount path or lacks the password: keystore %v", frag["security.ssl.internal.keystore"])
	}
	if strings.Contains(conf.Format(conf.ConsumerFlink, p.Settings), canary) {
		t.Error("the printed Flink settings hold the keystore password")
	}
	if m := p.Manifest(); bytes.Contains(m, []byte("namespace:")) {
		t.Error("a plan without a namespace wrote one into the manifest")
	}
}

func TestPlanPEMKeys(t *testing.T) {
	sh := shipment(t, "", "", "/x", materialize.FormatJKS, materialize.FormatPEM)
	p, err := kube.NewPlan(sh, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"key.pem", "cert.pem", "ca.pem", "keystore.jks"} {
		if k := p.Key(name); k == nil || len(k.Contents) == 0 {
			t.Errorf("no %s key with --k8s-pem outputs", name)
		}
	}
}

func TestPlanRejectsBadOptions(t *testing.T) {
	sh := shipment(t, "", "", "/x")
	for _, tc := range []struct {
		opts kube.Options
		want string
	}{
		{kube.Options{Name: "Bad_Name"}, `secret name "Bad_Name"`},
		{kube.Options{Name: strings.Repeat("a", 60)}, "at most 56"},
		{kube.Options{Namespace: "No"}, `namespace "No"`},
		{kube.Options{MountPath: "relative/dir"}, `mount path "relative/dir"`},
		{kube.Options{MountPath: "/a:b"}, "mount path"},
		{kube.Options{MountPath: "/a/../b"}, "mount path"},
	} {
		if _, err := kube.NewPlan(sh, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewPlan(%+v) = %v, want an error with %q", tc.opts, err, tc.want)
		}
	}
}

func TestOperatorFragmentsHoldNoSecret(t *testing.T) {
	sh := shipment(t, "", "", "/x")
	p, err := kube.NewPlan(sh, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := kube.SparkApplication(p)
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		Spec struct {
			SparkConf map[string]string `json:"sparkConf"`
			Driver    struct {
				Secrets []struct{ Name, Path, SecretType string } `json:"secrets"`
				Env     []corev1.EnvVar                           `json:"env"`
			} `json:"driver"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(bytesWithoutExecutor(out), &app); err != nil {
		t.Fatalf("SparkApplication fragment: %v\n%s", err, out)
	}
	d := app.Spec.Driver
	if len(d.Secrets) != 1 || d.Secrets[0].Name != p.Name || d.Secrets[0].Path != kube.DefaultMountPath || d.Secrets[0].SecretType != "Generic" {
		t.Errorf("driver secrets %+v", d.Secrets)
	}
	if len(d.Env) != 3 || d.Env[0].ValueFrom.SecretKeyRef.Name != p.Name || d.Env[0].ValueFrom.SecretKeyRef.Key != kube.KeyKeystorePassword {
		t.Errorf("driver env %+v", d.Env)
	}
	if app.Spec.SparkConf["spark.ssl.keyStore"] != kube.DefaultMountPath+"/keystore.jks" {
		t.Errorf("sparkConf %v", app.Spec.SparkConf)
	}
	if bytes.Contains(out, []byte(canary)) {
		t.Error("the SparkApplication fragment holds the keystore password")
	}
}

// bytesWithoutExecutor drops the executor half, which the test's struct
// does not declare (it equals the driver's).
func bytesWithoutExecutor(out []byte) []byte {
	var m map[string]map[string]any
	_ = yaml.Unmarshal(out, &m)
	delete(m["spec"], "executor")
	b, _ := yaml.Marshal(m)
	return b
}

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.Stop()
	os.Exit(code)
}
