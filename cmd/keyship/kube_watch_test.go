package main_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	corev1 "k8s.io/api/core/v1"

	"github.com/keyship/keyship/backends/vault/vaulttest"
	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize/jssetest"
	"github.com/keyship/keyship/host/materialize/testca"
)

// vaultKubeSpec keeps a JKS keystore, its passwords and a truststore in one
// Vault KV v2 secret; every rotation writes a new version of it.
const vaultKubeSpec = `{"security": {"tls": {"enabled": true,
  "keystore_secret": "vault:secret/spark/tls#keystore:base64",
  "keystore_password": "vault:secret/spark/tls#keystore_password",
  "key_password": "vault:secret/spark/tls#key_password",
  "truststore_secret": "vault:secret/spark/tls#truststore:base64",
  "truststore_password": "vault:secret/spark/tls#truststore_password",
  "ca_bundle_secret": "vault:secret/spark/tls#truststore:base64",
  "protocol": "TLSv1.2"}}}`

// secretSerial is the serial of the leaf certificate in s's keystore.jks,
// opened with s's keystore.password; "" when it does not open.
func secretSerial(s *corev1.Secret) string {
	st, err := keystore.OpenJKS(s.Data["keystore.jks"], s.Data["keystore.password"])
	if err != nil || len(st.Keys) != 1 || len(st.Keys[0].Chain) == 0 {
		return ""
	}
	defer st.Zero()
	return st.Keys[0].Chain[0].SerialNumber.Text(16)
}

// TestKubernetesRotation: keyship ship --emit kubernetes --k8s-apply
// --watch --refresh 1s with the real vault plugin against a real Vault and
// a real API server: a keystore rotated in Vault KV v2 (a new version with
// a new certificate and passwords) reaches the Secret, read back through
// the API, within two refresh intervals, with the new certificate's
// serial; --on-change runs once with the Secret and its manifest in its
// environment; a rotation that fails the checks leaves the Secret as it is
// (same resourceVersion); SIGTERM ends it with exit 0 and the Secret in
// place.
func TestKubernetesRotation(t *testing.T) {
	j := newKubeJob(t)
	v := vaulttest.Start(t, vaulttest.Options{})
	root := v.Client(t)
	ca, err := testca.NewCA("keyship kube rotation CA")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := keystore.JKSTruststore(keystore.AliasCertificates([]*x509.Certificate{ca.Cert}), []byte("trust-pass-1"))
	if err != nil {
		t.Fatal(err)
	}
	// rotate writes a new version of the secret: a keystore for the job's
	// host with a new key and certificate, opened by storePass, whose
	// keystore_password field says fieldPass; it returns the leaf's serial.
	rotate := func(storePass, fieldPass string) string {
		t.Helper()
		leaf, err := ca.Issue("node1.example.com", testca.WithDNS("node1.example.com"))
		if err != nil {
			t.Fatal(err)
		}
		ks, err := keystore.JKSKeystore("node", leaf.Key, leaf.Chain, []byte(storePass), []byte(storePass+"-key"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := root.KVv2("secret").Put(context.Background(), "spark/tls", map[string]any{
			"keystore": base64.StdEncoding.EncodeToString(ks), "keystore_password": fieldPass, "key_password": storePass + "-key",
			"truststore": base64.StdEncoding.EncodeToString(ts), "truststore_password": "trust-pass-1",
		}); err != nil {
			t.Fatal(err)
		}
		return leaf.Chain[0].SerialNumber.Text(16)
	}
	first := rotate(canary+"-v1", canary+"-v1")

	tokenFile := filepath.Join(j.dir, "vault-token")
	if err := os.WriteFile(tokenFile, []byte(v.RootToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("plugin_dir: %s\nbackends:\n  vault:\n    plugin: keyship-backend-vault\n    config:\n      address: %s\n      kv_mounts: secret=2\n      auth:\n        token_file: %s\n",
		binDir, v.Addr, tokenFile)
	if err := os.WriteFile(j.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(j.dir, "job.json")
	if err := os.WriteFile(specPath, []byte(vaultKubeSpec), 0o600); err != nil {
		t.Fatal(err)
	}

	const refresh = time.Second
	onChange := filepath.Join(j.dir, "on-change.log")
	cmd := exec.Command(filepath.Join(binDir, "keyship"), "ship", "--config", j.config, "--spec", specPath, "--sandbox", j.sandbox,
		"--emit", "kubernetes", "--k8s-apply", "--hosts", "node1.example.com", "--watch", "--refresh", refresh.String(), "--log-level", "info",
		"--on-change", `echo "$KEYSHIP_REASON $KEYSHIP_K8S_SECRET $KEYSHIP_K8S_MANIFEST" >> `+onChange)
	cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=", "VAULT_TOKEN=", "VAULT_ADDR=", "KUBECONFIG="+j.kubeconfig)
	stdout, stderr, done := startWatch(t, cmd)
	wait := func(within time.Duration, what string, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("keyship exited (%v) waiting for %s\n%s\n%s", err, what, stdout.String(), stderr.String())
			default:
			}
			if time.Since(start) > within {
				t.Fatalf("no %s within %s\n%s\n%s", what, within, stdout.String(), stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	wait(time.Minute, "first apply", func() bool { return strings.Contains(stdout.String(), "spark.ssl.protocol=") })
	ns, name, rv := applied(t, result{stdout: stdout.String()})
	if ns != j.ns {
		t.Errorf("applied in namespace %q, want %q", ns, j.ns)
	}
	for _, want := range []string{"applies each new set to Secret " + ns + "/" + name + " in place", "kubelet refreshes",
		"a subPath mount never sees an updated Secret", "refresh every 1s"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if got := secretSerial(j.secret(t, name)); got != first {
		t.Fatalf("the applied keystore has serial %q, Vault holds %s", got, first)
	}

	// A rotation whose keystore_password does not open the keystore fails
	// the checks: the Secret stays as it is.
	rotate(canary+"-v2", canary+"-wrong")
	wait(4*refresh, "a failed refresh", func() bool { return strings.Contains(stderr.String(), "refresh failed; the stores in place stay") })
	if s := j.secret(t, name); s.ResourceVersion != rv || secretSerial(s) != first {
		t.Fatalf("a rotation that fails the checks changed the Secret (resourceVersion %s -> %s)", rv, s.ResourceVersion)
	}
	if _, err := os.Stat(onChange); err == nil {
		t.Fatal("--on-change ran after a failed refresh")
	}

	// A good rotation reaches the Secret within two refresh intervals.
	serial := rotate(canary+"-v3", canary+"-v3")
	took := wait(2*refresh, "the rotated keystore in the Secret", func() bool { return secretSerial(j.secret(t, name)) == serial })
	t.Logf("the rotated keystore (serial %s) reached Secret %s/%s in %s (refresh %s)", serial, ns, name, took.Round(time.Millisecond), refresh)
	s := j.secret(t, name)
	if s.ResourceVersion == rv {
		t.Error("the Secret changed without a new resourceVersion")
	}
	wait(2*refresh, "--on-change", func() bool { b, _ := os.ReadFile(onChange); return len(b) > 0 })
	manifest := filepath.Join(j.sandbox, "kubernetes-secret.yaml")
	if b, _ := os.ReadFile(onChange); string(b) != "changed "+ns+"/"+name+" "+manifest+"\n" {
		t.Errorf("--on-change wrote %q", b)
	}
	if !strings.Contains(stdout.String(), "keyship applied new stores to Secret "+ns+"/"+name) {
		t.Errorf("the apply is not reported on stdout:\n%s", stdout.String())
	}
	// The manifest file is the applied Secret.
	data, _ := os.ReadFile(manifest)
	var fromFile corev1.Secret
	if err := yaml.UnmarshalStrict(data, &fromFile); err != nil {
		t.Fatal(err)
	}
	if string(fromFile.Data["keystore.jks"]) != string(s.Data["keystore.jks"]) {
		t.Error("the manifest file is not the applied Secret")
	}
	// keytool opens the applied keystore and shows the new serial.
	ksFile := filepath.Join(t.TempDir(), "keystore.jks")
	if err := os.WriteFile(ksFile, s.Data["keystore.jks"], 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := jssetest.Keytool(t, "-list", "-v", "-keystore", ksFile, "-storepass", string(s.Data["keystore.password"]))
	if err != nil || !strings.Contains(strings.ToLower(out), "serial number: "+serial) {
		t.Errorf("keytool -list -v on the applied keystore: %v; want serial %s", err, serial)
	}

	stopWatch(t, cmd, done, stderr)
	if got := j.secret(t, name); got.ResourceVersion != s.ResourceVersion {
		t.Error("the Secret changed when the watch stopped")
	}
	for _, secret := range []string{canary, v.RootToken} {
		if strings.Contains(stdout.String(), secret) || strings.Contains(stderr.String(), secret) {
			t.Fatal("a password or the Vault token appeared in keyship's output")
		}
	}
}
