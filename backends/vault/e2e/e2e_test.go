// Package e2e_test runs the Vault backend end to end against a real Vault
// dev server: seed 000's security.tls JSON with every ref in Vault KV v2,
// shipped by the real keyship CLI through the real keyship-backend-vault
// plugin, the stores checked by keytool and a JSSE handshake; and a per-host
// keystore issued by Vault's PKI engine through the host pipeline, accepted
// by JSSE for the hosts it was issued for and rejected for any other.
package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/backends/vault/vaulttest"
	"github.com/keyship/keyship/host/materialize/jssetest"
	"github.com/keyship/keyship/plugin/plugintest"
)

// binDir holds keyship and keyship-backend-vault, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, cleanup := plugintest.Build("github.com/keyship/keyship/cmd/keyship", "github.com/keyship/keyship/cmd/keyship-backend-vault")
	binDir = dir
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// canary is the keystore password: it must appear in no output.
const canary = "canary-VAULT-pw-7d2e91c4"

// spec000 is seed 000's security.tls JSON with every ref in Vault: one KV v2
// secret whose binary fields are base64, decoded by the ":base64" suffix.
const spec000 = `{"security": {"tls": {
  "enabled": true,
  "keystore_secret": "vault:secret/spark/tls#keystore:base64",
  "keystore_password": "vault:secret/spark/tls#keystore_password",
  "key_password": "vault:secret/spark/tls#key_password",
  "truststore_secret": "vault:secret/spark/tls#truststore:base64",
  "truststore_password": "vault:secret/spark/tls#truststore_password",
  "ca_bundle_secret": "vault:secret/spark/tls#ca_bundle_truststore:base64",
  "protocol": "TLSv1.2"}}}`

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// auditRequests counts the audited requests to Vault path p.
func auditRequests(t *testing.T, auditLog, p string) int {
	t.Helper()
	f, err := os.Open(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e struct {
			Type    string `json:"type"`
			Request struct {
				Path      string `json:"path"`
				Operation string `json:"operation"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type == "request" && e.Request.Path == p && e.Request.Operation == "read" {
			n++
		}
	}
	return n
}

func TestShipSeed000FromVault(t *testing.T) {
	jssetest.Require(t, "keytool")
	dir := t.TempDir()
	s := vaulttest.Start(t, vaulttest.Options{})
	root := s.Client(t)
	auditLog := filepath.Join(dir, "audit.log")
	if err := root.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": auditLog}}); err != nil {
		t.Fatal(err)
	}

	// Seed 000's stores and passwords, for a node reachable as localhost,
	// kept in one Vault KV v2 secret: stores as base64, passwords as text.
	made := filepath.Join(dir, "made")
	job := filetest.Seed(t, made, canary, "localhost", "node1.example.com")
	fields := map[string]any{
		"keystore_password": job.StorePassword, "key_password": job.KeyPassword, "truststore_password": job.TrustPassword,
	}
	for _, name := range []string{"keystore", "truststore", "ca_bundle_truststore"} {
		data, err := os.ReadFile(filepath.Join(made, "spark", name))
		if err != nil {
			t.Fatal(err)
		}
		fields[name] = base64.StdEncoding.EncodeToString(data)
	}
	if _, err := root.KVv2("secret").Put(context.Background(), "spark/tls", fields); err != nil {
		t.Fatal(err)
	}
	// The dispatcher's token may read that one secret, nothing else.
	if err := root.Sys().PutPolicy("spark-dispatcher", `path "secret/data/spark/tls" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"spark-dispatcher"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	token := tok.Auth.ClientToken
	tokenFile := writeFile(t, dir, "vault-token", []byte(token+"\n"))

	cfg := fmt.Sprintf(`plugin_dir: %s
backends:
  vault:
    plugin: keyship-backend-vault
    config:
      address: %s
      auth:
        method: token
        token_file: %s
`, binDir, s.Addr, tokenFile)
	config := writeFile(t, dir, "keyship.yaml", []byte(cfg))
	specFile := writeFile(t, dir, "job.json", []byte(spec000))
	sandbox := filepath.Join(dir, "sandbox")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "keyship"), "ship", "--config", config, "--spec", specFile, "--sandbox", sandbox, "--log-level", "trace")
	cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=", "KEYSHIP_PLUGIN_LOG_LEVEL=trace", "VAULT_TOKEN=", "VAULT_ADDR=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("keyship ship: %v\n%s", err, strings.ReplaceAll(stderr.String(), token, "[token]"))
	}
	for _, secret := range []string{canary, token, s.RootToken} {
		if strings.Contains(stdout.String(), secret) || strings.Contains(stderr.String(), secret) {
			t.Fatal("a password or Vault token appeared in keyship's output")
		}
	}
	if !strings.Contains(stderr.String(), "logged in to Vault") {
		t.Errorf("the plugin's log did not reach keyship's (trace) log")
	}
	// Six refs, one secret: one read.
	if n := auditRequests(t, auditLog, "secret/data/spark/tls"); n != 1 {
		t.Errorf("secret/data/spark/tls read %d times for one ship, want 1", n)
	}

	// Each file as keyship wrote it: a store is binary (trimming a
	// trailing '\n' cut one in 256 keystores short, which Java read as
	// java.io.EOFException), and a password file holds the password alone.
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(sandbox, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ks := filepath.Join(sandbox, "keystore.jks")
	out, err := jssetest.Keytool(t, "-list", "-keystore", ks, "-storepass", canary)
	if err != nil || strings.Count(out, "PrivateKeyEntry") != 1 {
		t.Fatalf("keytool -list of the shipped keystore: %v, %d PrivateKeyEntry", err, strings.Count(out, "PrivateKeyEntry"))
	}
	ksData, tsData := read("keystore.jks"), read("truststore.jks")
	storePass, keyPass, trustPass := read("keystore.password"), read("key.password"), read("truststore.password")
	if err := jssetest.Handshake(t, ksData, "JKS", storePass, keyPass, tsData, trustPass, "localhost", "TLSv1.2"); err != nil {
		t.Fatalf("JSSE handshake with the stores shipped from Vault, as localhost: %v", err)
	}
	// The positive control: a name the certificate does not cover fails.
	if err := jssetest.Handshake(t, ksData, "JKS", storePass, keyPass, tsData, trustPass, "elsewhere.example.com", "TLSv1.2"); err == nil {
		t.Fatal("JSSE accepted the certificate for a host it does not cover")
	}
}

// TestPKIIssuedKeystoreJSSE ships a per-host keystore issued by Vault's PKI
// engine through the real keyship ship (a spec whose keystore_issue names
// the PKI role, --hosts the job's hosts, the vault plugin subprocess) and
// has JSSE verify it by each host name: the job's hosts are accepted, any
// other is rejected.
func TestPKIIssuedKeystoreJSSE(t *testing.T) {
	jssetest.Require(t, "java")
	s := vaulttest.Start(t, vaulttest.Options{})
	root := s.Client(t)
	if err := root.Sys().Mount("pki", &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "48h"}}); err != nil {
		t.Fatal(err)
	}
	for path, body := range map[string]map[string]any{
		"pki/root/generate/internal": {"common_name": "keyship e2e root", "ttl": "24h", "key_type": "ec", "key_bits": 256},
		"pki/roles/spark-node": {"allowed_domains": "localhost,example.test", "allow_bare_domains": true, "allow_subdomains": true,
			"allow_localhost": true, "key_type": "ec", "key_bits": 256, "max_ttl": "2h"},
	} {
		if _, err := root.Logical().Write(path, body); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("plugin_dir: %s\nbackends:\n  vault:\n    plugin: keyship-backend-vault\n    config:\n      address: %s\n      auth:\n        token_file: %s\n",
		binDir, s.Addr, writeFile(t, dir, "token", []byte(s.RootToken)))
	config := writeFile(t, dir, "keyship.yaml", []byte(cfg))
	specFile := writeFile(t, dir, "job.json", []byte(`{"security": {"tls": {"enabled": true,
		"keystore_issue": "vault:pki/issue/spark-node", "keystore_issue_ttl": "1h", "protocol": "TLSv1.3"}}}`))
	sandbox := filepath.Join(dir, "sandbox")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "keyship"), "ship", "--config", config, "--spec", specFile,
		"--sandbox", sandbox, "--hosts", "localhost,exec-1.example.test")
	cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=", "VAULT_TOKEN=", "VAULT_ADDR=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("keyship ship with a Vault-issued keystore: %v\n%s", err, strings.ReplaceAll(string(out), s.RootToken, "[token]"))
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(sandbox, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ks, ts := read("keystore.jks"), read("truststore.jks")
	storePass, keyPass, trustPass := read("keystore.password"), read("key.password"), read("truststore.password")
	for host, want := range map[string]bool{"localhost": true, "exec-1.example.test": true, "exec-2.example.test": false} {
		err := jssetest.Handshake(t, ks, "JKS", storePass, keyPass, ts, trustPass, host, "TLSv1.3")
		if (err == nil) != want {
			t.Errorf("JSSE handshake verifying the Vault-issued certificate as %s: %v (want success %v)", host, err, want)
		}
		if !want && (err == nil || !strings.Contains(err.Error(), "No subject alternative DNS name matching")) {
			t.Errorf("%s was not rejected for its name: %v", host, err)
		}
	}
}
