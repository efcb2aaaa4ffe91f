package materialize

import (
	"encoding/base64"
	"testing"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/keystore/keystoretest"
)

// The fuzz targets of the decoders (JKS, PKCS12, PEM, base64) are in
// host/keystore. FuzzBuild runs them all behind Build, with the checks.
// make fuzz runs each briefly; the seeds below run in every go test.

// FuzzBuild feeds arbitrary keystore and truststore secrets (raw, or
// declared base64) through Build: it must report problems, never panic.
func FuzzBuild(f *testing.F) {
	fix := fx()
	// PKCS12 seeds with one KDF iteration, so that the fuzzer spends its
	// time on the structure, not on the KDFs.
	fast := gopkcs12.Modern2023.WithIterations(1)
	f.Add(must(fast.Encode(fix.node.Key, fix.node.Chain[0], fix.node.Chain[1:], storePass)),
		must(fast.EncodeTrustStoreEntries([]gopkcs12.TrustStoreEntry{{Cert: fix.ca.Cert, FriendlyName: "sample ca"}}, trustPass)), false)
	f.Add(must(JKSKeystore("node", fix.node.Key, fix.node.Chain, []byte(storePass), []byte(storePass))), fix.ca.Cert.Raw, false)
	f.Add(append(keystoretest.PEMKey(f, pemPKCS8Key, fix.node.Key), EncodePEMCertificates(fix.node.Chain)...), EncodePEMCertificates(fix.node.Chain[1:]), false)
	f.Add([]byte(base64.StdEncoding.EncodeToString(fix.ca.Cert.Raw)), []byte("/u3+7"), true)
	old := keystore.MaxIterations
	keystore.MaxIterations = 64
	f.Cleanup(func() { keystore.MaxIterations = old })
	f.Fuzz(func(t *testing.T, keystore, truststore []byte, b64 bool) {
		s := dcosSpec()
		s.Keystore.KeyPassword = nil
		if b64 {
			s.Keystore.Secret.Encoding = "base64"
			s.Truststore.Secret.Encoding = "base64"
		}
		fm := &form{spec: s, values: map[string][]byte{
			"security.tls.keystore_secret": keystore, "security.tls.keystore_password": []byte(storePass),
			"security.tls.truststore_secret": truststore, "security.tls.truststore_password": []byte(trustPass),
			"security.tls.ca_bundle_secret": truststore,
		}}
		b, err := fm.on("node1.example.com").build(t, Options{Outputs: []Format{FormatJKS, FormatPKCS12, FormatPEM}})
		if err == nil {
			b.Zero()
		}
	})
}
