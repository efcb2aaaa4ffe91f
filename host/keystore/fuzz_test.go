package keystore

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"slices"
	"testing"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/keyship/keyship/host/keystore/keystoretest"
)

// The fuzz targets of every decoder keyship runs on secret store contents:
// FuzzDecodeJKS (jks_test.go), FuzzDecodePKCS12, FuzzDecodePEM and
// FuzzDecodeBase64; host/materialize's FuzzBuild runs them all behind
// Build. None may panic, hang or allocate without bound on any input. make
// fuzz runs each briefly; the seeds below run in every go test.

// fast are the encoders of the seeds: one KDF iteration, so that the fuzzer
// spends its time on the structure, not on the KDFs.
var fast = []*gopkcs12.Encoder{gopkcs12.Modern2023.WithIterations(1), gopkcs12.LegacyDES.WithIterations(1)}

func FuzzDecodePKCS12(f *testing.F) {
	fix := fx()
	pass := []byte("password")
	for _, e := range fast {
		f.Add(must(pkcs12Keystore(e, fix.node.Key, fix.node.Chain, pass)))
		f.Add(must(pkcs12Truststore(e, UniqueTrusted(trusted(fix.node.Chain[1:]...)), pass)))
	}
	f.Add(must(gopkcs12.LegacyRC2.WithIterations(1).Encode(fix.node.Key, fix.node.Chain[0], fix.node.Chain[1:], string(pass))))
	f.Add(must(gopkcs12.Passwordless.EncodeTrustStore(fix.node.Chain[1:], "")))
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x03})
	// Hostile iteration counts must be refused quickly, not computed.
	old := MaxIterations
	MaxIterations = 64
	f.Cleanup(func() { MaxIterations = old })
	f.Fuzz(func(t *testing.T, data []byte) {
		Detect(data)
		st, err := OpenPKCS12(data, pass)
		if err != nil {
			return
		}
		defer st.Zero()
		for _, k := range st.Keys {
			if k.Unlock(pass) != nil || k.Chain == nil {
				continue
			}
			KeyMatches(k.Key, k.Chain[0])
		}
		if len(st.Trusted) == 0 {
			return
		}
		// Whatever decodes re-encodes and decodes to the same certificates.
		certs := UniqueTrusted(st.Trusted)
		out, err := pkcs12Truststore(fast[0], certs, pass)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := OpenPKCS12(out, pass)
		if err != nil {
			t.Fatalf("decode re-encoded truststore: %v", err)
		}
		if !slices.Equal(rawCerts(certs), rawCerts(back.Trusted)) {
			t.Fatal("re-encoding changed the certificates")
		}
	})
}

func FuzzDecodePEM(f *testing.F) {
	fix := fx()
	f.Add(append(keystoretest.PEMKey(f, pemPKCS8Key, fix.node.Key), EncodePEMCertificates(fix.node.Chain)...))
	f.Add(keystoretest.PEMKey(f, pemECKey, fix.node.Key))
	f.Add(keystoretest.EncryptedPKCS8(f, fix.node.Key, fix.node.Chain[0], "password", 1))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: pemRSAKey, Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}))
	f.Add([]byte("Bag Attributes\n-----BEGIN CERTIFICATE-----\nMIIB\n"))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: pemTrustedCertificate, Bytes: append(bytes.Clone(fix.ca.Cert.Raw), 0x30, 0x00)}))
	old := MaxIterations
	MaxIterations = 64
	f.Cleanup(func() { MaxIterations = old })
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := OpenPEM(data)
		if err != nil {
			return
		}
		defer st.Zero()
		for _, k := range st.Keys {
			for _, pw := range [][]byte{nil, []byte("password")} {
				if key, err := k.open(pw); err == nil {
					OrderChain(key, k.pool)
				}
			}
		}
		if len(st.Trusted) > 0 {
			// Re-encoding gives the same certificates back.
			certs := make([]*x509.Certificate, len(st.Trusted))
			for i, e := range st.Trusted {
				certs[i] = e.Cert
			}
			again, err := OpenPEM(EncodePEMCertificates(certs))
			if err != nil || len(again.Trusted) != len(certs) {
				t.Fatalf("re-encoded certificates: %v", err)
			}
		}
	})
}

func FuzzDecodeBase64(f *testing.F) {
	fix := fx()
	ks := must(JKSKeystore("node", fix.node.Key, fix.node.Chain, []byte("password"), []byte("password")))
	f.Add([]byte(base64.StdEncoding.EncodeToString(ks)))
	f.Add([]byte(base64.RawURLEncoding.EncodeToString(ks)))
	f.Add([]byte(base64.StdEncoding.EncodeToString(fix.ca.Cert.Raw)[:64] + "\n"))
	f.Add([]byte("/u3+7QAAAAIAAAAB"))
	f.Add([]byte("ab=c"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		Base64Format(data)
		dec, err := DecodeBase64(data)
		if std, stdErr := base64.StdEncoding.Strict().DecodeString(string(data)); stdErr == nil && len(std) > 0 {
			if err != nil || !bytes.Equal(dec, std) {
				t.Fatalf("valid standard base64 decodes to %x (%v), want %x", dec, err, std)
			}
		}
		if err != nil {
			return
		}
		again, err := DecodeBase64([]byte(base64.StdEncoding.EncodeToString(dec)))
		if err != nil || !bytes.Equal(again, dec) {
			t.Fatalf("round trip: %x, %v; want %x", again, err, dec)
		}
	})
}
