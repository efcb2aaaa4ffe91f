package materialize

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

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
)

// The magic numbers of Java's keystore formats.
const (
	jksMagic   = 0xFEEDFEED
	jceksMagic = 0xCECECECE
)

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

var (
	// errJKSDigest means the keystore's integrity digest does not match
	// its store password: Java's "Keystore was tampered with, or password
	// was incorrect".
	errJKSDigest = errors.New("keystore was tampered with, or password was incorrect")
	// errCannotRecoverKey means the key password does not open a private key
	// entry: Java's "Cannot recover key".
	errCannotRecoverKey = errors.New("cannot recover key")
)

// jksStore is a JKS store whose integrity digest matched its store password.
// Private keys stay protected until openKey.
type jksStore struct {
	ks    keystore.KeyStore
	keys  []jksKey  // sorted by alias
	certs []jksCert // sorted by alias
}

// keyAliases lists the aliases of the private key entries, quoted, for
// messages.
func (st *jksStore) keyAliases() string {
	var aliases []string
	for _, k := range st.keys {
		aliases = append(aliases, strconv.Quote(k.alias))
	}
	return strings.Join(aliases, ", ")
}

// certAliases lists the aliases of the trusted certificate entries, quoted,
// for messages.
func (st *jksStore) certAliases() string {
	var aliases []string
	for _, c := range st.certs {
		aliases = append(aliases, strconv.Quote(c.alias))
	}
	return strings.Join(aliases, ", ")
}

// jksKey is a private key entry, key still protected.
type jksKey struct {
	alias     string
	protected []byte // the EncryptedPrivateKeyInfo
	chain     []*x509.Certificate
}

// jksCert is a trusted certificate entry.
type jksCert struct {
	alias string
	cert  *x509.Certificate
}

// decodeJKS opens a JKS store with its store password. It returns
// errJKSDigest when the password does not match the integrity digest, and a
// descriptive error when data is not a well-formed JKS store. It never
// panics, and allocates no more than a small multiple of len(data) whatever
// the lengths data claims.
func decodeJKS(data, storePass []byte) (*jksStore, error) {
	// keystore-go trusts the lengths inside the data: walk the structure
	// first, bounded by what data really holds.
	entries, _, err := scanJKS(data)
	if err != nil {
		return nil, err
	}
	ks := keystore.New(keystore.WithCaseExactAliases())
	if err := ks.Load(bytes.NewReader(data), storePass); err != nil {
		// After scanJKS, only the digest can fail.
		return nil, errJKSDigest
	}
	st := &jksStore{ks: ks}
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
			st.keys = append(st.keys, jksKey{alias: e.alias, protected: e.protected, chain: certs})
		case jksTagCert:
			st.certs = append(st.certs, jksCert{alias: e.alias, cert: certs[0]})
		}
	}
	slices.SortFunc(st.keys, func(a, b jksKey) int { return strings.Compare(a.alias, b.alias) })
	slices.SortFunc(st.certs, func(a, b jksCert) int { return strings.Compare(a.alias, b.alias) })
	return st, nil
}

// openKey decrypts the private key of e with keyPass. It returns
// errCannotRecoverKey when keyPass is not the key's password. The decrypted
// key bytes are zeroed once parsed.
func (st *jksStore) openKey(e jksKey, keyPass []byte) (crypto.PrivateKey, error) {
	// keystore-go slices the protected key by lengths it does not check:
	// check them here, as Java's KeyProtector does.
	var info struct {
		Algo pkix.AlgorithmIdentifier
		Key  []byte
	}
	rest, err := asn1.Unmarshal(e.protected, &info)
	switch {
	case err != nil || len(rest) > 0:
		return nil, errors.New("the protected key is not an EncryptedPrivateKeyInfo")
	case !info.Algo.Algorithm.Equal(jksKeyProtector):
		return nil, fmt.Errorf("the key is protected with algorithm %s, not the JKS key protector", info.Algo.Algorithm)
	case len(info.Key) < 2*sha1.Size:
		return nil, errors.New("the protected key is too short")
	}
	entry, err := st.ks.GetPrivateKeyEntry(e.alias, keyPass)
	if err != nil {
		return nil, errCannotRecoverKey
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

// JKSKeystore writes a JKS keystore holding one private key entry: key under
// alias (folded to lower case, as Java does), with chain, leaf first. The key
// is protected with keyPass and the store with storePass; both must be
// printable ASCII. key must be an RSA, ECDSA or Ed25519 private key matching
// chain[0].
//
// The output is deterministic: the entry's creation date is the leaf's
// NotBefore, and the key protector's salt is derived from the leaf
// certificate (public, and distinct for distinct keys since the leaf holds
// the public key).
func JKSKeystore(alias string, key crypto.PrivateKey, chain []*x509.Certificate, storePass, keyPass []byte) ([]byte, error) {
	return writeJKSKeystore(alias, key, chain, storePass, keyPass)
}

// checkKeyEntry checks what every keystore writer needs: an alias, a chain
// whose leaf matches the key, and a printable store password.
func checkKeyEntry(alias string, key crypto.PrivateKey, chain []*x509.Certificate, storePass []byte) error {
	switch {
	case alias == "":
		return errors.New("empty alias")
	case len(chain) == 0:
		return errors.New("empty certificate chain")
	case !publicKeyMatches(key, chain[0]):
		return errors.New("the private key does not match the leaf certificate")
	}
	if reason := checkPassword(storePass); reason != "" {
		return errors.New("store password: " + reason)
	}
	return nil
}

func writeJKSKeystore(alias string, key crypto.PrivateKey, chain []*x509.Certificate, storePass, keyPass []byte) ([]byte, error) {
	if err := checkKeyEntry(alias, key, chain, storePass); err != nil {
		return nil, err
	}
	if reason := checkPassword(keyPass); reason != "" {
		return nil, errors.New("key password: " + reason)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	defer clear(der)
	salt := sha1.Sum(append([]byte("keyship/materialize/jks-key-salt\x00"), chain[0].Raw...))
	ks := keystore.New(keystore.WithOrderedAliases(), keystore.WithCustomRandomNumberGenerator(bytes.NewReader(salt[:])))
	entry := keystore.PrivateKeyEntry{
		CreationTime:     chain[0].NotBefore,
		PrivateKey:       der,
		CertificateChain: make([]keystore.Certificate, len(chain)),
	}
	for i, c := range chain {
		entry.CertificateChain[i] = keystore.Certificate{Type: jksCertType, Content: c.Raw}
	}
	if err := ks.SetPrivateKeyEntry(alias, entry, keyPass); err != nil {
		return nil, fmt.Errorf("protect private key: %w", err)
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, storePass); err != nil {
		return nil, fmt.Errorf("encode keystore: %w", err)
	}
	return buf.Bytes(), nil
}

// JKSTruststore writes a JKS truststore holding certs as trusted certificate
// entries, protected by storePass (printable ASCII). Each alias is the
// certificate's common name in lower case, or "ca" when it has none; a taken
// alias gets "-1", "-2", ... appended. The output is deterministic: entries are
// in alias order and each creation date is the certificate's NotBefore.
func JKSTruststore(certs []*x509.Certificate, storePass []byte) ([]byte, error) {
	entries := make([]jksCert, len(certs))
	for i, c := range certs {
		entries[i] = jksCert{cert: c}
	}
	return writeJKSTrusted(aliasCerts(entries), storePass)
}

// writeJKSTrusted writes trusted certificate entries under their aliases.
func writeJKSTrusted(certs []jksCert, storePass []byte) ([]byte, error) {
	if len(certs) == 0 {
		return nil, errors.New("no certificates")
	}
	if reason := checkPassword(storePass); reason != "" {
		return nil, errors.New("store password: " + reason)
	}
	ks := keystore.New(keystore.WithOrderedAliases())
	for _, c := range certs {
		if ks.IsTrustedCertificateEntry(c.alias) {
			return nil, fmt.Errorf("alias %q appears more than once", c.alias)
		}
		err := ks.SetTrustedCertificateEntry(c.alias, keystore.TrustedCertificateEntry{
			CreationTime: c.cert.NotBefore,
			Certificate:  keystore.Certificate{Type: jksCertType, Content: c.cert.Raw},
		})
		if err != nil {
			return nil, fmt.Errorf("certificate %q: %w", c.alias, err)
		}
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, storePass); err != nil {
		return nil, fmt.Errorf("encode truststore: %w", err)
	}
	return buf.Bytes(), nil
}

// publicKeyMatches reports whether key is the private half of cert's public
// key.
func publicKeyMatches(key crypto.PrivateKey, cert *x509.Certificate) bool {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return false
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}
