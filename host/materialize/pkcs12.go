package materialize

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
)

// PKCS#12 as Java's keytool, OpenSSL and Windows write it (RFC 7292):
// keyship reads private key entries (shrouded or plain key bags with their
// certificates, matched by localKeyId) and trusted certificate entries
// (certificate bags Java marks with its trust attribute), and writes both
// deterministically.

// Object identifiers of PKCS#12 and PKCS#7.
var (
	oidDataContentType          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedDataContentType = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidKeyBag                   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
	oidPKCS8ShroudedKeyBag      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidCertBag                  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidSafeContentsBag          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 6}
	oidX509CertType             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidFriendlyName             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 20}
	oidLocalKeyID               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
	// oidJavaTrustedKeyUsage marks a certificate bag as a Java
	// trustedCertEntry; its value lists the extended key usages trusted.
	oidJavaTrustedKeyUsage = asn1.ObjectIdentifier{2, 16, 840, 1, 113894, 746875, 1, 1}
	oidAnyExtendedKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37, 0}
)

// errP12MAC means the integrity MAC of a PKCS#12 file does not match its
// password: Java's "keystore password was incorrect".
var errP12MAC = errors.New("keystore was tampered with, or password was incorrect")

// PKCS12Encryption selects the algorithms of the PKCS#12 files Build writes.
type PKCS12Encryption string

// The PKCS#12 encryptions. The names follow go-pkcs12's encoders.
const (
	// PKCS12Modern2023 protects keys and certificates with PBES2
	// (PBKDF2-HMAC-SHA256, AES-256-CBC) and the file with an HMAC-SHA256
	// MAC: what Java 12+ and OpenSSL 3 write. The default.
	PKCS12Modern2023 PKCS12Encryption = "modern2023"
	// PKCS12LegacyDES uses PBE-SHA1-3DES and an HMAC-SHA1 MAC, for Java 8
	// before 8u301 and other old readers.
	PKCS12LegacyDES PKCS12Encryption = "legacy-des"
)

// p12Iterations is the iteration count of the KDFs keyship writes (as
// Modern2023 and OpenSSL).
const p12Iterations = 2048

// maxSafeDepth bounds the nesting of SafeContents bags.
const maxSafeDepth = 4

type p12PFX struct {
	Version  int
	AuthSafe p12ContentInfo
	MacData  p12MacData `asn1:"optional"`
}

type p12ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type p12MacData struct {
	Mac        p12DigestInfo
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type p12DigestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

type p12EncryptedData struct {
	Version              int
	EncryptedContentInfo p12EncryptedContentInfo
}

type p12EncryptedContentInfo struct {
	ContentType                asn1.ObjectIdentifier
	ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedContent           asn1.RawValue `asn1:"optional"`
}

type p12SafeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue  `asn1:"tag:0,explicit"`
	Attributes []p12Attribute `asn1:"set,optional"`
}

type p12Attribute struct {
	ID     asn1.ObjectIdentifier
	Values asn1.RawValue `asn1:"set"`
}

type p12CertBag struct {
	ID   asn1.ObjectIdentifier
	Data asn1.RawValue `asn1:"tag:0,explicit"`
}

// encryptedPrivateKeyInfo is PKCS#8's EncryptedPrivateKeyInfo.
type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

// p12Store is a PKCS#12 file opened with its password. Keys stay
// protected until openKey.
type p12Store struct {
	keys  []p12Key
	certs []p12Cert
}

// p12Key is a key bag.
type p12Key struct {
	alias   string // friendlyName, may be ""
	keyID   []byte // localKeyId, may be nil
	shroud  *encryptedPrivateKeyInfo
	plain   []byte // PKCS#8 DER of an unencrypted key bag
	leafIdx int    // index into certs of the certificate with keyID, or -1
}

// p12Cert is a certificate bag.
type p12Cert struct {
	alias   string
	keyID   []byte
	trusted bool // Java's trusted-key-usage attribute: a trustedCertEntry
	cert    *x509.Certificate
}

// isPKCS12 reports whether data starts like a PFX: a SEQUENCE holding
// version 3 and a ContentInfo.
func isPKCS12(data []byte) bool {
	var pfx struct {
		Version  int
		AuthSafe struct {
			ContentType asn1.ObjectIdentifier
			Rest        asn1.RawValue `asn1:"optional"`
		}
		Rest asn1.RawValue `asn1:"optional"`
	}
	_, err := asn1.Unmarshal(data, &pfx)
	return err == nil && pfx.Version == 3 && len(pfx.AuthSafe.ContentType) > 0
}

// explicitInner returns the element inside an [0] EXPLICIT wrapper.
func explicitInner(rv asn1.RawValue) ([]byte, error) {
	if rv.Class != asn1.ClassContextSpecific || rv.Tag != 0 || !rv.IsCompound {
		return nil, errors.New("missing [0] content")
	}
	return rv.Bytes, nil
}

// octets parses a DER OCTET STRING (primitive only).
func octets(der []byte) ([]byte, error) {
	var out []byte
	if err := unmarshalAll(der, &out); err != nil {
		return nil, fmt.Errorf("not a DER OCTET STRING: %v", err)
	}
	return out, nil
}

// decodePKCS12 opens a PKCS#12 file with its password: it checks the MAC
// (errP12MAC when the password does not match), decrypts the encrypted
// safes and collects key and certificate bags. It never panics, and
// allocates no more than a small multiple of len(data) besides the KDF
// work, which maxIterations bounds.
func decodePKCS12(data, password []byte) (*p12Store, error) {
	var pfx p12PFX
	if err := unmarshalAll(data, &pfx); err != nil {
		return nil, fmt.Errorf("not a DER PKCS#12 file: %v", err)
	}
	if pfx.Version != 3 {
		return nil, fmt.Errorf("PKCS#12 version %d, want 3", pfx.Version)
	}
	if !pfx.AuthSafe.ContentType.Equal(oidDataContentType) {
		return nil, fmt.Errorf("%w: PKCS#12 protected by public keys (content type %s); only password-protected files are read", errUnsupportedAlgorithm, pfx.AuthSafe.ContentType)
	}
	inner, err := explicitInner(pfx.AuthSafe.Content)
	if err != nil {
		return nil, fmt.Errorf("PKCS#12 content: %v", err)
	}
	authSafe, err := octets(inner)
	if err != nil {
		return nil, fmt.Errorf("PKCS#12 content: %v", err)
	}
	if len(pfx.MacData.Mac.Algorithm.Algorithm) > 0 {
		if err := verifyP12MAC(&pfx.MacData, authSafe, password); err != nil {
			return nil, err
		}
	}
	var infos []p12ContentInfo
	if err := unmarshalAll(authSafe, &infos); err != nil {
		return nil, fmt.Errorf("PKCS#12 authenticated safe: %v", err)
	}
	st := &p12Store{}
	for i, ci := range infos {
		inner, err := explicitInner(ci.Content)
		if err != nil {
			return nil, fmt.Errorf("safe %d: %v", i, err)
		}
		var contents []byte
		switch {
		case ci.ContentType.Equal(oidDataContentType):
			if contents, err = octets(inner); err != nil {
				return nil, fmt.Errorf("safe %d: %v", i, err)
			}
		case ci.ContentType.Equal(oidEncryptedDataContentType):
			var ed p12EncryptedData
			if err := unmarshalAll(inner, &ed); err != nil {
				return nil, fmt.Errorf("safe %d: encrypted data: %v", i, err)
			}
			enc := ed.EncryptedContentInfo.EncryptedContent
			if enc.Class != asn1.ClassContextSpecific || enc.Tag != 0 || enc.IsCompound {
				return nil, fmt.Errorf("safe %d: encrypted data holds no ciphertext", i)
			}
			contents, err = pbeDecrypt(ed.EncryptedContentInfo.ContentEncryptionAlgorithm, password, enc.Bytes)
			if errors.Is(err, errBadPadding) {
				if len(pfx.MacData.Mac.Algorithm.Algorithm) == 0 {
					// No MAC to tell a wrong password: this is one.
					return nil, errP12MAC
				}
				return nil, fmt.Errorf("safe %d: the password opens the file but does not decrypt it", i)
			}
			if err != nil {
				return nil, fmt.Errorf("safe %d: %w", i, err)
			}
		default:
			return nil, fmt.Errorf("%w: safe %d has content type %s", errUnsupportedAlgorithm, i, ci.ContentType)
		}
		err = st.addBags(contents, 0)
		if ci.ContentType.Equal(oidEncryptedDataContentType) {
			clear(contents)
		}
		if err != nil {
			return nil, err
		}
	}
	for i := range st.keys {
		st.keys[i].leafIdx = -1
		if st.keys[i].keyID == nil {
			continue
		}
		for j, c := range st.certs {
			if bytes.Equal(c.keyID, st.keys[i].keyID) {
				st.keys[i].leafIdx = j
				break
			}
		}
	}
	return st, nil
}

// verifyP12MAC checks the MAC of a PKCS#12 file.
func verifyP12MAC(md *p12MacData, authSafe, password []byte) error {
	alg := md.Mac.Algorithm.Algorithm
	if alg.Equal(oidPBMAC1) {
		return fmt.Errorf("%w: PBMAC1 integrity (OpenSSL 3.4+ -pbmac1_pbkdf2, Java 26+); write the store with HMAC-SHA256 integrity", errUnsupportedAlgorithm)
	}
	newHash, _ := digestFor(alg)
	if newHash == nil {
		return fmt.Errorf("%w: MAC digest %s", errUnsupportedAlgorithm, alg)
	}
	if err := checkIterations(md.Iterations); err != nil {
		return fmt.Errorf("MAC: %v", err)
	}
	bmp := bmpPassword(password)
	defer clear(bmp)
	key := p12KDF(newHash, 3, bmp, md.MacSalt, md.Iterations, newHash().Size())
	defer clear(key)
	mac := hmac.New(newHash, key)
	mac.Write(authSafe)
	if subtle.ConstantTimeCompare(mac.Sum(nil), md.Mac.Digest) != 1 {
		return errP12MAC
	}
	return nil
}

// addBags parses SafeContents and adds their key and certificate bags.
// CRL and secret bags are skipped, as Java skips what it cannot use.
func (st *p12Store) addBags(contents []byte, depth int) error {
	if depth > maxSafeDepth {
		return errors.New("SafeContents nested too deep")
	}
	var bags []p12SafeBag
	if err := unmarshalAll(contents, &bags); err != nil {
		return fmt.Errorf("SafeContents: %v", err)
	}
	for i, bag := range bags {
		value, err := explicitInner(bag.Value)
		if err != nil {
			return fmt.Errorf("bag %d: %v", i, err)
		}
		alias, keyID, trusted, err := bagAttributes(bag.Attributes)
		if err != nil {
			return fmt.Errorf("bag %d: %v", i, err)
		}
		switch {
		case bag.ID.Equal(oidPKCS8ShroudedKeyBag):
			var info encryptedPrivateKeyInfo
			if err := unmarshalAll(value, &info); err != nil {
				return fmt.Errorf("bag %d: shrouded key: %v", i, err)
			}
			st.keys = append(st.keys, p12Key{alias: alias, keyID: keyID, shroud: &info})
		case bag.ID.Equal(oidKeyBag):
			st.keys = append(st.keys, p12Key{alias: alias, keyID: keyID, plain: value})
		case bag.ID.Equal(oidCertBag):
			var cb p12CertBag
			if err := unmarshalAll(value, &cb); err != nil {
				return fmt.Errorf("bag %d: certificate bag: %v", i, err)
			}
			if !cb.ID.Equal(oidX509CertType) {
				continue // SDSI certificates: nobody uses them
			}
			inner, err := explicitInner(cb.Data)
			if err != nil {
				return fmt.Errorf("bag %d: certificate bag: %v", i, err)
			}
			der, err := octets(inner)
			if err != nil {
				return fmt.Errorf("bag %d: certificate: %v", i, err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return fmt.Errorf("bag %d: not a valid X.509 certificate: %v", i, err)
			}
			st.certs = append(st.certs, p12Cert{alias: alias, keyID: keyID, trusted: trusted, cert: cert})
		case bag.ID.Equal(oidSafeContentsBag):
			if err := st.addBags(value, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// bagAttributes reads the friendlyName, localKeyId and Java trust attributes
// of a bag; others are ignored.
func bagAttributes(attrs []p12Attribute) (alias string, keyID []byte, trusted bool, err error) {
	for _, a := range attrs {
		switch {
		case a.ID.Equal(oidFriendlyName):
			var v asn1.RawValue
			if _, err := asn1.Unmarshal(a.Values.Bytes, &v); err != nil || v.Tag != asn1.TagBMPString || v.IsCompound {
				return "", nil, false, errors.New("friendlyName is not a BMPString")
			}
			if alias, err = decodeBMP(v.Bytes); err != nil {
				return "", nil, false, err
			}
		case a.ID.Equal(oidLocalKeyID):
			var id []byte
			if _, err := asn1.Unmarshal(a.Values.Bytes, &id); err != nil {
				return "", nil, false, errors.New("localKeyId is not an OCTET STRING")
			}
			keyID = id
		case a.ID.Equal(oidJavaTrustedKeyUsage):
			trusted = true
		}
	}
	return alias, keyID, trusted, nil
}

// decodeBMP decodes a BMPString (UTF-16BE).
func decodeBMP(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", errors.New("friendlyName has an odd length")
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	// Some writers include the terminator.
	if n := len(u); n > 0 && u[n-1] == 0 {
		u = u[:n-1]
	}
	return string(utf16.Decode(u)), nil
}

// encodeBMP encodes s as a BMPString, without terminator.
func encodeBMP(s string) []byte {
	var out []byte
	for _, u := range utf16.Encode([]rune(s)) {
		out = append(out, byte(u>>8), byte(u))
	}
	return out
}

// openKey decrypts the key of k with password (Java keeps a key password
// per entry; keytool sets it to the store password). It returns
// errCannotRecoverKey when the password does not decrypt it.
func (k *p12Key) openKey(password []byte) (crypto.PrivateKey, error) {
	der := k.plain
	if k.shroud != nil {
		dec, err := pbeDecrypt(k.shroud.Algorithm, password, k.shroud.EncryptedData)
		switch {
		case errors.Is(err, errBadPadding):
			return nil, errCannotRecoverKey
		case err != nil:
			return nil, err
		}
		defer clear(dec)
		der = dec
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		if k.shroud != nil {
			// A wrong password gives valid padding once in 256 tries.
			return nil, errCannotRecoverKey
		}
		return nil, errors.New("the key is not a PKCS#8 private key")
	}
	return key, nil
}

// chainFor returns the certificate chain of k, leaf first: the certificate
// with k's localKeyId, then its issuers among all certificates of the
// store. It returns nil when no certificate carries k's localKeyId.
func (st *p12Store) chainFor(k *p12Key) []*x509.Certificate {
	if k.leafIdx < 0 {
		return nil
	}
	var all []*x509.Certificate
	for _, c := range st.certs {
		all = append(all, c.cert)
	}
	return buildChain(st.certs[k.leafIdx].cert, all)
}

// buildChain returns leaf followed by its issuers found in pool, in order,
// stopping at a self-issued certificate or when no issuer is found.
func buildChain(leaf *x509.Certificate, pool []*x509.Certificate) []*x509.Certificate {
	chain := []*x509.Certificate{leaf}
	for cur := leaf; len(chain) <= len(pool) && !bytes.Equal(cur.RawIssuer, cur.RawSubject); {
		var next *x509.Certificate
		for _, c := range pool {
			if bytes.Equal(c.RawSubject, cur.RawIssuer) && !slices.ContainsFunc(chain, c.Equal) && cur.CheckSignatureFrom(c) == nil {
				next = c
				break
			}
		}
		if next == nil {
			for _, c := range pool {
				// Name match only (e.g. a SHA-1 signature Go will not
				// check): still the issuer as the writer meant it.
				if bytes.Equal(c.RawSubject, cur.RawIssuer) && !slices.ContainsFunc(chain, c.Equal) {
					next = c
					break
				}
			}
		}
		if next == nil {
			break
		}
		chain = append(chain, next)
		cur = next
	}
	return chain
}

// p12Writer writes deterministic PKCS#12 files.
type p12Writer struct {
	legacy bool
	// iterations of the KDFs; 0 means p12Iterations (tests lower it).
	iterations int
}

func (w p12Writer) iter() int {
	if w.iterations > 0 {
		return w.iterations
	}
	return p12Iterations
}

// seed derives a salt or IV for one use from public data, so that the same
// inputs give the same file. Salts need to be unique per password and
// content, not secret.
func seed(purpose string, n int, public ...[]byte) []byte {
	h := sha256.New()
	h.Write([]byte("keyship/materialize/pkcs12\x00" + purpose + "\x00"))
	for _, p := range public {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return h.Sum(nil)[:n]
}

func (w p12Writer) saltLen() int {
	if w.legacy {
		return 8
	}
	return 16
}

// PKCS12Keystore writes a PKCS#12 keystore holding one private key entry:
// key under alias (folded to lower case, as Java does), with chain, leaf
// first. Key, certificates and MAC are protected with storePass (printable
// ASCII; PKCS#12 keystores use one password, which is how keytool and
// OpenSSL write and read them). enc selects the algorithms; "" is
// PKCS12Modern2023. The output is deterministic: salts and IVs are derived
// from the certificates.
func PKCS12Keystore(alias string, key crypto.PrivateKey, chain []*x509.Certificate, storePass []byte, enc PKCS12Encryption) ([]byte, error) {
	w, err := newP12Writer(enc)
	if err != nil {
		return nil, err
	}
	return w.keystore(strings.ToLower(alias), key, chain, storePass)
}

// PKCS12Truststore writes a PKCS#12 truststore: each certificate a Java
// trustedCertEntry (marked with Java's trust attribute, so that keytool
// -list shows trustedCertEntry), aliased as JKSTruststore aliases them, in
// alias order, protected by storePass (printable ASCII). enc as for
// PKCS12Keystore. The output is deterministic.
func PKCS12Truststore(certs []*x509.Certificate, storePass []byte, enc PKCS12Encryption) ([]byte, error) {
	w, err := newP12Writer(enc)
	if err != nil {
		return nil, err
	}
	return w.truststore(trustAliases(certs), storePass)
}

func newP12Writer(enc PKCS12Encryption) (p12Writer, error) {
	switch enc {
	case "", PKCS12Modern2023:
		return p12Writer{}, nil
	case PKCS12LegacyDES:
		return p12Writer{legacy: true}, nil
	}
	return p12Writer{}, fmt.Errorf("unknown PKCS#12 encryption %q; use %q or %q", enc, PKCS12Modern2023, PKCS12LegacyDES)
}

func (w p12Writer) keystore(alias string, key crypto.PrivateKey, chain []*x509.Certificate, storePass []byte) ([]byte, error) {
	if err := checkKeyEntry(alias, key, chain, storePass); err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	defer clear(keyDER)
	leaf := chain[0]
	keyID := sha1.Sum(leaf.Raw)
	attrs, err := p12Attrs(alias, keyID[:], false)
	if err != nil {
		return nil, err
	}

	var certBags []p12SafeBag
	var raws [][]byte
	for i, c := range chain {
		var a []p12Attribute
		if i == 0 {
			a = attrs
		}
		bag, err := p12CertBagFor(c, a)
		if err != nil {
			return nil, err
		}
		certBags = append(certBags, bag)
		raws = append(raws, c.Raw)
	}
	certSafe, err := w.encryptedSafe("certs", certBags, storePass, raws...)
	if err != nil {
		return nil, err
	}

	alg, err := pbeAlgorithm(w.legacy, seed("key-salt", w.saltLen(), leaf.Raw), seed("key-iv", 16, leaf.Raw), w.iter())
	if err != nil {
		return nil, err
	}
	enc, err := pbeEncrypt(alg, storePass, keyDER)
	if err != nil {
		return nil, err
	}
	shrouded, err := asn1.Marshal(encryptedPrivateKeyInfo{Algorithm: alg, EncryptedData: enc})
	if err != nil {
		return nil, err
	}
	keySafe, err := dataSafe([]p12SafeBag{{ID: oidPKCS8ShroudedKeyBag, Value: explicit0(shrouded), Attributes: attrs}})
	if err != nil {
		return nil, err
	}
	return w.pfx([]p12ContentInfo{certSafe, keySafe}, storePass)
}

func (w p12Writer) truststore(certs []jksCert, storePass []byte) ([]byte, error) {
	if len(certs) == 0 {
		return nil, errors.New("no certificates")
	}
	if reason := checkPassword(storePass); reason != "" {
		return nil, errors.New("store password: " + reason)
	}
	certs = slices.Clone(certs)
	slices.SortStableFunc(certs, func(a, b jksCert) int { return strings.Compare(a.alias, b.alias) })
	var bags []p12SafeBag
	var raws [][]byte
	for i, c := range certs {
		if i > 0 && certs[i-1].alias == c.alias {
			return nil, fmt.Errorf("alias %q appears more than once", c.alias)
		}
		attrs, err := p12Attrs(c.alias, nil, true)
		if err != nil {
			return nil, err
		}
		bag, err := p12CertBagFor(c.cert, attrs)
		if err != nil {
			return nil, err
		}
		bags = append(bags, bag)
		raws = append(raws, c.cert.Raw)
	}
	safe, err := w.encryptedSafe("trusted", bags, storePass, raws...)
	if err != nil {
		return nil, err
	}
	return w.pfx([]p12ContentInfo{safe}, storePass)
}

// p12Attrs makes the attributes of a bag: friendlyName, then localKeyId
// and Java's trust attribute when asked for.
func p12Attrs(alias string, keyID []byte, trusted bool) ([]p12Attribute, error) {
	name, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagBMPString, Bytes: encodeBMP(alias)})
	if err != nil {
		return nil, err
	}
	attrs := []p12Attribute{{ID: oidFriendlyName, Values: set(name)}}
	if keyID != nil {
		id, err := asn1.Marshal(keyID)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, p12Attribute{ID: oidLocalKeyID, Values: set(id)})
	}
	if trusted {
		eku, err := asn1.Marshal(oidAnyExtendedKeyUsage)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, p12Attribute{ID: oidJavaTrustedKeyUsage, Values: set(eku)})
	}
	return attrs, nil
}

func set(der []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: der}
}

func explicit0(der []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
}

func p12CertBagFor(c *x509.Certificate, attrs []p12Attribute) (p12SafeBag, error) {
	der, err := asn1.Marshal(c.Raw)
	if err != nil {
		return p12SafeBag{}, err
	}
	cb, err := asn1.Marshal(p12CertBag{ID: oidX509CertType, Data: explicit0(der)})
	if err != nil {
		return p12SafeBag{}, err
	}
	return p12SafeBag{ID: oidCertBag, Value: explicit0(cb), Attributes: attrs}, nil
}

// dataSafe wraps bags in an unencrypted data ContentInfo.
func dataSafe(bags []p12SafeBag) (p12ContentInfo, error) {
	contents, err := asn1.Marshal(bags)
	if err != nil {
		return p12ContentInfo{}, err
	}
	oct, err := asn1.Marshal(contents)
	if err != nil {
		return p12ContentInfo{}, err
	}
	return p12ContentInfo{ContentType: oidDataContentType, Content: explicit0(oct)}, nil
}

// encryptedSafe wraps bags in an encryptedData ContentInfo.
func (w p12Writer) encryptedSafe(purpose string, bags []p12SafeBag, password []byte, public ...[]byte) (p12ContentInfo, error) {
	contents, err := asn1.Marshal(bags)
	if err != nil {
		return p12ContentInfo{}, err
	}
	alg, err := pbeAlgorithm(w.legacy, seed(purpose+"-salt", w.saltLen(), public...), seed(purpose+"-iv", 16, public...), w.iter())
	if err != nil {
		return p12ContentInfo{}, err
	}
	enc, err := pbeEncrypt(alg, password, contents)
	if err != nil {
		return p12ContentInfo{}, err
	}
	ed, err := asn1.Marshal(p12EncryptedData{EncryptedContentInfo: p12EncryptedContentInfo{
		ContentType:                oidDataContentType,
		ContentEncryptionAlgorithm: alg,
		EncryptedContent:           asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: enc},
	}})
	if err != nil {
		return p12ContentInfo{}, err
	}
	return p12ContentInfo{ContentType: oidEncryptedDataContentType, Content: explicit0(ed)}, nil
}

// pfx assembles the file and its MAC.
func (w p12Writer) pfx(safes []p12ContentInfo, password []byte) ([]byte, error) {
	authSafe, err := asn1.Marshal(safes)
	if err != nil {
		return nil, err
	}
	newHash, macAlg := sha256.New, oidSHA256
	if w.legacy {
		newHash, macAlg = sha1.New, oidSHA1
	}
	md := p12MacData{
		Mac:        p12DigestInfo{Algorithm: pkix.AlgorithmIdentifier{Algorithm: macAlg, Parameters: asn1.NullRawValue}},
		MacSalt:    seed("mac-salt", w.saltLen(), authSafe),
		Iterations: w.iter(),
	}
	bmp := bmpPassword(password)
	defer clear(bmp)
	key := p12KDF(newHash, 3, bmp, md.MacSalt, md.Iterations, newHash().Size())
	defer clear(key)
	mac := hmac.New(newHash, key)
	mac.Write(authSafe)
	md.Mac.Digest = mac.Sum(nil)
	oct, err := asn1.Marshal(authSafe)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(p12PFX{Version: 3, AuthSafe: p12ContentInfo{ContentType: oidDataContentType, Content: explicit0(oct)}, MacData: md})
}
