package materialize

import (
	"crypto"
	"crypto/x509"

	"github.com/keyship/keyship/host/keystore"
)

// Short names for the codecs of host/keystore that this package's tests
// make their input stores with.

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
