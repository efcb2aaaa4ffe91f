// Package filetest writes fixture secrets into a file-backend root for
// tests: a throwaway CA, a node keystore and truststore, and their
// passwords, at the DC/OS paths of seed 000 (/spark/keystore, ...).
package filetest

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize/testca"
	"github.com/keyship/keyship/host/spec"
)

// Job describes the secrets Seed wrote.
type Job struct {
	// Root is the file-backend root.
	Root string
	// CA signed the node certificate.
	CA *testca.CA
	// Leaf is the node's key and chain.
	Leaf *testca.Leaf
	// StorePassword, KeyPassword and TrustPassword are the passwords stored
	// at /spark/keystore_password, /spark/key_password and
	// /spark/truststore_password.
	StorePassword, KeyPassword, TrustPassword string
}

// Spec is seed 000's security.tls JSON for the secrets Seed writes.
const Spec = spec.ExampleDCOS

// Seed writes a node keystore (hosts: the given names), a truststore, a CA
// bundle and their passwords under root. storePassword lets a test plant a
// canary as the keystore password.
func Seed(t testing.TB, root, storePassword string, hosts ...string) *Job {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []string{"node1.example.com"}
	}
	ca, err := testca.NewCA("Test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(hosts[0], testca.WithDNS(hosts...))
	if err != nil {
		t.Fatal(err)
	}
	j := &Job{Root: root, CA: ca, Leaf: leaf, StorePassword: storePassword, KeyPassword: "keypass-1", TrustPassword: "trustpass-1"}
	ks, err := keystore.JKSKeystore("node", leaf.Key, leaf.Chain, []byte(storePassword), []byte(j.KeyPassword))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := keystore.JKSTruststore(keystore.AliasCertificates([]*x509.Certificate{ca.Cert}), []byte(j.TrustPassword))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"spark/keystore": ks, "spark/keystore_password": []byte(storePassword), "spark/key_password": []byte(j.KeyPassword),
		"spark/truststore": ts, "spark/truststore_password": []byte(j.TrustPassword), "spark/ca_bundle_truststore": ts,
	} {
		Put(t, root, name, data)
	}
	return j
}

// Put writes one secret under root, creating directories (0700; file 0600).
func Put(t testing.TB, root, name string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
