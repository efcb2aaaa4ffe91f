package keystore

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyship/keyship/host/keystore/keystoretest"
	"github.com/keyship/keyship/host/materialize/testca"
)

func TestJKSKeystoreRoundTrip(t *testing.T) {
	f := fx()
	rsaCA, err := testca.NewCA("RSA CA", testca.WithRSA())
	if err != nil {
		t.Fatal(err)
	}
	rsaLeaf, err := rsaCA.Issue("rsa.example.com", testca.WithRSA())
	if err != nil {
		t.Fatal(err)
	}
	for _, leaf := range []*testca.Leaf{f.node, rsaLeaf} {
		data, err := JKSKeystore("Node", leaf.Key, leaf.Chain, []byte(storePass), []byte(keyPass))
		if err != nil {
			t.Fatal(err)
		}
		again, err := JKSKeystore("Node", leaf.Key, leaf.Chain, []byte(storePass), []byte(keyPass))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, again) {
			t.Error("JKSKeystore is not deterministic")
		}
		st, err := OpenJKS(data, []byte(storePass))
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Keys) != 1 || st.Keys[0].Alias != "node" {
			t.Fatalf("keys %+v, want one under alias node (lower case, as Java writes)", st.Keys)
		}
		if err := st.Keys[0].Unlock([]byte(storePass)); !errors.Is(err, ErrCannotRecoverKey) {
			t.Errorf("open with the wrong key password: %v, want ErrCannotRecoverKey", err)
		}
		if err := st.Keys[0].Unlock([]byte(keyPass)); err != nil {
			t.Fatal(err)
		}
		if !KeyMatches(st.Keys[0].Key, leaf.Chain[0]) {
			t.Error("round trip changed the key")
		}
		if _, err := OpenJKS(data, []byte(keyPass)); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("open with the wrong store password: %v, want ErrWrongPassword", err)
		}
	}
}

func TestJKSKeystoreRejects(t *testing.T) {
	f := fx()
	tests := []struct {
		name               string
		alias              string
		key                any
		chain              []*x509.Certificate
		storePass, keyPass string
		want               string
	}{
		{"mismatch", "node", f.other.Key, f.node.Chain, storePass, keyPass, "does not match"},
		{"no chain", "node", f.node.Key, nil, storePass, keyPass, "empty certificate chain"},
		{"no alias", "", f.node.Key, f.node.Chain, storePass, keyPass, "empty alias"},
		{"not a key", "node", "key", f.node.Chain, storePass, keyPass, "does not match"},
		{"store password", "node", f.node.Key, f.node.Chain, "pw\x7f", keyPass, "store password: "},
		{"key password", "node", f.node.Key, f.node.Chain, storePass, "", "key password: the password is empty"},
	}
	for _, tt := range tests {
		_, err := JKSKeystore(tt.alias, tt.key, tt.chain, []byte(tt.storePass), []byte(tt.keyPass))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}

func TestJKSTruststoreAliases(t *testing.T) {
	f := fx()
	noCN := &x509.Certificate{Raw: f.otherCA.Cert.Raw, Subject: pkix.Name{}, NotBefore: f.otherCA.Cert.NotBefore}
	data, err := JKSTruststore(AliasCertificates([]*x509.Certificate{f.ca.Cert, noCN, f.ca.Cert, noCN, f.otherCA.Cert}), []byte(trustPass))
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenJKS(data, []byte(trustPass))
	if err != nil {
		t.Fatal(err)
	}
	var aliases []string
	for _, c := range st.Trusted {
		aliases = append(aliases, c.Alias)
	}
	if want := []string{"ca", "ca-1", "other ca", "sample ca", "sample ca-1"}; !slices.Equal(aliases, want) {
		t.Errorf("aliases %q, want %q", aliases, want)
	}
	if len(st.Keys) != 0 {
		t.Error("truststore holds a private key")
	}
	if _, err := JKSTruststore(nil, []byte(trustPass)); err == nil {
		t.Error("empty truststore accepted")
	}
	if _, err := JKSTruststore(AliasCertificates([]*x509.Certificate{f.ca.Cert}), []byte("tab\tpw")); err == nil {
		t.Error("non-printable password accepted")
	}
	dup := []TrustedEntry{{Alias: "ca", Cert: f.ca.Cert}, {Alias: "ca", Cert: f.otherCA.Cert}}
	if _, err := JKSTruststore(dup, []byte(trustPass)); err == nil || !strings.Contains(err.Error(), `alias "ca" appears more than once`) {
		t.Errorf("repeated alias: %v", err)
	}
}

func TestScanJKSRejectsMalformed(t *testing.T) {
	good, err := JKSKeystore("node", fx().node.Key, fx().node.Chain, []byte(storePass), []byte(keyPass))
	if err != nil {
		t.Fatal(err)
	}
	set := func(off int, b ...byte) []byte {
		out := bytes.Clone(good)
		copy(out[off:], b)
		return out
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated at byte 0"},
		{"magic only", good[:4], "version needs 4 bytes"},
		{"not JKS", []byte("garbage!garbage!"), "no JKS magic"},
		{"version 3", set(4, 0, 0, 0, 3), "unknown JKS version 3"},
		{"huge entry count", set(8, 0xff, 0xff, 0xff, 0xff), ""}, // any error, no huge allocation
		{"unknown tag", set(12, 0, 0, 0, 9), "unknown tag 9"},
		{"huge alias", set(16, 0xff, 0xff), "alias needs 65535 bytes"},
		{"huge key", set(30, 0xff, 0xff, 0xff, 0xff), "protected key needs 4294967295 bytes"},
		{"no digest", good[:len(good)-1], "digest needs 20 bytes"},
	}
	for _, tt := range tests {
		_, _, err := scanJKS(tt.data)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
	// Java ignores bytes after the digest; so does scanJKS.
	if _, _, err := scanJKS(append(bytes.Clone(good), 1, 2, 3)); err != nil {
		t.Errorf("trailing bytes: %v", err)
	}
}

// resign replaces the integrity digest of a structurally valid JKS store with
// the right one for pass, so that fuzzing reaches past the digest check.
func resign(data, pass []byte) []byte {
	_, at, err := scanJKS(data)
	if err != nil {
		return nil
	}
	h := sha1.New()
	for _, c := range pass {
		h.Write([]byte{0, c})
	}
	h.Write([]byte("Mighty Aphrodite"))
	h.Write(data[:at])
	out := bytes.Clone(data)
	copy(out[at:], h.Sum(nil))
	return out
}

func FuzzDecodeJKS(f *testing.F) {
	fix := fx()
	pass := []byte("password")
	ks, err := JKSKeystore("node", fix.node.Key, fix.node.Chain, pass, pass)
	if err != nil {
		f.Fatal(err)
	}
	ts, err := JKSTruststore(AliasCertificates([]*x509.Certificate{fix.ca.Cert, fix.otherCA.Cert}), pass)
	if err != nil {
		f.Fatal(err)
	}
	two := keystoretest.RawJKS(f, string(pass),
		keystoretest.RawEntry{Alias: "a", Key: fix.node.Key, Pass: "password", Chain: fix.node.Chain},
		keystoretest.RawEntry{Alias: "b", Key: fix.other.Key, Pass: "password", Chain: fix.other.Chain[:1]},
		keystoretest.RawEntry{Alias: "c", Chain: []*x509.Certificate{fix.ca.Cert}})
	f.Add(ks)
	f.Add(ts)
	f.Add(two)
	f.Add(ks[:len(ks)/2])
	f.Add([]byte{})
	f.Add([]byte{0xfe, 0xed, 0xfe, 0xed})
	f.Add([]byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		Detect(data)
		Base64Format(data)
		for i, d := range [][]byte{data, resign(data, pass)} {
			st, err := OpenJKS(d, pass)
			if err != nil {
				if i == 1 && d != nil && errors.Is(err, ErrWrongPassword) {
					t.Fatal("a re-signed store fails its digest: scanJKS and keystore-go disagree on the structure")
				}
				continue
			}
			for _, k := range st.Keys {
				if k.Unlock(pass) == nil {
					KeyMatches(k.Key, k.Chain[0])
				}
			}
			if len(st.Trusted) == 0 {
				continue
			}
			// Whatever decodes, re-encodes and decodes to the same certificates.
			out, err := JKSTruststore(st.Trusted, pass)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			back, err := OpenJKS(out, pass)
			if err != nil {
				t.Fatalf("decode re-encoded store: %v", err)
			}
			// Aliases fold to lower case, which may reorder the entries.
			if !slices.Equal(rawCerts(back.Trusted), rawCerts(st.Trusted)) {
				t.Fatal("re-encoding changed the certificates")
			}
		}
	})
}

// rawCerts returns the DER of the entries' certificates, sorted.
func rawCerts(entries []TrustedEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = string(e.Cert.Raw)
	}
	slices.Sort(out)
	return out
}

// TestJKSBytesAsBefore pins the bytes of the JKS stores keyship writes: a
// keystore and a truststore of testdata/golden.pem (a fixed key and chain)
// hash to what host/materialize's writers gave before they moved here
// (commit 9365966), so that a keystore shipped before and after compares
// equal and nothing is re-shipped for nothing.
func TestJKSBytesAsBefore(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "golden.pem"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Zero()
	if len(st.Keys) != 1 || st.Keys[0].Unlock(nil) != nil || len(st.Keys[0].Chain) != 2 {
		t.Fatal("testdata/golden.pem: want one key and its chain of two")
	}
	chain := st.Keys[0].Chain
	ks, err := JKSKeystore("Node", st.Keys[0].Key, chain, []byte("store-pass"), []byte("key-pass"))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := JKSTruststore(AliasCertificates([]*x509.Certificate{chain[1], chain[0], chain[1]}), []byte("trust-pass"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"keystore", ks, "c2961c42f0ccea823936912ace0e3cf66c08fcb8d930e686fc0c5b3fae59f0e8"},
		{"truststore", ts, "959c16377653b3a8b73b800f6ecde831de850767c9f91d73ba9bc2b0556d80ba"},
	} {
		if got := sha256.Sum256(c.data); hex.EncodeToString(got[:]) != c.want {
			t.Errorf("the JKS %s's bytes changed: SHA-256 %x, want %s", c.name, got, c.want)
		}
	}
}
