// Package keystoretest makes the store inputs that tests of host/keystore
// and host/materialize feed their readers: stores and keys written by other
// writers than keyship's (keystore-go directly, go-pkcs12), including ones
// keyship's writers refuse to make. It is a normal package for use from
// tests only.
package keystoretest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"testing"

	jks "github.com/pavlo-v-chernykh/keystore-go/v4"
	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// RawEntry is one entry of a store written by RawJKS: a private key entry
// when Key is set (protected with Pass), else a trusted certificate entry of
// Chain[0].
type RawEntry struct {
	Alias string
	Key   crypto.PrivateKey
	Pass  string
	Chain []*x509.Certificate
}

// RawJKS writes a JKS store with keystore-go directly, without the checks of
// keystore.JKSKeystore, to make stores a reader must reject (several keys, a
// key that does not match its certificate, a stray key in a truststore).
func RawJKS(t testing.TB, storePass string, entries ...RawEntry) []byte {
	t.Helper()
	ks := jks.New(jks.WithOrderedAliases(), jks.WithCustomRandomNumberGenerator(rand.Reader))
	for _, e := range entries {
		var chain []jks.Certificate
		for _, c := range e.Chain {
			chain = append(chain, jks.Certificate{Type: "X.509", Content: c.Raw})
		}
		if e.Key == nil {
			err := ks.SetTrustedCertificateEntry(e.Alias, jks.TrustedCertificateEntry{
				CreationTime: e.Chain[0].NotBefore, Certificate: chain[0],
			})
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(e.Key)
		if err != nil {
			t.Fatal(err)
		}
		err = ks.SetPrivateKeyEntry(e.Alias, jks.PrivateKeyEntry{
			CreationTime: e.Chain[0].NotBefore, PrivateKey: der, CertificateChain: chain,
		}, []byte(e.Pass))
		if err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, []byte(storePass)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// PEMKey returns key as a PEM block of type typ: "PRIVATE KEY" (PKCS#8),
// "EC PRIVATE KEY" (SEC1) or "RSA PRIVATE KEY" (PKCS#1).
func PEMKey(t testing.TB, typ string, key crypto.PrivateKey) []byte {
	t.Helper()
	var der []byte
	var err error
	switch typ {
	case "PRIVATE KEY":
		der, err = x509.MarshalPKCS8PrivateKey(key)
	case "EC PRIVATE KEY":
		der, err = x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	case "RSA PRIVATE KEY":
		der = x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))
	default:
		t.Fatalf("PEMKey: unknown block type %q", typ)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// EncryptedPKCS8 returns key as an "ENCRYPTED PRIVATE KEY" PEM block (PBES2,
// PBKDF2-HMAC-SHA256 with iterations, AES-256-CBC) encrypted with pass: the
// shrouded key bag go-pkcs12's Modern2023 writes, taken out of the PKCS#12
// file it makes with cert (go-pkcs12 writes no lone PKCS#8 key).
func EncryptedPKCS8(t testing.TB, key crypto.PrivateKey, cert *x509.Certificate, pass string, iterations int) []byte {
	t.Helper()
	p12, err := gopkcs12.Modern2023.WithIterations(iterations).Encode(key, cert, nil, pass)
	if err != nil {
		t.Fatal(err)
	}
	type contentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"tag:0,explicit"`
	}
	var pfx struct {
		Version  int
		AuthSafe contentInfo
		MacData  asn1.RawValue
	}
	var authSafe, keySafe []byte
	var safes []contentInfo
	var bags []struct {
		ID         asn1.ObjectIdentifier
		Value      asn1.RawValue `asn1:"tag:0,explicit"`
		Attributes asn1.RawValue `asn1:"optional"`
	}
	unmarshal := func(der []byte, out any) {
		t.Helper()
		if _, err := asn1.Unmarshal(der, out); err != nil {
			t.Fatalf("EncryptedPKCS8: go-pkcs12's file: %v", err)
		}
	}
	unmarshal(p12, &pfx)
	unmarshal(pfx.AuthSafe.Content.Bytes, &authSafe)
	unmarshal(authSafe, &safes)
	// go-pkcs12's Encode puts the shrouded key bag alone in the second,
	// unencrypted safe.
	if len(safes) != 2 {
		t.Fatalf("EncryptedPKCS8: go-pkcs12's file holds %d safes", len(safes))
	}
	unmarshal(safes[1].Content.Bytes, &keySafe)
	unmarshal(keySafe, &bags)
	if len(bags) != 1 {
		t.Fatalf("EncryptedPKCS8: go-pkcs12's key safe holds %d bags", len(bags))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: bags[0].Value.Bytes})
}
