package vault_test

import (
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/keyship/keyship/plugin"
)

// TestPKIKeystoreJSSEHandshake issues a per-host certificate from the real
// Vault PKI engine, makes a PKCS12 keystore and truststore of it, and has
// Java 17's JSSE verify the handshake by host name: the hosts the
// certificate was issued for are accepted, any other is rejected.
func TestPKIKeystoreJSSEHandshake(t *testing.T) {
	t.Parallel()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("no java on PATH: the JSSE handshake check needs Java 17")
	}
	s := sharedServer(t)
	pkiRole(t, s.Client(t), "pki-jsse")
	b := configured(t, rootConfig(t, s))
	hosts := []string{"exec-1.example.test", "exec-2.example.test"}
	got, err := b.Issue(context.Background(), plugin.IssueRequest{Path: "pki-jsse/issue/spark-node", DNSNames: hosts, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParsePKCS8PrivateKey(got.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	clear(got.PrivateKey)
	var chain, cas []*x509.Certificate
	for _, der := range got.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	for _, der := range got.CACertificates {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		cas = append(cas, c)
	}
	const password = "changeit-jsse"
	ks, err := pkcs12.Modern2023.Encode(key, chain[0], chain[1:], password)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := pkcs12.Modern2023.EncodeTrustStore(cas, password)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ksPath, tsPath := filepath.Join(dir, "keystore.p12"), filepath.Join(dir, "truststore.p12")
	if err := os.WriteFile(ksPath, ks, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tsPath, ts, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	src, err := filepath.Abs(filepath.Join("testdata", "Handshake.java"))
	if err != nil {
		t.Fatal(err)
	}
	outside := "driver.other.test"
	out, err := exec.CommandContext(ctx, java, src, ksPath, tsPath, password, hosts[0], hosts[1], outside).CombinedOutput()
	if err != nil {
		t.Fatalf("java Handshake: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := map[string]string{hosts[0]: "OK", hosts[1]: "OK", outside: "FAIL"}
	for _, line := range lines {
		verdict, rest, _ := strings.Cut(line, " ")
		host, _, _ := strings.Cut(rest, ":")
		if w, ok := want[host]; ok {
			if verdict != w {
				t.Errorf("JSSE handshake for %s: %s, want %s", host, line, w)
			}
			delete(want, host)
		}
	}
	if len(want) != 0 {
		t.Errorf("no JSSE verdict for %v in:\n%s", want, out)
	}
	if !strings.Contains(string(out), "No subject alternative DNS name matching "+outside) {
		t.Errorf("the outside host was not rejected for its name:\n%s", out)
	}
}
