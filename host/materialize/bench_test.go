package materialize

import (
	"context"
	"testing"

	"github.com/keyship/keyship/host/keystore/keystoretest"
	"github.com/keyship/keyship/host/spec"
)

// BenchmarkBuildPEMToJKS is keyship's side of the comparative benchmark
// (benchcmp) without the process: an RSA PEM key, certificate and CA in
// separate secrets to a checked JKS keystore and truststore.
//
//	go test -run '^$' -bench BuildPEMToJKS ./host/materialize/
func BenchmarkBuildPEMToJKS(b *testing.B) {
	leaf := rsaFx()
	key, cert, ca := ref("tls.key", "/tls/key"), ref("tls.crt", "/tls/crt"), ref("tls.ca", "/tls/ca")
	fm := &form{spec: &spec.Spec{
		Keystore:   spec.Store{Key: &key, Certificate: &cert, Password: ref("tls.password", "/tls/password")},
		Truststore: &spec.Store{Secret: ca, Password: ref("tls.password", "/tls/password")},
		Hosts:      []string{"node1.example.com"},
	}, values: map[string][]byte{
		"tls.key": keystoretest.PEMKey(b, pemPKCS8Key, leaf.Key), "tls.crt": EncodePEMCertificates(leaf.Chain[:1]),
		"tls.ca": EncodePEMCertificates(leaf.Chain[1:]), "tls.password": []byte("changeit"),
	}}
	secrets := fm.secrets()
	b.ResetTimer()
	for b.Loop() {
		bundle, err := Build(context.Background(), fm.spec, secrets, Options{})
		if err != nil {
			b.Fatal(err)
		}
		bundle.Zero()
	}
}

// BenchmarkBuildEveryFormat builds JKS, PKCS12 (Modern2023) and PEM outputs
// from JKS inputs (seed 000's spec, ECDSA).
func BenchmarkBuildEveryFormat(b *testing.B) {
	fm := forms(b)[0]
	secrets := fm.secrets()
	b.ResetTimer()
	for b.Loop() {
		bundle, err := Build(context.Background(), fm.spec, secrets, allOutputs)
		if err != nil {
			b.Fatal(err)
		}
		bundle.Zero()
	}
}
