package main_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/keyship/keyship/host/materialize/jssetest"
	"github.com/keyship/keyship/shipper/kube"
	"github.com/keyship/keyship/shipper/kube/kubetest"
)

// kubeJob is a job shipped to a namespace of the test API server in which
// user keyship has the Role for secrets.
type kubeJob struct {
	*job
	cluster    *kubetest.Cluster
	ns         string
	kubeconfig string
}

func newKubeJob(t *testing.T) *kubeJob {
	t.Helper()
	c := kubetest.Start(t)
	ns := c.Namespace(t, "ship")
	c.GrantSecrets(t, ns, "keyship")
	return &kubeJob{job: newJob(t), cluster: c, ns: ns, kubeconfig: c.Kubeconfig(t, "keyship", ns)}
}

// shipKube runs keyship ship --emit kubernetes --k8s-apply for spec with
// the kubeconfig in $KUBECONFIG, as a user would.
func (j *kubeJob) shipKube(t *testing.T, specPath string, extra ...string) result {
	t.Helper()
	t.Setenv("KUBECONFIG", j.kubeconfig)
	return j.ship(t, specPath, append([]string{"--emit", "kubernetes", "--k8s-apply", "--hosts", "node1.example.com"}, extra...)...)
}

func (j *kubeJob) secret(t *testing.T, name string) *corev1.Secret {
	t.Helper()
	s, err := j.cluster.Core(t).Secrets(j.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read back Secret %s/%s: %v", j.ns, name, err)
	}
	return s
}

var appliedLine = regexp.MustCompile(`# applied Secret (\S+)/(\S+) \(resourceVersion (\d+),`)

func applied(t *testing.T, r result) (ns, name, rv string) {
	t.Helper()
	m := appliedLine.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no 'applied Secret' line:\n%s", r.stdout)
	}
	return m[1], m[2], m[3]
}

func TestKubernetesSecretApplied(t *testing.T) {
	j := newKubeJob(t)
	specPath := j.spec(t, nil)
	r := j.shipKube(t, specPath)
	if r.code != 0 {
		t.Fatalf("ship --emit kubernetes --k8s-apply: exit %d: %s", r.code, r.stderr)
	}
	assertNoCanary(t, r)
	ns, name, rv := applied(t, r)
	if ns != j.ns {
		t.Errorf("applied in namespace %q, want the kubeconfig context's %q", ns, j.ns)
	}
	s := j.secret(t, name)
	if s.Type != corev1.SecretTypeOpaque || s.Labels[kube.LabelManagedBy] != "keyship" || s.Labels[kube.LabelJob] == "" || s.Annotations[kube.AnnotationVersionPrefix+"keystore.jks"] == "" {
		t.Errorf("Secret type %s, labels %v, annotations %v", s.Type, s.Labels, s.Annotations)
	}

	// The manifest is in the sandbox, 0600, and is what was applied.
	mf := filepath.Join(j.sandbox, "kubernetes-secret.yaml")
	st, err := os.Stat(mf)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("manifest %s: %v, mode %v", mf, err, st.Mode().Perm())
	}
	data, _ := os.ReadFile(mf)
	var fromFile corev1.Secret
	if err := yaml.UnmarshalStrict(data, &fromFile); err != nil {
		t.Fatal(err)
	}
	if string(fromFile.Data["keystore.jks"]) != string(s.Data["keystore.jks"]) || fromFile.Namespace != j.ns {
		t.Error("the manifest file is not the applied Secret")
	}

	// Read back, the keystore opens with keytool and serves TLS for the
	// job's host with JSSE, trusted through the Secret's truststore.
	ksFile := filepath.Join(t.TempDir(), "keystore.jks")
	if err := os.WriteFile(ksFile, s.Data["keystore.jks"], 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := jssetest.Keytool(t, "-list", "-keystore", ksFile, "-storepass", string(s.Data["keystore.password"]))
	if err != nil || strings.Count(out, "PrivateKeyEntry") != 1 {
		t.Fatalf("keytool -list on the applied keystore: %v, %d PrivateKeyEntry", err, strings.Count(out, "PrivateKeyEntry"))
	}
	if err := jssetest.Handshake(t, s.Data["keystore.jks"], "JKS", s.Data["keystore.password"], s.Data["key.password"],
		s.Data["truststore.jks"], s.Data["truststore.password"], "node1.example.com", "TLSv1.2"); err != nil {
		t.Fatalf("JSSE handshake with the applied stores: %v", err)
	}

	// The same inputs again change nothing.
	r2 := j.shipKube(t, specPath)
	if r2.code != 0 {
		t.Fatalf("second ship: exit %d: %s", r2.code, r2.stderr)
	}
	_, _, rv2 := applied(t, r2)
	if got := j.secret(t, name).ResourceVersion; rv2 != rv || got != rv {
		t.Errorf("a second ship with the same inputs changed the Secret: resourceVersion %s, then %s (server %s)", rv, rv2, got)
	}
}

// TestSparkOnKubernetesSettings checks the printed Spark properties against
// Spark's source (Spark 3.5 and 4.0): resource-managers/kubernetes/core/src/
// main/scala/org/apache/spark/deploy/k8s/Config.scala defines
// KUBERNETES_DRIVER_SECRETS_PREFIX "spark.kubernetes.driver.secrets.",
// KUBERNETES_EXECUTOR_SECRETS_PREFIX "spark.kubernetes.executor.secrets.",
// KUBERNETES_DRIVER_SECRET_KEY_REF_PREFIX "spark.kubernetes.driver.secretKeyRef."
// and KUBERNETES_EXECUTOR_SECRET_KEY_REF_PREFIX
// "spark.kubernetes.executor.secretKeyRef."; the secret's name follows the
// prefix and the value is the mount path (MountSecretsFeatureStep), or
// "name:key" split at ':' into exactly two parts (EnvSecretsFeatureStep,
// "SecretKeyRef must be in the form name:key."). core/src/main/scala/org/
// apache/spark/SSLOptions.scala reads spark.ssl.keyStore, keyStoreType,
// keyStorePassword, keyPassword, trustStore, trustStoreType,
// trustStorePassword, the passwords with getWithSubstitution (${env:...}).
func TestSparkOnKubernetesSettings(t *testing.T) {
	j := newKubeJob(t)
	r := j.shipKube(t, j.spec(t, nil), "--k8s-mount-path", "/opt/spark/tls")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	assertNoCanary(t, r)
	_, name, _ := applied(t, r)
	s := j.secret(t, name)
	props := map[string]string{}
	for _, line := range strings.Split(r.stdout, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			props[k] = v
		}
	}
	for _, task := range []string{"driver", "executor"} {
		if got := props["spark.kubernetes."+task+".secrets."+name]; got != "/opt/spark/tls" {
			t.Errorf("spark.kubernetes.%s.secrets.%s = %q, want the mount path", task, name, got)
		}
		for env, key := range map[string]string{"KEYSHIP_KEYSTORE_PASSWORD": "keystore.password", "KEYSHIP_KEY_PASSWORD": "key.password", "KEYSHIP_TRUSTSTORE_PASSWORD": "truststore.password"} {
			ref := props["spark.kubernetes."+task+".secretKeyRef."+env]
			parts := strings.Split(ref, ":")
			if len(parts) != 2 || parts[0] != name || parts[1] != key {
				t.Errorf("spark.kubernetes.%s.secretKeyRef.%s = %q, want %s:%s", task, env, ref, name, key)
			} else if _, ok := s.Data[parts[1]]; !ok {
				t.Errorf("secretKeyRef %s names no key of the applied Secret", ref)
			}
		}
	}
	for setting, key := range map[string]string{"spark.ssl.keyStore": "keystore.jks", "spark.ssl.trustStore": "truststore.jks"} {
		dir, file := filepath.Split(props[setting])
		if dir != "/opt/spark/tls/" || s.Data[file] == nil || s.Data[key] == nil || file != key {
			t.Errorf("%s = %q: not a key of the applied Secret under the mount path", setting, props[setting])
		}
	}
	if props["spark.ssl.keyStorePassword"] != "${env:KEYSHIP_KEYSTORE_PASSWORD}" || props["spark.ssl.trustStorePassword"] != "${env:KEYSHIP_TRUSTSTORE_PASSWORD}" {
		t.Errorf("password settings %q, %q: want ${env:...} of the secretKeyRef variables", props["spark.ssl.keyStorePassword"], props["spark.ssl.trustStorePassword"])
	}
}

// TestFlinkNativeKubernetesSettings checks the printed Flink configuration
// against Flink's source (Flink 1.13 to 2.1): flink-kubernetes/src/main/java/
// org/apache/flink/kubernetes/configuration/KubernetesConfigOptions.java
// defines kubernetes.secrets, a map "foo:/opt/secrets-foo,bar:/opt/secrets-bar"
// (secret name to mount path), and kubernetes.env.secretKeyRef, a list of
// maps "env:FOO_ENV,secret:foo_secret,key:foo_key;env:...". flink-core's
// SecurityOptions defines security.ssl.internal.* and security.ssl.rest.*
// (keystore, truststore, keystore-type, ..., the passwords). The passwords
// are not printed: the Secret's flink-ssl.yaml carries them.
func TestFlinkNativeKubernetesSettings(t *testing.T) {
	j := newKubeJob(t)
	conf := writeFlinkConf(t, j.dir)
	r := j.shipKube(t, conf)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	assertNoCanary(t, r)
	_, name, _ := applied(t, r)
	s := j.secret(t, name)
	var settings map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &settings); err != nil {
		t.Fatalf("stdout is not YAML: %v\n%s", err, r.stdout)
	}
	secrets, _ := settings["kubernetes.secrets"].(string)
	secretName, mount, ok := strings.Cut(secrets, ":")
	if !ok || secretName != name || mount != kube.DefaultMountPath {
		t.Fatalf("kubernetes.secrets = %q, want %s:%s", secrets, name, kube.DefaultMountPath)
	}
	refs, _ := settings["kubernetes.env.secretKeyRef"].(string)
	envs := map[string]bool{}
	for _, ref := range strings.Split(refs, ";") {
		m := map[string]string{}
		for _, kv := range strings.Split(ref, ",") {
			k, v, _ := strings.Cut(kv, ":")
			m[k] = v
		}
		if m["secret"] != name || s.Data[m["key"]] == nil || m["env"] == "" {
			t.Errorf("kubernetes.env.secretKeyRef entry %q names no key of the applied Secret", ref)
		}
		envs[m["env"]] = true
	}
	if len(envs) != 3 {
		t.Errorf("kubernetes.env.secretKeyRef = %q: want the three password variables", refs)
	}
	for _, ep := range []string{"internal", "rest"} {
		ks, _ := settings["security.ssl."+ep+".keystore"].(string)
		if filepath.Dir(ks) != mount || s.Data[filepath.Base(ks)] == nil {
			t.Errorf("security.ssl.%s.keystore = %q: not a key of the applied Secret under %s", ep, ks, mount)
		}
		if _, printed := settings["security.ssl."+ep+".keystore-password"]; printed {
			t.Errorf("security.ssl.%s.keystore-password was printed", ep)
		}
	}
	var frag map[string]any
	if err := yaml.Unmarshal(s.Data["flink-ssl.yaml"], &frag); err != nil || frag["security.ssl.internal.keystore-password"] != canary {
		t.Errorf("the Secret's flink-ssl.yaml does not carry the keystore password (%v)", err)
	}
	if !strings.Contains(r.stdout, filepath.Join(mount, "flink-ssl.yaml")) {
		t.Errorf("stdout does not say where the passwords are:\n%s", r.stdout)
	}
}

// TestKubernetesManifestNeverPrinted is the canary test of the Kubernetes
// target: with trace logging, applied or not, failing or not, no output of
// the CLI holds the keystore password, which the manifest does.
func TestKubernetesManifestNeverPrinted(t *testing.T) {
	j := newKubeJob(t)
	specPath := j.spec(t, nil)
	for _, args := range [][]string{
		nil,
		{"--k8s-namespace", "forbidden-ns"}, // applying fails: no Role there
		{"--k8s-operator", "spark-operator"},
	} {
		r := j.shipKube(t, specPath, args...)
		assertNoCanary(t, r)
		if strings.Contains(r.stdout, "data:") || strings.Contains(r.stderr, "data:") {
			t.Errorf("%v: a manifest reached the output", args)
		}
		if len(args) == 2 && args[0] == "--k8s-namespace" && (r.code == 0 || !strings.Contains(r.stderr, `namespace "forbidden-ns"`)) {
			t.Errorf("ship into a namespace without a Role: exit %d, stderr %q", r.code, r.stderr)
		}
	}
	data, _ := os.ReadFile(filepath.Join(j.sandbox, "kubernetes-secret.yaml"))
	if !strings.Contains(string(data), "data:") {
		t.Fatal("the positive control failed: the manifest file has no data")
	}
}
