package keystore

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
)

// PEM as OpenSSL, Vault PKI and Kubernetes TLS secrets hold it: private keys
// in PKCS#1, SEC1, PKCS#8 or encrypted PKCS#8, certificates, and text
// around the blocks (OpenSSL's "Bag Attributes", comments), which is
// skipped.

// The PEM block types keyship reads and writes.
const (
	pemCertificate        = "CERTIFICATE"
	pemTrustedCertificate = "TRUSTED CERTIFICATE" // OpenSSL's, with trust settings after the certificate
	pemPKCS8Key           = "PRIVATE KEY"
	pemEncryptedKey       = "ENCRYPTED PRIVATE KEY"
	pemRSAKey             = "RSA PRIVATE KEY"
	pemECKey              = "EC PRIVATE KEY"
	pemECParameters       = "EC PARAMETERS" // openssl ecparam -genkey writes it before the key
)

// isPEM reports whether data holds a PEM block boundary.
func isPEM(data []byte) bool {
	return bytes.Contains(data, []byte("-----BEGIN "))
}

// OpenPEM reads every PEM block of data: each private key block is a key
// entry (opened by Unlock, with the key's password when it is encrypted),
// each certificate a trusted entry without alias, in file order; a key's
// chain is the certificate that matches it followed by its issuers. Other
// block types are listed in Ignored. It fails on a block that does not
// decode (no END line, bad base64) and on certificates that do not parse;
// the error never quotes the data. The caller calls Zero.
func OpenPEM(data []byte) (*Store, error) {
	st := &Store{Format: PEM}
	var keys []*pem.Block
	var certs []*x509.Certificate
	rest := data
	blocks := 0
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		blocks++
		switch block.Type {
		case pemCertificate, pemTrustedCertificate:
			der := block.Bytes
			if block.Type == pemTrustedCertificate {
				// The certificate is followed by OpenSSL's trust settings.
				var raw asn1.RawValue
				if _, err := asn1.Unmarshal(der, &raw); err != nil {
					zeroBlocks(keys)
					return nil, fmt.Errorf("PEM block %d (%s) is not a certificate: %v", n, block.Type, err)
				}
				der = raw.FullBytes
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				zeroBlocks(keys)
				return nil, fmt.Errorf("PEM block %d (%s) is not a valid X.509 certificate: %v", n, block.Type, err)
			}
			certs = append(certs, c)
		case pemPKCS8Key, pemEncryptedKey, pemRSAKey, pemECKey:
			keys = append(keys, block)
		case pemECParameters:
		default:
			st.Ignored = append(st.Ignored, block.Type)
		}
	}
	// pem.Decode skips a block it cannot decode and goes on with the next.
	if bytes.Count(data, []byte("-----BEGIN ")) != blocks {
		zeroBlocks(keys)
		return nil, errors.New("a PEM block does not decode (no matching -----END line, or bad base64 inside)")
	}
	for _, c := range certs {
		st.Trusted = append(st.Trusted, TrustedEntry{Cert: c})
	}
	for _, block := range keys {
		st.Keys = append(st.Keys, &KeyEntry{
			open: func(password []byte) (crypto.PrivateKey, error) { return parsePEMKey(block, password) },
			pool: certs,
			zero: func() { clear(block.Bytes) },
		})
	}
	return st, nil
}

func zeroBlocks(blocks []*pem.Block) {
	for _, b := range blocks {
		clear(b.Bytes)
	}
}

// errLegacyPEMEncryption is the OpenSSL-proprietary encryption of
// "Proc-Type: 4,ENCRYPTED" keys, which is insecure and not read.
var errLegacyPEMEncryption = errors.New(`the key is encrypted with OpenSSL's legacy PEM encryption ("Proc-Type: 4,ENCRYPTED"), which keyship does not read; convert it with openssl pkcs8 -topk8 -v2 aes-256-cbc`)

// parsePEMKey parses a private key block. An ENCRYPTED PRIVATE KEY is
// decrypted with password (nil when none is given: ErrNoKeyPassword); a
// wrong password gives ErrCannotRecoverKey.
func parsePEMKey(block *pem.Block, password []byte) (crypto.PrivateKey, error) {
	if _, ok := block.Headers["Proc-Type"]; ok {
		return nil, errLegacyPEMEncryption
	}
	switch block.Type {
	case pemPKCS8Key:
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("not a PKCS#8 private key: %v", err)
		}
		return key, nil
	case pemRSAKey:
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("not a PKCS#1 RSA private key: %v", err)
		}
		return key, nil
	case pemECKey:
		key, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("not a SEC1 EC private key: %v", err)
		}
		return key, nil
	case pemEncryptedKey:
		if password == nil {
			return nil, ErrNoKeyPassword
		}
		var info encryptedPrivateKeyInfo
		if err := unmarshalAll(block.Bytes, &info); err != nil {
			return nil, fmt.Errorf("not an encrypted PKCS#8 private key: %v", err)
		}
		der, err := pbeDecrypt(info.Algorithm, password, info.EncryptedData)
		switch {
		case errors.Is(err, errBadPadding):
			return nil, ErrCannotRecoverKey
		case err != nil:
			return nil, err
		}
		defer clear(der)
		key, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, ErrCannotRecoverKey
		}
		return key, nil
	}
	return nil, fmt.Errorf("PEM block type %q is not a private key", block.Type)
}

// ParsePKCS8 parses a PKCS#8 private key (DER), naming DSA keys (which Go
// does not read and TLSv1.3 cannot use) in words.
func ParsePKCS8(der []byte) (crypto.PrivateKey, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err == nil {
		return key, nil
	}
	if bytes.Contains(der, []byte{0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01}) { // OID 1.2.840.10040.4.1
		return nil, errors.New("a DSA key: TLSv1.3 has no DSA signatures and keyship does not read DSA keys; make an RSA or EC key (keytool -keyalg RSA or EC)")
	}
	return nil, errors.New("not a PKCS#8 private key")
}

// EncodePEMKey returns key as an unencrypted PKCS#8 "PRIVATE KEY" PEM
// block, as OpenSSL and libprocess read it. The caller zeroes the result.
func EncodePEMKey(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8Key, Bytes: der}), nil
}

// EncodePEMCertificates returns certs as "CERTIFICATE" PEM blocks, in order.
func EncodePEMCertificates(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: pemCertificate, Bytes: c.Raw})
	}
	return b.Bytes()
}
