package jssetest_test

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize/jssetest"
	"github.com/keyship/keyship/host/materialize/testca"
)

// TestHandshake proves the harness can tell a good pair of stores from a
// bad one: a handshake that must complete does, and one whose name the
// certificate does not cover fails with Java's words.
func TestHandshake(t *testing.T) {
	ca, err := testca.NewCA("Harness CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("node1.example.com", testca.WithDNS("node1.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	pass := []byte("harness-pass")
	ks, err := keystore.JKSKeystore("node", leaf.Key, leaf.Chain, pass, pass)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := keystore.JKSTruststore(keystore.AliasCertificates([]*x509.Certificate{ca.Cert}), pass)
	if err != nil {
		t.Fatal(err)
	}
	if err := jssetest.Handshake(t, ks, "JKS", pass, pass, ts, pass, "node1.example.com", "TLSv1.3"); err != nil {
		t.Errorf("handshake with matching stores: %v", err)
	}
	err = jssetest.Handshake(t, ks, "JKS", pass, pass, ts, pass, "node2.example.com", "TLSv1.3")
	if err == nil || !strings.Contains(err.Error(), "No subject alternative DNS name matching node2.example.com found") {
		t.Errorf("handshake with an uncovered name: %v, want Java's hostname error", err)
	}
	if strings.Contains(err.Error(), string(pass)) {
		t.Error("the password appears in the error")
	}
}

func TestKeytool(t *testing.T) {
	out, err := jssetest.Keytool(t, "-help")
	if err != nil || !strings.Contains(out, "-list") {
		t.Errorf("keytool -help: %v\n%s", err, out)
	}
	if _, err := jssetest.Keytool(t, "-list", "-keystore", t.TempDir()+"/missing", "-storepass", "x"); err == nil {
		t.Error("keytool -list of a missing keystore succeeded")
	}
}
