package keystore

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	jks "github.com/pavlo-v-chernykh/keystore-go/v4"
)

// JKS, Java's own keystore format, read and written with keystore-go. keyship
// walks the structure itself first (scanJKS), because keystore-go trusts the
// lengths inside the data.

// The JKS entry tags.
const (
	jksTagKey  = 1
	jksTagCert = 2
)

// jksCertType is the certificate type Java writes into version 2 keystores.
const jksCertType = "X.509"

// jksKeyProtector is the OID of Sun's proprietary JKS key protection, the
// only one a JKS keystore uses.
var jksKeyProtector = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 42, 2, 17, 1, 1}

// CheckJKS checks that data is a well-formed JKS store, and says why not.
// It needs no password, so that a corrupt store can be reported even when
// its password is wrong too. It never panics, and allocates no more than a
// small multiple of len(data) whatever the lengths data claims.
func CheckJKS(data []byte) error {
	_, _, err := scanJKS(data)
	return err
}

// OpenJKS opens a JKS store with its store password. It returns
// ErrWrongPassword when the password does not match the integrity digest,
// and a descriptive error when data is not a well-formed JKS store. Key and
// trusted entries are each in alias order; aliases are as the file holds
// them. It never panics, and allocates no more than a small multiple of
// len(data) whatever the lengths data claims.
func OpenJKS(data, storePass []byte) (*Store, error) {
	// keystore-go trusts the lengths inside the data: walk the structure
	// first, bounded by what data really holds.
	entries, _, err := scanJKS(data)
	if err != nil {
		return nil, err
	}
	pw, ok := jksPassword(storePass)
	if !ok {
		return nil, ErrWrongPassword
	}
	defer clear(pw)
	ks := jks.New(jks.WithCaseExactAliases())
	if err := ks.Load(bytes.NewReader(data), pw); err != nil {
		// After scanJKS, only the digest can fail.
		return nil, ErrWrongPassword
	}
	st := &Store{Format: JKS}
	for _, e := range entries {
		var certs []*x509.Certificate
		for i, der := range e.certs {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("entry %q: certificate %d is not a valid X.509 certificate: %v", e.alias, i, err)
			}
			certs = append(certs, c)
		}
		switch e.tag {
		case jksTagKey:
			if len(certs) == 0 {
				return nil, fmt.Errorf("private key entry %q has no certificate chain", e.alias)
			}
			alias, protected := e.alias, e.protected
			st.Keys = append(st.Keys, &KeyEntry{Alias: alias, Chain: certs, open: func(keyPass []byte) (crypto.PrivateKey, error) {
				return openJKSKey(ks, alias, protected, keyPass)
			}})
		case jksTagCert:
			st.Trusted = append(st.Trusted, TrustedEntry{Alias: e.alias, Cert: certs[0]})
		}
	}
	slices.SortFunc(st.Keys, func(a, b *KeyEntry) int { return strings.Compare(a.Alias, b.Alias) })
	slices.SortFunc(st.Trusted, func(a, b TrustedEntry) int { return strings.Compare(a.Alias, b.Alias) })
	return st, nil
}

// openJKSKey decrypts the private key of entry alias with keyPass. It
// returns ErrCannotRecoverKey when keyPass is not the key's password. The
// decrypted key bytes are zeroed once parsed.
func openJKSKey(ks jks.KeyStore, alias string, protected, keyPass []byte) (crypto.PrivateKey, error) {
	// keystore-go slices the protected key by lengths it does not check:
	// check them here, as Java's KeyProtector does.
	var info struct {
		Algo pkix.AlgorithmIdentifier
		Key  []byte
	}
	rest, err := asn1.Unmarshal(protected, &info)
	switch {
	case err != nil || len(rest) > 0:
		return nil, errors.New("the protected key is not an EncryptedPrivateKeyInfo")
	case !info.Algo.Algorithm.Equal(jksKeyProtector):
		return nil, fmt.Errorf("the key is protected with algorithm %s, not the JKS key protector", info.Algo.Algorithm)
	case len(info.Key) < 2*sha1.Size:
		return nil, errors.New("the protected key is too short")
	}
	pw, ok := jksPassword(keyPass)
	if !ok {
		return nil, ErrCannotRecoverKey
	}
	defer clear(pw)
	entry, err := ks.GetPrivateKeyEntry(alias, pw)
	if err != nil {
		return nil, ErrCannotRecoverKey
	}
	defer clear(entry.PrivateKey)
	key, err := x509.ParsePKCS8PrivateKey(entry.PrivateKey)
	if err != nil {
		return nil, errors.New("the key is not a PKCS#8 private key")
	}
	return key, nil
}

// jksEntry is one entry as scanJKS found it.
type jksEntry struct {
	tag       uint32
	alias     string
	protected []byte   // key entries
	certs     [][]byte // DER; one for a trusted certificate entry
}

// jksReader reads big-endian fields from a byte slice; the first error
// sticks.
type jksReader struct {
	b   []byte
	off int
	err error
}

func (r *jksReader) next(n uint64, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.err = fmt.Errorf("truncated at byte %d: %s needs %d bytes, %d are left", r.off, what, n, len(r.b)-r.off)
		return nil
	}
	out := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return out
}

func (r *jksReader) u16(what string) uint16 {
	if b := r.next(2, what); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *jksReader) u32(what string) uint32 {
	if b := r.next(4, what); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *jksReader) u64(what string) uint64 {
	if b := r.next(8, what); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// cert reads one certificate of a version 1 or 2 store.
func (r *jksReader) cert(version uint32) []byte {
	if version == 2 {
		typ := string(r.next(uint64(r.u16("certificate type length")), "certificate type"))
		if r.err == nil && typ != jksCertType {
			r.err = fmt.Errorf("certificate type %s is not %s", strconv.Quote(typ), jksCertType)
		}
	}
	return r.next(uint64(r.u32("certificate length")), "certificate")
}

// scanJKS walks the structure of a JKS store and returns its entries and the
// offset of its SHA-1 integrity digest, without checking the digest. Every
// length is checked against what data holds, so that a hostile length cannot
// make anyone allocate gigabytes. Bytes after the digest are ignored, as Java
// ignores them.
func scanJKS(data []byte) ([]jksEntry, int, error) {
	r := &jksReader{b: data}
	if r.u32("magic") != jksMagic {
		if r.err != nil {
			return nil, 0, r.err
		}
		return nil, 0, errors.New("no JKS magic (Invalid keystore format)")
	}
	version := r.u32("version")
	if r.err == nil && version != 1 && version != 2 {
		return nil, 0, fmt.Errorf("unknown JKS version %d", version)
	}
	count := r.u32("entry count")
	var entries []jksEntry
	seen := make(map[string]bool)
	for i := uint32(0); i < count && r.err == nil; i++ {
		e := jksEntry{tag: r.u32("entry tag")}
		e.alias = string(r.next(uint64(r.u16("alias length")), "alias"))
		r.u64("creation date")
		switch e.tag {
		case jksTagKey:
			e.protected = r.next(uint64(r.u32("protected key length")), "protected key")
			n := r.u32("chain length")
			for j := uint32(0); j < n && r.err == nil; j++ {
				e.certs = append(e.certs, r.cert(version))
			}
		case jksTagCert:
			e.certs = append(e.certs, r.cert(version))
		default:
			if r.err == nil {
				return nil, 0, fmt.Errorf("entry %d has unknown tag %d", i, e.tag)
			}
		}
		if r.err != nil {
			break
		}
		// Java folds JKS aliases to lower case: two aliases that differ
		// only in case would silently shadow each other there.
		lower := strings.ToLower(e.alias)
		if seen[lower] {
			return nil, 0, fmt.Errorf("alias %q appears more than once", e.alias)
		}
		seen[lower] = true
		entries = append(entries, e)
	}
	digestAt := r.off
	r.next(sha1.Size, "digest")
	if r.err != nil {
		return nil, 0, r.err
	}
	return entries, digestAt, nil
}

// checkKeyEntry checks what a keystore writer needs: a chain whose leaf
// matches the key, and a store password checkPassword accepts.
func checkKeyEntry(key crypto.PrivateKey, chain []*x509.Certificate, storePass []byte, checkPassword func([]byte) string) error {
	switch {
	case len(chain) == 0:
		return errors.New("empty certificate chain")
	case !KeyMatches(key, chain[0]):
		return errors.New("the private key does not match the leaf certificate")
	}
	if reason := checkPassword(storePass); reason != "" {
		return errors.New("store password: " + reason)
	}
	return nil
}

// JKSKeystore writes a JKS keystore holding one private key entry: key under
// alias (folded to lower case, as Java does), with chain, leaf first. The key
// is protected with keyPass and the store with storePass; both must pass
// CheckJKSPassword (printable ISO 8859-1). key must be an RSA, ECDSA or Ed25519 private key matching
// chain[0].
//
// The output is deterministic: the entry's creation date is the leaf's
// NotBefore, and the key protector's salt is derived from the leaf
// certificate (public, and distinct for distinct keys since the leaf holds
// the public key).
func JKSKeystore(alias string, key crypto.PrivateKey, chain []*x509.Certificate, storePass, keyPass []byte) ([]byte, error) {
	if alias == "" {
		return nil, errors.New("empty alias")
	}
	if err := checkKeyEntry(key, chain, storePass, CheckJKSPassword); err != nil {
		return nil, err
	}
	if reason := CheckJKSPassword(keyPass); reason != "" {
		return nil, errors.New("key password: " + reason)
	}
	storePW, _ := jksPassword(storePass)
	defer clear(storePW)
	keyPW, _ := jksPassword(keyPass)
	defer clear(keyPW)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	defer clear(der)
	// The label names the package this writer came from, host/materialize:
	// changing it would change every keystore keyship writes.
	salt := sha1.Sum(append([]byte("keyship/materialize/jks-key-salt\x00"), chain[0].Raw...))
	ks := jks.New(jks.WithOrderedAliases(), jks.WithCustomRandomNumberGenerator(bytes.NewReader(salt[:])))
	entry := jks.PrivateKeyEntry{
		CreationTime:     chain[0].NotBefore,
		PrivateKey:       der,
		CertificateChain: make([]jks.Certificate, len(chain)),
	}
	for i, c := range chain {
		entry.CertificateChain[i] = jks.Certificate{Type: jksCertType, Content: c.Raw}
	}
	if err := ks.SetPrivateKeyEntry(alias, entry, keyPW); err != nil {
		return nil, fmt.Errorf("protect private key: %w", err)
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, storePW); err != nil {
		return nil, fmt.Errorf("encode keystore: %w", err)
	}
	return buf.Bytes(), nil
}

// JKSTruststore writes a JKS truststore holding entries as trusted
// certificate entries under their aliases (Java folds them to lower case;
// AliasCertificates and UniqueTrusted name certificates), protected by
// storePass (CheckJKSPassword: printable ISO 8859-1). The output is deterministic: entries are in
// alias order and each creation date is the certificate's NotBefore.
func JKSTruststore(entries []TrustedEntry, storePass []byte) ([]byte, error) {
	if len(entries) == 0 {
		return nil, errors.New("no certificates")
	}
	if reason := CheckJKSPassword(storePass); reason != "" {
		return nil, errors.New("store password: " + reason)
	}
	storePW, _ := jksPassword(storePass)
	defer clear(storePW)
	ks := jks.New(jks.WithOrderedAliases())
	for _, e := range entries {
		if ks.IsTrustedCertificateEntry(e.Alias) {
			return nil, fmt.Errorf("alias %q appears more than once", e.Alias)
		}
		err := ks.SetTrustedCertificateEntry(e.Alias, jks.TrustedCertificateEntry{
			CreationTime: e.Cert.NotBefore,
			Certificate:  jks.Certificate{Type: jksCertType, Content: e.Cert.Raw},
		})
		if err != nil {
			return nil, fmt.Errorf("certificate %q: %w", e.Alias, err)
		}
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, storePW); err != nil {
		return nil, fmt.Errorf("encode truststore: %w", err)
	}
	return buf.Bytes(), nil
}
