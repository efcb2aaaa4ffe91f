package keystore

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/keyship/keyship/host/materialize/testca"
)

func TestRC2Vectors(t *testing.T) {
	// RFC 2268 section 5.
	for _, v := range []struct {
		key        string
		bits       int
		plain, enc string
	}{
		{"0000000000000000", 63, "0000000000000000", "ebb773f993278eff"},
		{"ffffffffffffffff", 64, "ffffffffffffffff", "278b27e42e2f0d49"},
		{"3000000000000000", 64, "1000000000000001", "30649edf9be7d2c2"},
		{"88", 64, "0000000000000000", "61a8a244adacccf0"},
		{"88bca90e90875a", 64, "0000000000000000", "6ccf4308974c267f"},
		{"88bca90e90875a7f0f79c384627bafb2", 64, "0000000000000000", "1a807d272bbe5db1"},
		{"88bca90e90875a7f0f79c384627bafb2", 128, "0000000000000000", "2269552ab0f85ca6"},
	} {
		key, _ := hex.DecodeString(v.key)
		plain, _ := hex.DecodeString(v.plain)
		c := newRC2(key, v.bits)
		got := make([]byte, 8)
		c.Encrypt(got, plain)
		if hex.EncodeToString(got) != v.enc {
			t.Errorf("RC2(%s, %d) = %x, want %s", v.key, v.bits, got, v.enc)
		}
		back := make([]byte, 8)
		c.Decrypt(back, got)
		if !bytes.Equal(back, plain) {
			t.Errorf("RC2(%s, %d) does not decrypt what it encrypts", v.key, v.bits)
		}
	}
}

func TestPBKDF2Vectors(t *testing.T) {
	// RFC 6070.
	for _, v := range []struct {
		iter int
		want string
	}{
		{1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
		{2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
		{4096, "4b007901b765489abead49d926f721d065a429c1"},
	} {
		got, err := pbkdf2Key(sha1.New, []byte("password"), []byte("salt"), v.iter, 20)
		if err != nil || hex.EncodeToString(got) != v.want {
			t.Errorf("PBKDF2-SHA1 %d iterations = %x, want %s", v.iter, got, v.want)
		}
	}
	got, _ := pbkdf2Key(sha1.New, []byte("passwordPASSWORDpassword"), []byte("saltSALTsaltSALTsaltSALTsaltSALTsalt"), 4096, 25)
	if want := "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"; hex.EncodeToString(got) != want {
		t.Errorf("PBKDF2-SHA1 long = %x, want %s", got, want)
	}
}

// TestPKCS12KeystoreReadByGoPKCS12 proves the keystores keyship writes (with
// go-pkcs12) with keyship's reader and go-pkcs12's, and that they are
// deterministic.
func TestPKCS12KeystoreReadByGoPKCS12(t *testing.T) {
	f := fx()
	for _, enc := range []PKCS12Encryption{PKCS12Modern2023, PKCS12LegacyDES} {
		data, err := PKCS12Keystore(f.node.Key, f.node.Chain, []byte(storePass), enc)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := PKCS12Keystore(f.node.Key, f.node.Chain, []byte(storePass), enc)
		if !bytes.Equal(data, again) {
			t.Errorf("%s: not deterministic", enc)
		}
		key, leaf, cas, err := gopkcs12.DecodeChain(data, storePass)
		if err != nil {
			t.Fatalf("%s: go-pkcs12: %v", enc, err)
		}
		if !KeyMatches(key, f.node.Chain[0]) || !leaf.Equal(f.node.Chain[0]) || len(cas) != 1 || !cas[0].Equal(f.ca.Cert) {
			t.Errorf("%s: go-pkcs12 reads another key or chain", enc)
		}
		if _, _, _, err := gopkcs12.DecodeChain(data, keyPass); err == nil {
			t.Errorf("%s: opens with a wrong password", enc)
		}

		st, err := OpenPKCS12(data, []byte(storePass))
		if err != nil {
			t.Fatal(err)
		}
		// go-pkcs12 writes no friendlyName for the key: the entry has no
		// alias (Java names it "1").
		if len(st.Keys) != 1 || st.Keys[0].Alias != "" {
			t.Fatalf("%s: keys %+v, want one without alias", enc, st.Keys)
		}
		if chain := st.Keys[0].Chain; len(chain) != 2 || !chain[0].Equal(f.node.Chain[0]) || !chain[1].Equal(f.ca.Cert) {
			t.Errorf("%s: chain %v", enc, chain)
		}
		if err := st.Keys[0].Unlock([]byte(keyPass)); !errors.Is(err, ErrCannotRecoverKey) {
			t.Errorf("%s: key with the wrong password: %v, want ErrCannotRecoverKey", enc, err)
		}
		if err := st.Keys[0].Unlock([]byte(storePass)); err != nil || !KeyMatches(st.Keys[0].Key, f.node.Chain[0]) {
			t.Fatalf("%s: open key: %v", enc, err)
		}
		if len(st.Trusted) != 0 {
			t.Errorf("%s: the keystore holds trusted entries %+v", enc, st.Trusted)
		}
		if _, err := OpenPKCS12(data, []byte(keyPass)); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("%s: wrong store password: %v, want ErrWrongPassword", enc, err)
		}
	}
	other, err := PKCS12Keystore(f.other.Key, f.other.Chain, []byte(storePass), "")
	if err != nil {
		t.Fatal(err)
	}
	if mine, _ := PKCS12Keystore(f.node.Key, f.node.Chain, []byte(storePass), ""); bytes.Equal(salts(t, mine), salts(t, other)) {
		t.Error("two keystores of different keys share their salts")
	}
	if _, err := PKCS12Keystore(f.node.Key, f.node.Chain, []byte(storePass), "rc4"); err == nil {
		t.Error("unknown encryption accepted")
	}
	for name, c := range map[string]struct {
		key   any
		chain []*x509.Certificate
		pass  string
		want  string
	}{
		"mismatch":       {f.other.Key, f.node.Chain, storePass, "does not match"},
		"no chain":       {f.node.Key, nil, storePass, "empty certificate chain"},
		"store password": {f.node.Key, f.node.Chain, "pw\n", "store password: "},
	} {
		if _, err := PKCS12Keystore(c.key, c.chain, []byte(c.pass), ""); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}

// salts returns the MAC salt of a PKCS#12 file.
func salts(t *testing.T, data []byte) []byte {
	t.Helper()
	var pfx p12PFX
	if err := unmarshalAll(data, &pfx); err != nil {
		t.Fatal(err)
	}
	return pfx.MacData.MacSalt
}

func TestPKCS12TruststoreReadByGoPKCS12(t *testing.T) {
	f := fx()
	certs := []*x509.Certificate{f.otherCA.Cert, f.ca.Cert}
	for _, enc := range []PKCS12Encryption{PKCS12Modern2023, PKCS12LegacyDES} {
		data, err := PKCS12Truststore(UniqueTrusted(trusted(certs...)), []byte(trustPass), enc)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := PKCS12Truststore(UniqueTrusted(trusted(certs...)), []byte(trustPass), enc)
		if !bytes.Equal(data, again) {
			t.Errorf("%s: not deterministic", enc)
		}
		got, err := gopkcs12.DecodeTrustStore(data, trustPass)
		if err != nil {
			t.Fatalf("%s: go-pkcs12: %v", enc, err)
		}
		// Alias order: "other ca", "sample ca".
		if len(got) != 2 || !got[0].Equal(f.otherCA.Cert) || !got[1].Equal(f.ca.Cert) {
			t.Errorf("%s: go-pkcs12 reads %d other certificates", enc, len(got))
		}
		st, err := OpenPKCS12(data, []byte(trustPass))
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Other) != 0 || len(st.Keys) != 0 {
			t.Errorf("%s: %d certificates are not marked trusted, %d keys", enc, len(st.Other), len(st.Keys))
		}
		var aliases []string
		for _, c := range st.Trusted {
			aliases = append(aliases, c.Alias)
		}
		if want := []string{"other ca", "sample ca"}; !slices.Equal(aliases, want) {
			t.Errorf("%s: aliases %q, want %q", enc, aliases, want)
		}
	}
	dup := []TrustedEntry{{Alias: "ca", Cert: f.ca.Cert}, {Alias: "ca", Cert: f.otherCA.Cert}}
	if _, err := PKCS12Truststore(dup, []byte(trustPass), ""); err == nil || !strings.Contains(err.Error(), `alias "ca" appears more than once`) {
		t.Errorf("repeated alias: %v", err)
	}
	if _, err := PKCS12Truststore(nil, []byte(trustPass), ""); err == nil {
		t.Error("empty truststore accepted")
	}
}

// trusted makes entries without aliases.
func trusted(certs ...*x509.Certificate) []TrustedEntry {
	out := make([]TrustedEntry, len(certs))
	for i, c := range certs {
		out[i] = TrustedEntry{Cert: c}
	}
	return out
}

// TestDecodePKCS12FromGoPKCS12 reads what an independent writer makes, RC2
// included (Java 8's keytool and OpenSSL 1.x encrypt certificates with it).
func TestDecodePKCS12FromGoPKCS12(t *testing.T) {
	f := fx()
	for name, enc := range map[string]*gopkcs12.Encoder{
		"Modern2023": gopkcs12.Modern2023, "LegacyDES": gopkcs12.LegacyDES, "LegacyRC2": gopkcs12.LegacyRC2,
	} {
		data, err := enc.Encode(f.node.Key, f.node.Chain[0], f.node.Chain[1:], storePass)
		if err != nil {
			t.Fatal(err)
		}
		st, err := OpenPKCS12(data, []byte(storePass))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(st.Keys) != 1 || len(st.Trusted) != 0 || len(st.Other) != 1 {
			t.Fatalf("%s: %d keys, %d trusted, %d other certificates", name, len(st.Keys), len(st.Trusted), len(st.Other))
		}
		if err := st.Keys[0].Unlock([]byte(storePass)); err != nil || !KeyMatches(st.Keys[0].Key, f.node.Chain[0]) {
			t.Errorf("%s: key: %v", name, err)
		}
		if chain := st.Keys[0].Chain; len(chain) != 2 || !chain[1].Equal(f.ca.Cert) {
			t.Errorf("%s: chain of %d", name, len(chain))
		}
		if _, err := OpenPKCS12(data, []byte("wrong")); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("%s: wrong password: %v", name, err)
		}

		ts, err := enc.EncodeTrustStoreEntries([]gopkcs12.TrustStoreEntry{{Cert: f.ca.Cert, FriendlyName: "My CA"}}, trustPass)
		if err != nil {
			t.Fatal(err)
		}
		st, err = OpenPKCS12(ts, []byte(trustPass))
		if err != nil {
			t.Fatalf("%s truststore: %v", name, err)
		}
		if len(st.Trusted) != 1 || st.Trusted[0].Alias != "My CA" {
			t.Errorf("%s truststore: %+v", name, st.Trusted)
		}
	}
	// No MAC and no encryption: any password opens it, as in Java.
	open, err := gopkcs12.Passwordless.EncodeTrustStore([]*x509.Certificate{f.ca.Cert}, "")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := OpenPKCS12(open, []byte("anything")); err != nil || len(st.Trusted) != 1 {
		t.Errorf("passwordless truststore: %v", err)
	}
}

func TestDecodePKCS12Rejects(t *testing.T) {
	f := fx()
	good, err := PKCS12Keystore(f.node.Key, f.node.Chain, []byte(storePass), "")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)/2],
		"trailing":  append(bytes.Clone(good), 0),
		"not DER":   []byte("garbage"),
		"version 2": bytes.Replace(bytes.Clone(good), []byte{0x02, 0x01, 0x03}, []byte{0x02, 0x01, 0x02}, 1),
	} {
		if _, err := OpenPKCS12(data, []byte(storePass)); err == nil {
			t.Errorf("%s: decoded", name)
		} else if strings.Contains(err.Error(), storePass) {
			t.Errorf("%s: the password appears in the error", name)
		}
	}
	// A hostile iteration count is refused, not computed.
	old := MaxIterations
	MaxIterations = 100
	defer func() { MaxIterations = old }()
	if _, err := OpenPKCS12(good, []byte(storePass)); err == nil || !strings.Contains(err.Error(), "iteration count 2048 is outside 1..100") {
		t.Errorf("iterations over the limit: %v", err)
	}
}

func TestPKCS12RSAKeystore(t *testing.T) {
	ca, err := testca.NewCA("RSA CA", testca.WithRSA())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("rsa.example.com", testca.WithRSA(), testca.WithDNS("rsa.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := PKCS12Keystore(leaf.Key, leaf.Chain, []byte(storePass), "")
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, err := gopkcs12.DecodeChain(data, storePass)
	if err != nil || !KeyMatches(key, leaf.Chain[0]) {
		t.Fatalf("go-pkcs12 reads an RSA keystore: %v", err)
	}
}
