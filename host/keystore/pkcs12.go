package keystore

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"unicode/utf16"
)

// keyship's own PKCS#12 reader (RFC 7292). keyship WRITES every PKCS#12 file
// with go-pkcs12 (pkcs12write.go), but reads with this code, for what
// go-pkcs12 v0.7.4 cannot read:
//
//   - stores with several entries, as keytool makes them (a key and trusted
//     certificates, several keys, more than two safes): go-pkcs12's
//     DecodeChain takes one key and DecodeTrustStore trusted certificates
//     only;
//   - Java's trust attribute (trustedCertEntry), friendlyName (aliases) and
//     localKeyId (which certificate is a key's): go-pkcs12 returns none;
//   - a key password apart from the store password, told apart from a wrong
//     store password (Java's "Cannot recover key");
//   - a bound on the KDF iteration counts a file asks for (MaxIterations),
//     which go-pkcs12 does not bound;
//   - 40-bit RC2, which keytool -J-Dkeystore.pkcs12.legacy writes
//     (TestKeytoolLegacyPKCS12NeedsRC2), with the PKCS#12 KDF (pbe.go).

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
)

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
	plain   []byte // PKCS#8 DER of an unencrypted key bag (a copy: zeroed)
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

// OpenPKCS12 opens a PKCS#12 file with its store password: it checks the
// MAC (ErrWrongPassword when the password does not match), decrypts the
// encrypted safes and collects the key and certificate bags. A key entry's
// alias is its friendlyName, else that of its certificate; its chain is the
// certificate with its localKeyId followed by its issuers among the file's
// certificates, or when none carries it, what Unlock finds by public key.
// Trusted entries are the certificates Java's trust attribute marks, under
// their friendlyName as the file spells it. It never panics, and allocates
// no more than a small multiple of len(data) besides the KDF work, which
// MaxIterations bounds.
func OpenPKCS12(data, storePass []byte) (*Store, error) {
	p, err := decodePKCS12(data, storePass)
	if err != nil {
		return nil, err
	}
	all := make([]*x509.Certificate, len(p.certs))
	for i, c := range p.certs {
		all[i] = c.cert
	}
	st := &Store{Format: PKCS12}
	for i := range p.keys {
		k := &p.keys[i]
		e := &KeyEntry{Alias: k.alias, open: k.openKey, pool: all, zero: func() { clear(k.plain) }}
		if k.leafIdx >= 0 {
			if e.Alias == "" {
				e.Alias = p.certs[k.leafIdx].alias
			}
			e.Chain = buildChain(p.certs[k.leafIdx].cert, all)
		}
		st.Keys = append(st.Keys, e)
	}
	for _, c := range p.certs {
		switch {
		case c.trusted:
			st.Trusted = append(st.Trusted, TrustedEntry{Alias: c.alias, Cert: c.cert})
		case c.keyID == nil:
			st.Other = append(st.Other, c.cert)
		}
	}
	return st, nil
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

// decodePKCS12 is OpenPKCS12 before the entries are assembled.
func decodePKCS12(data, password []byte) (*p12Store, error) {
	var pfx p12PFX
	if err := unmarshalAll(data, &pfx); err != nil {
		return nil, fmt.Errorf("not a DER PKCS#12 file: %v", err)
	}
	if pfx.Version != 3 {
		return nil, fmt.Errorf("PKCS#12 version %d, want 3", pfx.Version)
	}
	if !pfx.AuthSafe.ContentType.Equal(oidDataContentType) {
		return nil, fmt.Errorf("%w: PKCS#12 protected by public keys (content type %s); only password-protected files are read", ErrUnsupportedAlgorithm, pfx.AuthSafe.ContentType)
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
					return nil, ErrWrongPassword
				}
				return nil, fmt.Errorf("safe %d: the password opens the file but does not decrypt it", i)
			}
			if err != nil {
				return nil, fmt.Errorf("safe %d: %w", i, err)
			}
		default:
			return nil, fmt.Errorf("%w: safe %d has content type %s", ErrUnsupportedAlgorithm, i, ci.ContentType)
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
		return fmt.Errorf("%w: PBMAC1 integrity (OpenSSL 3.4+ -pbmac1_pbkdf2, Java 26+); write the store with HMAC-SHA256 integrity", ErrUnsupportedAlgorithm)
	}
	newHash, _ := digestFor(alg)
	if newHash == nil {
		return fmt.Errorf("%w: MAC digest %s", ErrUnsupportedAlgorithm, alg)
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
		return ErrWrongPassword
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
			// A copy: the contents of an encrypted safe are zeroed, and
			// those of a plain one are the caller's.
			st.keys = append(st.keys, p12Key{alias: alias, keyID: keyID, plain: bytes.Clone(value)})
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

// openKey decrypts the key of k with password (Java keeps a key password
// per entry; keytool sets it to the store password). It returns
// ErrCannotRecoverKey when the password does not decrypt it.
func (k *p12Key) openKey(password []byte) (crypto.PrivateKey, error) {
	der := k.plain
	if k.shroud != nil {
		dec, err := pbeDecrypt(k.shroud.Algorithm, password, k.shroud.EncryptedData)
		switch {
		case errors.Is(err, errBadPadding):
			return nil, ErrCannotRecoverKey
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
			return nil, ErrCannotRecoverKey
		}
		return nil, errors.New("the key is not a PKCS#8 private key")
	}
	return key, nil
}
