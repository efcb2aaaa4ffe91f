package materialize

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyship/keyship/host/materialize/jssetest"
)

// keytool runs Java's keytool, the real peer of every store Build reads and
// writes, and returns its output. It skips (or fails under
// KEYSHIP_REQUIRE_PEERS=1) when keytool is missing.
func keytool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := jssetest.Keytool(t, args...)
	if err != nil {
		// keytool's messages hold no passwords; its arguments do, so they
		// are not printed.
		t.Fatalf("keytool %s: %v\n%s", args[0], err, out)
	}
	return out
}

// TestKeytoolReadsOutput proves Java opens what Build writes: the keystore
// with its store password (one PrivateKeyEntry), its key with the key
// password (keytool -certreq signs with it), and the truststore.
func TestKeytoolReadsOutput(t *testing.T) {
	jssetest.Require(t, "keytool")
	t.Parallel()
	s := dcosSpec()
	b, err := Build(context.Background(), s, goodInputs(t).secrets(s), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range b.Files {
		if err := os.WriteFile(filepath.Join(dir, f.Path), f.Contents, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
	ks := filepath.Join(dir, KeystoreJKS)

	list := keytool(t, "-list", "-keystore", ks, "-storepass", storePass)
	if n := strings.Count(list, "PrivateKeyEntry"); n != 1 || strings.Contains(list, "trustedCertEntry") {
		t.Errorf("keytool -list %s: %d PrivateKeyEntry, want exactly 1 and no trustedCertEntry:\n%s", KeystoreJKS, n, list)
	}
	if !strings.Contains(list, "node,") {
		t.Errorf("keytool -list %s does not show alias node:\n%s", KeystoreJKS, list)
	}
	for _, c := range []struct {
		path string
		n    int
	}{{TruststoreJKS, 1}, {CABundleJKS, 2}} {
		list := keytool(t, "-list", "-keystore", filepath.Join(dir, c.path), "-storepass", trustPass)
		if n := strings.Count(list, "trustedCertEntry"); n != c.n || strings.Contains(list, "PrivateKeyEntry") {
			t.Errorf("keytool -list %s: %d trustedCertEntry, want %d and no PrivateKeyEntry:\n%s", c.path, n, c.n, list)
		}
	}

	csr := keytool(t, "-certreq", "-alias", "node", "-keystore", ks, "-storepass", storePass, "-keypass", keyPass)
	checkCSR(t, csr, fx().node.Chain[0])
}

// checkCSR asserts that csr is a PEM certificate request signed by the key of
// leaf, as keytool -certreq makes with the private key it opened.
func checkCSR(t *testing.T, csr string, leaf *x509.Certificate) {
	t.Helper()
	block, _ := pem.Decode([]byte(csr))
	if block == nil || block.Type != "NEW CERTIFICATE REQUEST" {
		t.Fatalf("keytool -certreq gave no certificate request:\n%s", csr)
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.CheckSignature(); err != nil {
		t.Errorf("Java's certificate request signature: %v", err)
	}
	pub, ok := req.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		t.Error("Java signed the certificate request with another key than the leaf's")
	}
}

// TestBuildReadsKeytoolStores proves Build reads stores that Java's keytool
// makes, as the Flink and DC/OS documentation tell users to make them (RSA,
// JKS), and writes stores Java reads back.
func TestBuildReadsKeytoolStores(t *testing.T) {
	jssetest.Require(t, "keytool")
	t.Parallel()
	dir := t.TempDir()
	node := filepath.Join(dir, "node.keystore")
	cer := filepath.Join(dir, "node.cer")
	trust := filepath.Join(dir, "node.truststore")
	keytool(t, "-genkeypair", "-alias", "node", "-keystore", node, "-storepass", "password", "-keypass", "password",
		"-keyalg", "RSA", "-dname", "CN=node1.example.com", "-storetype", "JKS",
		"-ext", "SAN=DNS:node1.example.com,DNS:node2.example.com")
	keytool(t, "-exportcert", "-keystore", node, "-storepass", "password", "-alias", "node", "-file", cer)
	keytool(t, "-importcert", "-keystore", trust, "-storepass", "password", "-alias", "node", "-file", cer,
		"-noprompt", "-storetype", "JKS")

	read := func(path string) []byte {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	s := dcosSpec()
	s.CABundle = nil
	in := &inputs{
		keystore: read(node), truststore: read(trust),
		storePass: "password", keyPass: "password", trustPass: "password",
		keystoreVersion: "1", passwordVersion: "1",
	}
	b, err := Build(context.Background(), s, in.secrets(s), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b.KeyAlias != "node" || len(b.Chain) != 1 || b.Chain[0].Subject != "CN=node1.example.com" ||
		strings.Join(b.Chain[0].DNSNames, ",") != "node1.example.com,node2.example.com" {
		t.Errorf("facts of keytool's keystore: alias %q, chain %+v", b.KeyAlias, b.Chain)
	}
	if len(b.Trusted) != 1 || b.Trusted[0].Subject != "CN=node1.example.com" {
		t.Errorf("facts of keytool's truststore: %+v", b.Trusted)
	}

	// The same keytool stores with a wrong password fail with Java's words.
	wrong := *in
	wrong.storePass = "wrongpassword"
	_, err = Build(context.Background(), s, wrong.secrets(s), Options{})
	checkProblems(t, err, []string{"wrongpassword"}, problem{"security.tls.keystore_password",
		[]string{"keystore was tampered with, or password was incorrect"}})

	// And what Build wrote from them opens in Java, key included.
	out := filepath.Join(dir, KeystoreJKS)
	if err := os.WriteFile(out, b.File(RoleKeystore).Contents, FileMode); err != nil {
		t.Fatal(err)
	}
	csr := keytool(t, "-certreq", "-alias", "node", "-keystore", out, "-storepass", "password", "-keypass", "password")
	leaf, err := x509.ParseCertificate(read(cer))
	if err != nil {
		t.Fatal(err)
	}
	checkCSR(t, csr, leaf)
}
