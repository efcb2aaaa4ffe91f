package keystore

import (
	"encoding/asn1"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyship/keyship/host/materialize/jssetest"
)

// TestKeytoolLegacyPKCS12NeedsRC2 is why keyship keeps an RC2 decrypter
// (rc2.go): the keytool of a supported Java, asked for a legacy PKCS12
// store (-J-Dkeystore.pkcs12.legacy, for readers older than PBES2), encrypts
// the certificates with 40-bit RC2. OpenPKCS12 reads such a store: the key
// with its chain, and the trusted entry.
func TestKeytoolLegacyPKCS12NeedsRC2(t *testing.T) {
	jssetest.Require(t, "keytool")
	t.Parallel()
	const pw = "password"
	dir := t.TempDir()
	ks, caFile := filepath.Join(dir, "legacy.p12"), filepath.Join(dir, "ca.cer")
	if err := os.WriteFile(caFile, fx().ca.Cert.Raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-genkeypair", "-alias", "node", "-keyalg", "EC", "-dname", "CN=node1.example.com"},
		{"-importcert", "-alias", "ca", "-file", caFile, "-noprompt"},
	} {
		args = append([]string{"-J-Dkeystore.pkcs12.legacy"}, args...)
		args = append(args, "-keystore", ks, "-storetype", "PKCS12", "-storepass", pw)
		if out, err := jssetest.Keytool(t, args...); err != nil {
			t.Fatalf("keytool %s: %v\n%s", args[1], err, out)
		}
	}
	data, err := os.ReadFile(ks)
	if err != nil {
		t.Fatal(err)
	}

	algs := safeAlgorithms(t, data)
	rc2 := false
	for _, a := range algs {
		rc2 = rc2 || a.Equal(oidPBEWithSHAAnd40BitRC2CBC)
	}
	if !rc2 {
		t.Errorf("keytool's legacy PKCS12 encrypts its safes with %v, not pbeWithSHAAnd40BitRC2-CBC: is RC2 still needed?", algs)
	}

	st, err := OpenPKCS12(data, []byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Keys) != 1 || st.Keys[0].Alias != "node" || len(st.Keys[0].Chain) != 1 || st.Keys[0].Chain[0].Subject.CommonName != "node1.example.com" {
		t.Fatalf("keys %+v, want one under alias node with its certificate", st.Keys)
	}
	if err := st.Keys[0].Unlock([]byte(pw)); err != nil || !KeyMatches(st.Keys[0].Key, st.Keys[0].Chain[0]) {
		t.Errorf("the key of keytool's legacy PKCS12: %v", err)
	}
	if len(st.Trusted) != 1 || st.Trusted[0].Alias != "ca" || !st.Trusted[0].Cert.Equal(fx().ca.Cert) {
		t.Errorf("trusted entries %+v, want the CA under alias ca", st.Trusted)
	}
	if _, err := OpenPKCS12(data, []byte("wrong-password")); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: %v, want ErrWrongPassword", err)
	}
}

// safeAlgorithms returns the encryption algorithm of each encrypted safe of
// a PKCS#12 file.
func safeAlgorithms(t *testing.T, data []byte) []asn1.ObjectIdentifier {
	t.Helper()
	var pfx p12PFX
	if err := unmarshalAll(data, &pfx); err != nil {
		t.Fatal(err)
	}
	inner, err := explicitInner(pfx.AuthSafe.Content)
	if err != nil {
		t.Fatal(err)
	}
	authSafe, err := octets(inner)
	if err != nil {
		t.Fatal(err)
	}
	var infos []p12ContentInfo
	if err := unmarshalAll(authSafe, &infos); err != nil {
		t.Fatal(err)
	}
	var out []asn1.ObjectIdentifier
	for _, ci := range infos {
		if !ci.ContentType.Equal(oidEncryptedDataContentType) {
			continue
		}
		var ed p12EncryptedData
		if err := unmarshalAll(ci.Content.Bytes, &ed); err != nil {
			t.Fatal(err)
		}
		out = append(out, ed.EncryptedContentInfo.ContentEncryptionAlgorithm.Algorithm)
	}
	return out
}
