package keystore

import (
	"bytes"
	"testing"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/keyship/keyship/host/keystore/keystoretest"
)

// TestStoreZero: Zero clears the key material a store holds unprotected
// (PEM keys, plain PKCS#12 key bags) and never the caller's bytes; a key
// unlocked before stays usable.
func TestStoreZero(t *testing.T) {
	f := fx()
	pemData := append(keystoretest.PEMKey(t, pemPKCS8Key, f.node.Key), EncodePEMCertificates(f.node.Chain)...)
	plainP12 := must(gopkcs12.Passwordless.Encode(f.node.Key, f.node.Chain[0], f.node.Chain[1:], ""))
	for name, data := range map[string][]byte{"PEM": pemData, "PKCS12 without encryption": plainP12} {
		before := bytes.Clone(data)
		st, err := Open(data, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(st.Keys) != 1 {
			t.Fatalf("%s: %d keys", name, len(st.Keys))
		}
		if err := st.Keys[0].Unlock(nil); err != nil || !KeyMatches(st.Keys[0].Key, f.node.Chain[0]) {
			t.Fatalf("%s: unlock: %v", name, err)
		}
		if len(st.Keys[0].Chain) != 2 || !st.Keys[0].Chain[1].Equal(f.ca.Cert) {
			t.Errorf("%s: chain of %d", name, len(st.Keys[0].Chain))
		}
		st.Zero()
		if !bytes.Equal(data, before) {
			t.Errorf("%s: Zero changed the caller's bytes", name)
		}
		if !KeyMatches(st.Keys[0].Key, f.node.Chain[0]) {
			t.Errorf("%s: Zero broke the unlocked key", name)
		}
	}

	// What Zero clears: the key bytes of a PEM block not yet unlocked.
	st, err := OpenPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	st.Zero()
	if err := st.Keys[0].Unlock(nil); err == nil {
		t.Error("a PEM key still opens after Zero")
	}
	var nilStore *Store
	nilStore.Zero()
}

// TestOpenTellsFormats: Open reads each format by content and refuses what
// it does not read, in words that name the format.
func TestOpenTellsFormats(t *testing.T) {
	f := fx()
	st, err := Open(f.ca.Cert.Raw, nil)
	if err != nil || st.Format != DERCertificate || len(st.Trusted) != 1 || !st.Trusted[0].Cert.Equal(f.ca.Cert) {
		t.Errorf("DER certificate: %v, %+v", err, st)
	}
	if _, err := Open([]byte{0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2}, nil); err == nil || !bytes.Contains([]byte(err.Error()), []byte("JCEKS")) {
		t.Errorf("JCEKS: %v", err)
	}
	if _, err := Open([]byte("garbage"), nil); err == nil || !bytes.Contains([]byte(err.Error()), []byte("Invalid keystore format")) {
		t.Errorf("garbage: %v", err)
	}
	ks := must(JKSKeystore("node", f.node.Key, f.node.Chain, []byte(storePass), []byte(keyPass)))
	if st, err := Open(ks, []byte(storePass)); err != nil || st.Format != JKS || len(st.Keys) != 1 {
		t.Errorf("JKS: %v", err)
	}
	if e := (&KeyEntry{}); e.Unlock(nil) == nil {
		t.Error("an entry without key unlocks")
	}
}
