package materialize

import (
	"crypto"
	"crypto/x509"

	"github.com/keyship/keyship/host/keystore"
)

// The store codecs live in host/keystore. These names stay for callers
// that made stores through materialize before it moved (the demo, the file
// backend's test fixtures); new code calls host/keystore.

// PKCS12Encryption selects the algorithms of the PKCS#12 files Build writes
// (Options.PKCS12): keystore.PKCS12Encryption.
type PKCS12Encryption = keystore.PKCS12Encryption

// The PKCS#12 encryptions Build writes.
const (
	// PKCS12Modern2023 is keystore.PKCS12Modern2023, the default.
	PKCS12Modern2023 = keystore.PKCS12Modern2023
	// PKCS12LegacyDES is keystore.PKCS12LegacyDES.
	PKCS12LegacyDES = keystore.PKCS12LegacyDES
)

// JKSKeystore is keystore.JKSKeystore: a deterministic JKS keystore holding
// one private key entry.
func JKSKeystore(alias string, key crypto.PrivateKey, chain []*x509.Certificate, storePass, keyPass []byte) ([]byte, error) {
	return keystore.JKSKeystore(alias, key, chain, storePass, keyPass)
}

// JKSTruststore writes a deterministic JKS truststore holding certs as
// trusted certificate entries named by keystore.AliasCertificates (each
// alias the common name in lower case, or "ca"; a taken alias gets "-1",
// "-2", ... appended), protected by storePass (printable ASCII).
func JKSTruststore(certs []*x509.Certificate, storePass []byte) ([]byte, error) {
	return keystore.JKSTruststore(keystore.AliasCertificates(certs), storePass)
}

// EncodePEMKey is keystore.EncodePEMKey: key as unencrypted PKCS#8 PEM. The
// caller zeroes the result.
func EncodePEMKey(key crypto.PrivateKey) ([]byte, error) {
	return keystore.EncodePEMKey(key)
}

// EncodePEMCertificates is keystore.EncodePEMCertificates: certs as
// "CERTIFICATE" PEM blocks, in order.
func EncodePEMCertificates(certs []*x509.Certificate) []byte {
	return keystore.EncodePEMCertificates(certs)
}
