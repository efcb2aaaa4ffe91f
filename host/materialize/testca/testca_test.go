package testca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"
)

func TestIssueVerifiesAgainstCA(t *testing.T) {
	ca, err := NewCA("keyship test CA")
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != "keyship test CA" {
		t.Fatalf("CA certificate: IsCA=%v subject=%q", ca.Cert.IsCA, ca.Cert.Subject)
	}
	if _, ok := ca.Key.(*ecdsa.PrivateKey); !ok {
		t.Errorf("default CA key is %T, want *ecdsa.PrivateKey", ca.Key)
	}
	leaf, err := ca.Issue("node1.example.com",
		WithDNS("node1.example.com", "*.node.example.com"),
		WithIPs(net.ParseIP("10.0.0.7")))
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.Chain) != 2 || leaf.Chain[1] != ca.Cert {
		t.Fatalf("chain has %d certificates, want leaf and CA", len(leaf.Chain))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, host := range []string{"node1.example.com", "a.node.example.com", "10.0.0.7"} {
		_, err := leaf.Chain[0].Verify(x509.VerifyOptions{
			DNSName:   host,
			Roots:     roots,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if err := leaf.Chain[0].VerifyHostname("node2.example.com"); err == nil {
		t.Error("leaf covers node2.example.com, which it was not issued for")
	}
	// The key and the certificate form a usable TLS pair.
	if _, err := tls.X509KeyPair(pemCert(leaf.Chain[0]), pemKey(t, leaf.Key)); err != nil {
		t.Errorf("key does not match certificate: %v", err)
	}
}

func TestNoDNSOptionMeansNoSAN(t *testing.T) {
	ca, err := NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("node1.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(leaf.Chain[0].DNSNames); n != 0 {
		t.Errorf("leaf has %d DNS SANs, want 0", n)
	}
}

func TestRSAAndValidity(t *testing.T) {
	nb := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	na := time.Date(2020, 2, 1, 0, 0, 0, 0, time.UTC)
	ca, err := NewCA("rsa ca", WithRSA(), WithValidity(nb, na))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ca.Key.(*rsa.PrivateKey); !ok {
		t.Errorf("CA key is %T, want *rsa.PrivateKey", ca.Key)
	}
	if !ca.Cert.NotBefore.Equal(nb) || !ca.Cert.NotAfter.Equal(na) {
		t.Errorf("validity %v..%v, want %v..%v", ca.Cert.NotBefore, ca.Cert.NotAfter, nb, na)
	}
	leaf, err := ca.Issue("old", WithValidity(nb, na))
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Chain[0].KeyUsage&x509.KeyUsageKeyEncipherment != 0 {
		t.Error("ECDSA leaf has KeyEncipherment usage")
	}
	if _, err := ca.Issue("bad", WithValidity(na, nb)); err == nil {
		t.Error("Issue accepted NotAfter before NotBefore")
	}
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func pemKey(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
