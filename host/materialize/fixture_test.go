package materialize

import (
	"crypto/x509"
	"sync"
	"testing"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize/testca"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// fixture is the PKI every test shares: ECDSA keys, made once.
type fixture struct {
	ca, otherCA *testca.CA
	node, other *testca.Leaf
}

var fx = sync.OnceValue(func() *fixture {
	ca, err := testca.NewCA("Sample CA")
	if err != nil {
		panic(err)
	}
	otherCA, err := testca.NewCA("Other CA")
	if err != nil {
		panic(err)
	}
	node, err := ca.Issue("node1.example.com", testca.WithDNS("node1.example.com", "node2.example.com"))
	if err != nil {
		panic(err)
	}
	other, err := ca.Issue("other.example.com")
	if err != nil {
		panic(err)
	}
	return &fixture{ca: ca, otherCA: otherCA, node: node, other: other}
})

// rsaFx is an RSA CA and node, for the few tests where RSA is the point
// (RSA keys are slow to make).
var rsaFx = sync.OnceValue(func() *testca.Leaf {
	ca, err := testca.NewCA("RSA CA", testca.WithRSA())
	if err != nil {
		panic(err)
	}
	leaf, err := ca.Issue("rsa.example.com", testca.WithRSA(), testca.WithDNS("node1.example.com"))
	if err != nil {
		panic(err)
	}
	return leaf
})

// The passwords of the test inputs. They differ, so that a test can tell
// which one an error is about; none may ever appear in an error.
const (
	storePass = "store-pass-1"
	keyPass   = "key-pass-22"
	trustPass = "trust-pass-333"
)

var testPasswords = []string{storePass, keyPass, trustPass}

// field makes a DC/OS security.tls field.
func field(name, path string) spec.Field {
	return spec.Field{Name: "security.tls." + name, Ref: spec.Ref{Path: path}}
}

// dcosSpec is the full DC/OS spec of seed 000: keystore, key password,
// truststore and CA bundle.
func dcosSpec() *spec.Spec {
	kp := field("key_password", "/spark/key_password")
	ca := field("ca_bundle_secret", "/spark/ca_bundle_truststore")
	return &spec.Spec{
		Keystore: spec.Store{
			Secret:      field("keystore_secret", "/spark/keystore"),
			Password:    field("keystore_password", "/spark/keystore_password"),
			KeyPassword: &kp,
		},
		Truststore: &spec.Store{
			Secret:   field("truststore_secret", "/spark/truststore"),
			Password: field("truststore_password", "/spark/truststore_password"),
		},
		CABundle: &ca,
		Protocol: spec.DefaultProtocol,
	}
}

// inputs are the secret values behind dcosSpec's refs.
type inputs struct {
	keystore, truststore, caBundle   []byte
	storePass, keyPass, trustPass    string
	keystoreVersion, passwordVersion string
}

// goodInputs are Go-built stores that pass every check.
func goodInputs(t testing.TB) *inputs {
	t.Helper()
	f := fx()
	ks, err := JKSKeystore("node", f.node.Key, f.node.Chain, []byte(storePass), []byte(keyPass))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := JKSTruststore([]*x509.Certificate{f.ca.Cert}, []byte(trustPass))
	if err != nil {
		t.Fatal(err)
	}
	cab, err := JKSTruststore([]*x509.Certificate{f.ca.Cert, f.otherCA.Cert}, []byte(trustPass))
	if err != nil {
		t.Fatal(err)
	}
	return &inputs{
		keystore: ks, truststore: ts, caBundle: cab,
		storePass: storePass, keyPass: keyPass, trustPass: trustPass,
		keystoreVersion: "7", passwordVersion: "3",
	}
}

// secrets maps s's refs to in's values by setting name.
func (in *inputs) secrets(s *spec.Spec) Secrets {
	values := map[string][]byte{
		"security.tls.keystore_secret":     in.keystore,
		"security.tls.keystore_password":   []byte(in.storePass),
		"security.tls.key_password":        []byte(in.keyPass),
		"security.tls.truststore_secret":   in.truststore,
		"security.tls.truststore_password": []byte(in.trustPass),
		"security.tls.ca_bundle_secret":    in.caBundle,
	}
	out := make(Secrets)
	for _, f := range s.Fields() {
		v := in.passwordVersion
		if f.Name == "security.tls.keystore_secret" {
			v = in.keystoreVersion
		}
		out[f.Ref] = plugin.Secret{Data: values[f.Name], Version: v}
	}
	return out
}

// The PEM block types of the test inputs.
const (
	pemPKCS8Key = "PRIVATE KEY"
	pemECKey    = "EC PRIVATE KEY"
	pemRSAKey   = "RSA PRIVATE KEY"
)

// p12Truststore writes certs as a PKCS12 truststore, named as Build names
// them.
func p12Truststore(certs []*x509.Certificate, pass string, enc PKCS12Encryption) ([]byte, error) {
	return keystore.PKCS12Truststore(trustAliases(certs), []byte(pass), enc)
}
