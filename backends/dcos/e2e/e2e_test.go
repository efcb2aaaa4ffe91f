// Package e2e_test runs the DC/OS backend end to end: seed 000's
// security.tls JSON with every ref in the dcostest server, shipped by the
// real keyship CLI through the real keyship-backend-dcos plugin, and the
// stores checked by keytool and a JSSE handshake; and a per-host certificate
// from the DC/OS CA used by the same JSSE handshake.
package e2e_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyship/keyship/backends/dcos"
	"github.com/keyship/keyship/backends/dcos/dcostest"
	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/plugin"
)

// binDir holds keyship and keyship-backend-dcos, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyship-dcos-e2e")
	if err != nil {
		panic(err)
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/keyship/keyship/cmd/keyship", "github.com/keyship/keyship/cmd/keyship-backend-dcos")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		panic("build: " + err.Error())
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// requirePeer skips when tool is missing, or fails under
// KEYSHIP_REQUIRE_PEERS=1 (make test installs the peers first).
func requirePeer(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("KEYSHIP_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s not found and KEYSHIP_REQUIRE_PEERS=1 (run tools/install-deps.sh)", tool)
		}
		t.Skipf("%s not found; run tools/install-deps.sh", tool)
	}
	return p
}

// canary is the keystore password: it must appear in no output.
const canary = "canary-DCOS-pw-51c7e2a9"

// handshake runs testdata/Handshake.java: a JSSE server with the keystore and
// a JSSE client with the truststore that verifies the server as host.
func handshake(t *testing.T, keystore, storePassFile, keyPassFile, truststore, trustPassFile, host string) (string, bool) {
	t.Helper()
	java := requirePeer(t, "java")
	src, err := filepath.Abs(filepath.Join("testdata", "Handshake.java"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(java, src, keystore, storePassFile, keyPassFile, truststore, trustPassFile, host, "TLSv1.2").CombinedOutput()
	return string(out), err == nil && strings.HasPrefix(string(out), "handshake ok")
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShipSeed000FromDCOS(t *testing.T) {
	keytool := requirePeer(t, "keytool")
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
	ts := filepath.Join(sandbox, "truststore.jks")
	out, err := exec.Command(keytool, "-list", "-keystore", ks, "-storepass", canary).CombinedOutput()
	if err != nil || strings.Count(string(out), "PrivateKeyEntry") != 1 {
		t.Fatalf("keytool -list of the shipped keystore: %v, %d PrivateKeyEntry", err, strings.Count(string(out), "PrivateKeyEntry"))
	}
	storePass := filepath.Join(sandbox, "keystore.password")
	keyPass := filepath.Join(sandbox, "key.password")
	trustPass := filepath.Join(sandbox, "truststore.password")
	if out, ok := handshake(t, ks, storePass, keyPass, ts, trustPass, "localhost"); !ok {
		t.Fatalf("JSSE handshake with the shipped stores, as localhost: %s", out)
	}
	// The positive control: verification is on, so a name the certificate
	// does not cover fails.
	if out, ok := handshake(t, ks, storePass, keyPass, ts, trustPass, "elsewhere.example.com"); ok {
		t.Fatalf("JSSE accepted the certificate for a host it does not cover: %s", out)
	}
}

func TestIssuedCertificateJavaHandshake(t *testing.T) {
	requirePeer(t, "java")
	dir := t.TempDir()
	srv := dcostest.New(t)
	sa := writeFile(t, dir, "sa.json", srv.NewServiceAccount(t, "flink"))
	srv.Grant("flink", "dcos:adminrouter:ops:ca:rw", "full")
	b := dcos.NewWithLogger(nil)
	if err := b.Configure(context.Background(), map[string]string{
		"url": srv.URL, "ca_file": srv.WriteCAFile(t), "auth.method": "service_account", "auth.service_account_file": sa,
	}); err != nil {
		t.Fatal(err)
	}
	out, err := b.Issue(context.Background(), plugin.IssueRequest{Path: "ca", DNSNames: []string{"localhost", "tm-1.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	defer clear(out.PrivateKey)
	key, err := x509.ParsePKCS8PrivateKey(out.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	for _, der := range out.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	ca, err := x509.ParseCertificate(out.CACertificates[0])
	if err != nil {
		t.Fatal(err)
	}
	storePass, keyPass, trustPass := "store-pass-1", "key-pass-1", "trust-pass-1"
	ksData, err := materialize.JKSKeystore("node", key, chain, []byte(storePass), []byte(keyPass))
	if err != nil {
		t.Fatal(err)
	}
	tsData, err := materialize.JKSTruststore([]*x509.Certificate{ca}, []byte(trustPass))
	if err != nil {
		t.Fatal(err)
	}
	ks := writeFile(t, dir, "keystore.jks", ksData)
	ts := writeFile(t, dir, "truststore.jks", tsData)
	sp := writeFile(t, dir, "store.password", []byte(storePass))
	kp := writeFile(t, dir, "key.password", []byte(keyPass))
	tp := writeFile(t, dir, "trust.password", []byte(trustPass))
	for host, want := range map[string]bool{"localhost": true, "tm-1.example.com": true, "tm-2.example.com": false} {
		if res, ok := handshake(t, ks, sp, kp, ts, tp, host); ok != want {
			t.Errorf("JSSE handshake verifying the issued certificate as %s: %s (want success %v)", host, res, want)
		}
	}
}
