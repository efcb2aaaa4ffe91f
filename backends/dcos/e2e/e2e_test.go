// Package e2e_test runs the DC/OS backend end to end: seed 000's
// security.tls JSON with every ref in the dcostest server, shipped by the
// real keyship CLI through the real keyship-backend-dcos plugin, and the
// stores checked by keytool and a JSSE handshake; and a per-host certificate
// from the DC/OS CA used by the same JSSE handshake.
package e2e_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyship/keyship/backends/dcos/dcostest"
	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/host/materialize/jssetest"
	"github.com/keyship/keyship/plugin/plugintest"
)

// binDir holds keyship and keyship-backend-dcos, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, cleanup := plugintest.Build("github.com/keyship/keyship/cmd/keyship", "github.com/keyship/keyship/cmd/keyship-backend-dcos", "github.com/keyship/keyship/cmd/keyship-backend-file")
	binDir = dir
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// canary is the keystore password: it must appear in no output.
const canary = "canary-DCOS-pw-51c7e2a9"

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShipSeed000FromDCOS(t *testing.T) {
	jssetest.Require(t, "keytool")
	dir := t.TempDir()

	// Seed 000's stores and passwords, made for a node reachable as localhost,
	// moved into the DC/OS secret store: stores as binary secrets (dcos
	// security secrets create --file), passwords as text (--value).
	root := filepath.Join(dir, "made")
	job := filetest.Seed(t, root, canary, "localhost", "node1.example.com")
	srv := dcostest.New(t)
	for _, name := range []string{"keystore", "truststore", "ca_bundle_truststore"} {
		data, err := os.ReadFile(filepath.Join(root, "spark", name))
		if err != nil {
			t.Fatal(err)
		}
		srv.PutBinary("/spark/"+name, data)
	}
	srv.PutText("/spark/keystore_password", job.StorePassword)
	srv.PutText("/spark/key_password", job.KeyPassword)
	srv.PutText("/spark/truststore_password", job.TrustPassword)
	sa := writeFile(t, dir, "sa.json", srv.NewServiceAccount(t, "spark-dispatcher"))
	for _, p := range []string{"keystore", "keystore_password", "key_password", "truststore", "truststore_password", "ca_bundle_truststore"} {
		srv.Grant("spark-dispatcher", "dcos:secrets:default:/spark/"+p, "read")
	}

	cfg := fmt.Sprintf(`default_backend: dcos
plugin_dir: %s
backends:
  dcos:
    plugin: keyship-backend-dcos
    config:
      url: %s
      ca_file: %s
      auth.method: service_account
      auth.service_account_file: %s
`, binDir, srv.URL, srv.WriteCAFile(t), sa)
	config := writeFile(t, dir, "keyship.yaml", []byte(cfg))
	spec := writeFile(t, dir, "job.json", []byte(filetest.Spec))
	sandbox := filepath.Join(dir, "sandbox")

	cmd := exec.Command(filepath.Join(binDir, "keyship"), "ship", "--config", config, "--spec", spec, "--sandbox", sandbox, "--log-level", "trace")
	cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=", "KEYSHIP_PLUGIN_LOG_LEVEL=trace")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("keyship ship: %v\n%s", err, stderr.String())
	}
	for _, secret := range append([]string{canary}, srv.IssuedTokens()...) {
		if strings.Contains(stdout.String(), secret) || strings.Contains(stderr.String(), secret) {
			t.Fatal("a password or auth token appeared in keyship's output")
		}
	}
	if !strings.Contains(stderr.String(), "logged in to DC/OS") {
		t.Errorf("the plugin's log did not reach keyship's (trace) log:\n%s", stderr.String())
	}
	if n := srv.Logins("spark-dispatcher"); n != 1 {
		t.Errorf("%d logins for one ship, want 1", n)
	}
	for _, p := range []string{"keystore", "keystore_password", "key_password", "truststore", "truststore_password", "ca_bundle_truststore"} {
		if n := srv.Requests("GET /secrets/v1/secret/default/spark/" + p); n != 1 {
			t.Errorf("/spark/%s read %d times, want once", p, n)
		}
	}

	ks := filepath.Join(sandbox, "keystore.jks")
	out, err := jssetest.Keytool(t, "-list", "-keystore", ks, "-storepass", canary)
	if err != nil || strings.Count(out, "PrivateKeyEntry") != 1 {
		t.Fatalf("keytool -list of the shipped keystore: %v, %d PrivateKeyEntry", err, strings.Count(out, "PrivateKeyEntry"))
	}
	st := readSandbox(t, sandbox)
	if err := st.handshake(t, "localhost"); err != nil {
		t.Fatalf("JSSE handshake with the shipped stores, as localhost: %v", err)
	}
	// The positive control: verification is on, so a name the certificate
	// does not cover fails.
	if err := st.handshake(t, "elsewhere.example.com"); err == nil {
		t.Fatal("JSSE accepted the certificate for a host it does not cover")
	}
}

// stores are a shipped sandbox's keystore, truststore and passwords.
type stores struct{ ks, ts, storePass, keyPass, trustPass []byte }

func readSandbox(t *testing.T, dir string) stores {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return stores{read("keystore.jks"), read("truststore.jks"), read("keystore.password"), read("key.password"), read("truststore.password")}
}

// handshake runs a JSSE server with the keystore and a client with the
// truststore that verifies the server as host.
func (s stores) handshake(t *testing.T, host string) error {
	return jssetest.Handshake(t, s.ks, "JKS", s.storePass, s.keyPass, s.ts, s.trustPass, host, "TLSv1.2")
}

// TestIssuedCertificateJavaHandshake ships a keystore issued by the DC/OS
// CA (keystore_issue: dcos:ca) through the real keyship ship for the job's
// hosts, and has JSSE verify it by each name.
func TestIssuedCertificateJavaHandshake(t *testing.T) {
	jssetest.Require(t, "java")
	dir := t.TempDir()
	srv := dcostest.New(t)
	sa := writeFile(t, dir, "sa.json", srv.NewServiceAccount(t, "flink"))
	srv.Grant("flink", "dcos:adminrouter:ops:ca:rw", "full")
	cfg := fmt.Sprintf("plugin_dir: %s\nbackends:\n  dcos:\n    plugin: keyship-backend-dcos\n    config:\n      url: %s\n      ca_file: %s\n      auth:\n        method: service_account\n        service_account_file: %s\n",
		binDir, srv.URL, srv.WriteCAFile(t), sa)
	config := writeFile(t, dir, "keyship.yaml", []byte(cfg))
	spec := writeFile(t, dir, "job.json", []byte(`{"security": {"tls": {"enabled": true, "keystore_issue": "dcos:ca"}}}`))
	sandbox := filepath.Join(dir, "sandbox")
	cmd := exec.Command(filepath.Join(binDir, "keyship"), "ship", "--config", config, "--spec", spec, "--sandbox", sandbox, "--hosts", "localhost,tm-1.example.com")
	cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("keyship ship with a DC/OS-issued keystore: %v\n%s", err, out)
	}
	st := readSandbox(t, sandbox)
	for host, want := range map[string]bool{"localhost": true, "tm-1.example.com": true, "tm-2.example.com": false} {
		if err := st.handshake(t, host); (err == nil) != want {
			t.Errorf("JSSE handshake verifying the issued certificate as %s: %v (want success %v)", host, err, want)
		}
	}
}
