package keystore

import (
	"crypto"
	"crypto/sha3"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// PKCS12Encryption selects the algorithms of the PKCS#12 files keyship
// writes.
type PKCS12Encryption string

// The PKCS#12 encryptions, go-pkcs12's encoders of the same names.
const (
	// PKCS12Modern2023 protects keys and certificates with PBES2
	// (PBKDF2-HMAC-SHA256, AES-256-CBC, 2048 iterations) and the file with
	// an HMAC-SHA256 MAC: what Java 12+ and OpenSSL 3 write. The default.
	PKCS12Modern2023 PKCS12Encryption = "modern2023"
	// PKCS12LegacyDES uses PBE-SHA1-3DES and an HMAC-SHA1 MAC, for Java 8
	// before 8u301 and other old readers.
	PKCS12LegacyDES PKCS12Encryption = "legacy-des"
)

// Validate returns an error when enc is neither "" (PKCS12Modern2023) nor
// one of the encryptions above.
func (enc PKCS12Encryption) Validate() error {
	_, err := enc.encoder()
	return err
}

func (enc PKCS12Encryption) encoder() (*gopkcs12.Encoder, error) {
	switch enc {
	case "", PKCS12Modern2023:
		return gopkcs12.Modern2023, nil
	case PKCS12LegacyDES:
		return gopkcs12.LegacyDES, nil
	}
	return nil, fmt.Errorf("unknown PKCS#12 encryption %q; use %q or %q", string(enc), PKCS12Modern2023, PKCS12LegacyDES)
}

// seeded is the random source go-pkcs12 draws the salts and IVs of one file
// from: SHAKE256 over a label and public inputs (certificates, aliases), so
// that the same inputs give the same file. It never reads a password or a
// key: salts and IVs are in the file for anyone to read, and one derived
// from a secret would let a reader test guesses of that secret at the speed
// of one hash. Salts need to be unique per password and content, not
// secret; the certificates hold the public key, so distinct keys get
// distinct salts.
func seeded(label string, public ...[]byte) io.Reader {
	h := sha3.NewSHAKE256()
	h.Write([]byte("keyship/keystore/pkcs12\x00" + label + "\x00"))
	for _, p := range public {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return h
}

// PKCS12Keystore writes a PKCS#12 keystore with go-pkcs12: key, chain[0]
// with the key's localKeyId, and the rest of chain, all protected with
// storePass (printable ASCII; PKCS#12 keystores use one password, which is
// how keytool and OpenSSL write and read them). enc selects the algorithms;
// "" is PKCS12Modern2023. The output is deterministic: salts and IVs come
// from the certificates.
//
// The key entry has no alias: go-pkcs12 (v0.7.4) writes no friendlyName for
// a key, and Java names such an entry "1", so keytool -list shows "Alias
// name: 1". Spark, Flink and JSSE's default key managers take the one key
// of a keystore whatever its alias; only a consumer configured to select a
// key by alias (e.g. a server's keyAlias setting) needs a JKS keystore, or
// the alias "1".
func PKCS12Keystore(key crypto.PrivateKey, chain []*x509.Certificate, storePass []byte, enc PKCS12Encryption) ([]byte, error) {
	e, err := enc.encoder()
	if err != nil {
		return nil, err
	}
	return pkcs12Keystore(e, key, chain, storePass)
}

func pkcs12Keystore(e *gopkcs12.Encoder, key crypto.PrivateKey, chain []*x509.Certificate, storePass []byte) ([]byte, error) {
	if err := checkKeyEntry(key, chain, storePass, CheckPassword); err != nil {
		return nil, err
	}
	raws := make([][]byte, len(chain))
	for i, c := range chain {
		raws[i] = c.Raw
	}
	// go-pkcs12 takes the password as a string, which cannot be zeroed.
	return e.WithRand(seeded("keystore", raws...)).Encode(key, chain[0], chain[1:], string(storePass))
}

// PKCS12Truststore writes a PKCS#12 truststore with go-pkcs12: each entry a
// certificate marked with Java's trust attribute (keytool -list shows
// trustedCertEntry) under its alias as friendlyName, in alias order,
// protected by storePass (printable ASCII). enc as for PKCS12Keystore. The
// output is deterministic.
func PKCS12Truststore(entries []TrustedEntry, storePass []byte, enc PKCS12Encryption) ([]byte, error) {
	e, err := enc.encoder()
	if err != nil {
		return nil, err
	}
	return pkcs12Truststore(e, entries, storePass)
}

func pkcs12Truststore(e *gopkcs12.Encoder, entries []TrustedEntry, storePass []byte) ([]byte, error) {
	if len(entries) == 0 {
		return nil, errors.New("no certificates")
	}
	if reason := CheckPassword(storePass); reason != "" {
		return nil, errors.New("store password: " + reason)
	}
	entries = slices.Clone(entries)
	slices.SortStableFunc(entries, func(a, b TrustedEntry) int { return strings.Compare(a.Alias, b.Alias) })
	out := make([]gopkcs12.TrustStoreEntry, len(entries))
	var public [][]byte
	for i, c := range entries {
		if i > 0 && entries[i-1].Alias == c.Alias {
			return nil, fmt.Errorf("alias %q appears more than once", c.Alias)
		}
		out[i] = gopkcs12.TrustStoreEntry{Cert: c.Cert, FriendlyName: c.Alias}
		public = append(public, []byte(c.Alias), c.Cert.Raw)
	}
	return e.WithRand(seeded("truststore", public...)).EncodeTrustStoreEntries(out, string(storePass))
}
