package materialize

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"slices"
	"testing"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// The fuzz targets of every decoder keyship runs on secret store contents:
// FuzzDecodeJKS (jks_test.go), FuzzDecodePKCS12, FuzzDecodePEM and
// FuzzDecodeBase64. None may panic, hang or allocate without bound on any
// input. make fuzz runs each briefly; the seeds below run in every go test.

func FuzzDecodePKCS12(f *testing.F) {
	fix := fx()
	pass := []byte("password")
	// Seeds with one KDF iteration, so that the fuzzer spends its time on
	// the structure, not on the KDFs.
	for _, w := range []p12Writer{{iterations: 1}, {legacy: true, iterations: 1}} {
		f.Add(must(w.keystore("node", fix.node.Key, fix.node.Chain, pass)))
		f.Add(must(w.truststore(trustAliases(fix.node.Chain[1:]), pass)))
	}
	f.Add(must(gopkcs12.LegacyRC2.WithIterations(1).Encode(fix.node.Key, fix.node.Chain[0], fix.node.Chain[1:], string(pass))))
	f.Add(must(gopkcs12.Passwordless.EncodeTrustStore(fix.node.Chain[1:], "")))
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x03})
	// Hostile iteration counts must be refused quickly, not computed.
	old := maxIterations
	maxIterations = 64
	f.Cleanup(func() { maxIterations = old })
	f.Fuzz(func(t *testing.T, data []byte) {
		detectFormat(data)
		st, err := decodePKCS12(data, pass)
		if err != nil {
			return
		}
		for i := range st.keys {
			k, err := st.keys[i].openKey(pass)
			if err != nil {
				continue
			}
			chain := st.chainFor(&st.keys[i])
			if chain == nil {
				continue
			}
			publicKeyMatches(k, chain[0])
		}
		var certs []jksCert
		for _, c := range st.certs {
			if c.trusted {
				certs = append(certs, jksCert{alias: c.alias, cert: c.cert})
			}
		}
		if len(certs) == 0 {
			return
		}
		// Whatever decodes re-encodes and decodes to the same certificates.
		certs = uniqueAliases(certs)
		out, err := p12Writer{iterations: 1}.truststore(certs, pass)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := decodePKCS12(out, pass)
		if err != nil {
			t.Fatalf("decode re-encoded truststore: %v", err)
		}
		var a, b []string
		for _, c := range certs {
			a = append(a, string(c.cert.Raw))
		}
		for _, c := range back.certs {
			b = append(b, string(c.cert.Raw))
		}
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Fatal("re-encoding changed the certificates")
		}
	})
}

func FuzzDecodePEM(f *testing.F) {
	fix := fx()
	f.Add(append(pemKey(f, pemPKCS8Key, fix.node.Key), EncodePEMCertificates(fix.node.Chain)...))
	f.Add(pemKey(f, pemECKey, fix.node.Key))
	f.Add(encryptedPKCS8(f, fix.node.Key, "password", 1))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: pemRSAKey, Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}))
	f.Add([]byte("Bag Attributes\n-----BEGIN CERTIFICATE-----\nMIIB\n"))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: pemTrustedCertificate, Bytes: append(bytes.Clone(fix.ca.Cert.Raw), 0x30, 0x00)}))
	old := maxIterations
	maxIterations = 64
	f.Cleanup(func() { maxIterations = old })
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodePEM(data)
		if err != nil {
			return
		}
		defer p.zero()
		for _, k := range p.keys {
			for _, pw := range [][]byte{nil, []byte("password")} {
				if key, err := parsePEMKey(k, pw); err == nil {
					orderChain(key, p.certs)
				}
			}
		}
		if len(p.certs) > 0 {
			// Re-encoding gives the same certificates back.
			again, err := decodePEM(EncodePEMCertificates(p.certs))
			if err != nil || len(again.certs) != len(p.certs) {
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
		base64Hint(data)
		dec, err := decodeBase64(data)
		if std, stdErr := base64.StdEncoding.Strict().DecodeString(string(data)); stdErr == nil && len(std) > 0 {
			if err != nil || !bytes.Equal(dec, std) {
				t.Fatalf("valid standard base64 decodes to %x (%v), want %x", dec, err, std)
			}
		}
		if err != nil {
			return
		}
		again, err := decodeBase64([]byte(base64.StdEncoding.EncodeToString(dec)))
		if err != nil || !bytes.Equal(again, dec) {
			t.Fatalf("round trip: %x, %v; want %x", again, err, dec)
		}
	})
}

// FuzzBuild feeds arbitrary keystore and truststore secrets (raw, or
// declared base64) through Build: it must report problems, never panic.
func FuzzBuild(f *testing.F) {
	fix := fx()
	for _, w := range []p12Writer{{iterations: 1}} {
		f.Add(must(w.keystore("node", fix.node.Key, fix.node.Chain, []byte(storePass))), must(w.truststore(trustAliases(fix.node.Chain[1:]), []byte(trustPass))), false)
	}
	f.Add(must(JKSKeystore("node", fix.node.Key, fix.node.Chain, []byte(storePass), []byte(storePass))), fix.ca.Cert.Raw, false)
	f.Add(append(pemKey(f, pemPKCS8Key, fix.node.Key), EncodePEMCertificates(fix.node.Chain)...), EncodePEMCertificates(fix.node.Chain[1:]), false)
	f.Add([]byte(base64.StdEncoding.EncodeToString(fix.ca.Cert.Raw)), []byte("/u3+7"), true)
	old := maxIterations
	maxIterations = 64
	f.Cleanup(func() { maxIterations = old })
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
		b, err := fm.build(t, Options{Outputs: []Format{FormatJKS, FormatPKCS12, FormatPEM}, Hosts: []string{"node1.example.com"}})
		if err == nil {
			b.Zero()
		}
	})
}
