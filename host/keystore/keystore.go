// Package keystore reads and writes the stores Java and OpenSSL use: JKS
// (with keystore-go), PKCS#12 (written with go-pkcs12, read by keyship's own
// reader, see pkcs12.go), PEM and single DER certificates. It knows formats,
// passwords, entries and aliases; what a job needs of a store (exactly one
// key, a trusted chain, the hosts it covers) is host/materialize's business.
//
// Every reader gives the same model, a Store of private key entries and
// trusted certificate entries, and its errors use the words Java and OpenSSL
// use, which operators search for: ErrWrongPassword ("keystore was tampered
// with, or password was incorrect"), ErrCannotRecoverKey ("Cannot recover
// key"). No error, panic or log holds a password or secret bytes.
//
// Quickstart:
//
//	st, err := keystore.Open(data, storePass) // JKS, PKCS12, PEM or DER, told by content
//	if errors.Is(err, keystore.ErrWrongPassword) {
//		// the store password does not open the store
//	}
//	defer st.Zero()
//	if len(st.Keys) == 1 {
//		if err := st.Keys[0].Unlock(keyPass); errors.Is(err, keystore.ErrCannotRecoverKey) {
//			// the key password does not open the key
//		}
//		key, chain := st.Keys[0].Key, st.Keys[0].Chain
//		p12, err := keystore.PKCS12Keystore(key, chain, storePass, keystore.PKCS12Modern2023)
//	}
package keystore

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

var (
	// ErrWrongPassword means the integrity digest (JKS) or MAC (PKCS#12)
	// of a store does not match its store password: Java's "keystore was
	// tampered with, or password was incorrect".
	ErrWrongPassword = errors.New("keystore was tampered with, or password was incorrect")
	// ErrCannotRecoverKey means the password does not open a private key:
	// Java's "Cannot recover key".
	ErrCannotRecoverKey = errors.New("cannot recover key")
	// ErrNoKeyPassword means an encrypted PEM key (ENCRYPTED PRIVATE KEY)
	// and no password to open it.
	ErrNoKeyPassword = errors.New("the private key is encrypted (ENCRYPTED PRIVATE KEY) and no password was given for it")
	// ErrUnsupportedAlgorithm marks a store or key protected with an
	// algorithm keyship does not read; the error wrapping it names the
	// algorithm.
	ErrUnsupportedAlgorithm = errors.New("unsupported algorithm")
)

// Format is the format of a store, told by its content.
type Format int

// The formats Detect tells apart.
const (
	Unknown Format = iota
	JKS
	// JCEKS is Java's JCEKS keystore, which keyship does not read.
	JCEKS
	PKCS12
	PEM
	// DERCertificate is a single DER certificate, as keytool -exportcert
	// writes it.
	DERCertificate
)

// String names the format in messages: "JKS", "PKCS12", "DER certificate".
func (f Format) String() string {
	switch f {
	case JKS:
		return "JKS"
	case JCEKS:
		return "JCEKS"
	case PKCS12:
		return "PKCS12"
	case PEM:
		return "PEM"
	case DERCertificate:
		return "DER certificate"
	}
	return "unknown"
}

// The magic numbers of Java's keystore formats.
const (
	jksMagic   = 0xFEEDFEED
	jceksMagic = 0xCECECECE
)

// Detect tells the format of a store from its bytes: the JKS or JCEKS
// magic, a PKCS#12 PFX, PEM text, or a single DER certificate. It never
// guesses base64: base64 text is Unknown, and Base64Format tells what it
// holds.
func Detect(data []byte) Format {
	if len(data) >= 4 {
		switch binary.BigEndian.Uint32(data) {
		case jksMagic:
			return JKS
		case jceksMagic:
			return JCEKS
		}
	}
	if len(data) > 0 && data[0] == 0x30 {
		if isPKCS12(data) {
			return PKCS12
		}
		if _, err := x509.ParseCertificate(data); err == nil {
			return DERCertificate
		}
		return Unknown
	}
	if isPEM(data) {
		return PEM
	}
	return Unknown
}

// Store is what a store holds, opened with its store password. Private keys
// stay protected until KeyEntry.Unlock. Call Zero when done.
type Store struct {
	// Format is the store's format.
	Format Format
	// Keys are the private key entries: JKS PrivateKeyEntry, PKCS#12 key
	// bags, PEM private keys. JKS entries are in alias order, the others in
	// file order.
	Keys []*KeyEntry
	// Trusted are the trusted certificate entries: JKS trustedCertEntry,
	// PKCS#12 certificates Java's trust attribute marks (keytool -list shows
	// them as trustedCertEntry). PEM text and a DER certificate carry no
	// trust marks and no aliases: each of their certificates is a trusted
	// entry without alias, in file order.
	Trusted []TrustedEntry
	// Other are the certificates of a PKCS#12 file that neither carry
	// Java's trust attribute nor belong to a key by localKeyId, as openssl
	// pkcs12 -export -nokeys writes a truststore.
	Other []*x509.Certificate
	// Ignored lists the types of PEM blocks that are neither private keys
	// nor certificates.
	Ignored []string
}

// Zero clears the key material the store holds unprotected (PEM keys,
// unencrypted PKCS#12 key bags). Keys already unlocked are the caller's.
func (s *Store) Zero() {
	if s == nil {
		return
	}
	for _, k := range s.Keys {
		if k.zero != nil {
			k.zero()
		}
	}
}

// KeyEntry is a private key entry of a store.
type KeyEntry struct {
	// Alias is the entry's alias as the store holds it (JKS, or a PKCS#12
	// friendlyName), or "" when it has none (PEM, a PKCS#12 key bag without
	// friendlyName: keytool -list shows such an entry as "1").
	Alias string
	// Chain is the entry's certificate chain, leaf first: as the store ties
	// it to the key (JKS, PKCS#12 localKeyId), or once Unlock has run, the
	// certificate of the store that matches the key followed by its issuers.
	// It is nil when no certificate belongs to the key.
	Chain []*x509.Certificate
	// Key is the private key once Unlock has opened it, else nil.
	Key crypto.PrivateKey

	open func(password []byte) (crypto.PrivateKey, error)
	// pool are the certificates Unlock orders a chain from when the store
	// did not tie one to the key.
	pool []*x509.Certificate
	zero func()
}

// Unlock opens the entry's private key with password and sets Key. A JKS or
// PKCS#12 key has a password of its own (keytool sets it to the store
// password); an encrypted PEM key opens with password, a plain one ignores
// it; nil means no password was given. When the store did not tie a chain
// to the key, Unlock sets Chain from the store's certificates. It returns
// ErrCannotRecoverKey when the password does not open the key,
// ErrNoKeyPassword for an encrypted PEM key and a nil password, and an error
// wrapping ErrUnsupportedAlgorithm for a key protected in a way keyship does
// not read. Unlock on an open entry does nothing.
func (e *KeyEntry) Unlock(password []byte) error {
	if e.Key != nil {
		return nil
	}
	if e.open == nil {
		return errors.New("the entry holds no private key")
	}
	key, err := e.open(password)
	if err != nil {
		return err
	}
	e.Key = key
	if e.Chain == nil {
		e.Chain = OrderChain(key, e.pool)
	}
	return nil
}

// TrustedEntry is a trusted certificate entry of a store.
type TrustedEntry struct {
	// Alias is the entry's alias, or "" when the store names none.
	Alias string
	Cert  *x509.Certificate
}

// Open opens a store in whichever format Detect finds: JKS and PKCS#12 with
// password (OpenJKS, OpenPKCS12), PEM text (OpenPEM, the password is not
// used: an encrypted PEM key opens with KeyEntry.Unlock) or a single DER
// certificate (one trusted entry).
func Open(data, password []byte) (*Store, error) {
	switch f := Detect(data); f {
	case JKS:
		return OpenJKS(data, password)
	case PKCS12:
		return OpenPKCS12(data, password)
	case PEM:
		return OpenPEM(data)
	case DERCertificate:
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("not a valid X.509 certificate: %v", err)
		}
		return &Store{Format: DERCertificate, Trusted: []TrustedEntry{{Cert: c}}}, nil
	case JCEKS:
		return nil, errors.New("a JCEKS keystore, which keyship does not read (Invalid keystore format); convert it with keytool -importkeystore -deststoretype PKCS12")
	}
	return nil, errors.New("not a JKS, PKCS12 or PEM store, nor a DER certificate (Invalid keystore format)")
}

// CheckPassword says why pw cannot be a PKCS12 password (nor a JKS one
// where the format is not known), or returns "": Java's PKCS12 keystore
// takes only printable ASCII (JDK 17 PKCS12KeyStore derives its keys
// through com.sun.crypto.provider.PBEKey, which throws "Password is not
// ASCII"). The reason never quotes the password.
func CheckPassword(pw []byte) string {
	if len(pw) == 0 {
		return "the password is empty"
	}
	for _, c := range pw {
		if c < 0x20 || c > 0x7e {
			reason := "the password holds a character outside printable ASCII (0x20-0x7E), which Java's PKCS12 keystores do not accept (\"Password is not ASCII\")"
			if n := len(pw); pw[n-1] == '\n' || pw[n-1] == '\r' {
				reason += "; it ends with a line break: store it without one"
			} else if utf8.Valid(pw) && CheckJKSPassword(pw) == "" {
				reason += "; a JKS store (store_type jks) takes it"
			}
			return reason
		}
	}
	return ""
}

// CheckJKSPassword says why pw (UTF-8) cannot be the password of a JKS store
// keyship opens or writes, or returns "". Java's JKS
// (sun.security.provider.JavaKeyStore, KeyProtector) takes any characters,
// each as its UTF-16 code unit; keyship's JKS codec (keystore-go) takes one
// byte per character, so keyship accepts the printable characters of ISO
// 8859-1: printable ASCII and U+00A0 to U+00FF (é, ß, ü, ...). The reason
// never quotes the password.
func CheckJKSPassword(pw []byte) string {
	if len(pw) == 0 {
		return "the password is empty"
	}
	if !utf8.Valid(pw) {
		return "the password is not valid UTF-8 text"
	}
	for i := 0; i < len(pw); {
		r, size := utf8.DecodeRune(pw[i:])
		i += size
		switch {
		case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0xff:
		case r > 0xff:
			return "the password holds a character beyond U+00FF: Java's JKS takes it, but keyship's JKS codec writes one byte per character " +
				"(ISO 8859-1), so it could neither open nor write that store; use printable ASCII or ISO 8859-1 characters"
		default:
			reason := "the password holds a character outside printable ASCII (0x20-0x7E) and ISO 8859-1's printable U+00A0-U+00FF: a control character, which no consumer's configuration carries back unchanged"
			if n := len(pw); pw[n-1] == '\n' || pw[n-1] == '\r' {
				reason += "; it ends with a line break: store it without one"
			}
			return reason
		}
	}
	return ""
}

// jksPassword returns pw (UTF-8) as keystore-go takes a password: one byte
// per character, so that its "0, byte" per character is the UTF-16 code unit
// Java's JKS digests. ok is false when pw has a character beyond U+00FF or
// is not UTF-8 (CheckJKSPassword says why). The copy must be cleared after
// use.
func jksPassword(pw []byte) ([]byte, bool) {
	if !utf8.Valid(pw) {
		return nil, false
	}
	out := make([]byte, 0, len(pw))
	for i := 0; i < len(pw); {
		r, size := utf8.DecodeRune(pw[i:])
		i += size
		if r > 0xff {
			clear(out)
			return nil, false
		}
		out = append(out, byte(r))
	}
	return out, true
}

// KeyMatches reports whether key is the private half of cert's public key.
func KeyMatches(key crypto.PrivateKey, cert *x509.Certificate) bool {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return false
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// OrderChain returns the certificate of certs that matches key followed by
// its issuers among certs, or nil when none matches.
func OrderChain(key crypto.PrivateKey, certs []*x509.Certificate) []*x509.Certificate {
	for _, c := range certs {
		if KeyMatches(key, c) {
			return buildChain(c, certs)
		}
	}
	return nil
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

// AliasCertificates names each certificate for a truststore: its common
// name in lower case, or "ca" when it has none; a taken alias gets "-1",
// "-2", ... appended. Repeated certificates are kept, each under its own
// alias.
func AliasCertificates(certs []*x509.Certificate) []TrustedEntry {
	entries := make([]TrustedEntry, len(certs))
	for i, c := range certs {
		entries[i] = TrustedEntry{Cert: c}
	}
	return aliasEntries(entries)
}

// UniqueTrusted drops repeated certificates from entries (the first is
// kept) and makes the aliases unique and lower case: each entry keeps its
// own alias, else takes its common name, else "ca"; a taken alias gets "-1",
// "-2", ... appended.
func UniqueTrusted(entries []TrustedEntry) []TrustedEntry {
	var out []TrustedEntry
	for _, e := range entries {
		if !slices.ContainsFunc(out, func(o TrustedEntry) bool { return o.Cert.Equal(e.Cert) }) {
			out = append(out, e)
		}
	}
	return aliasEntries(out)
}

func aliasEntries(entries []TrustedEntry) []TrustedEntry {
	out := make([]TrustedEntry, 0, len(entries))
	taken := make(map[string]bool)
	for _, e := range entries {
		base := strings.ToLower(e.Alias)
		if base == "" {
			base = strings.ToLower(e.Cert.Subject.CommonName)
		}
		if base == "" {
			base = "ca"
		}
		alias := base
		for i := 1; taken[alias]; i++ {
			alias = fmt.Sprintf("%s-%d", base, i)
		}
		taken[alias] = true
		out = append(out, TrustedEntry{Alias: alias, Cert: e.Cert})
	}
	return out
}
