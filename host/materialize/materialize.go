// Package materialize turns the resolved secrets of a spec into checked stores
// the job can use: it opens the keystore, truststore and CA bundle with their
// passwords, checks what a JVM would otherwise fail on at the first TLS
// handshake, and writes fresh, deterministic stores into a Bundle.
//
// Quickstart:
//
//	bundle, err := materialize.Build(ctx, s, secrets, materialize.Options{})
//	if err != nil {
//		// errors.As(err, new(*spec.Errors)) lists every problem of the spec,
//		// each naming the setting and the ref; none holds secret bytes.
//	}
//	defer bundle.Zero()
//	// ship bundle.Files; put bundle.KeystorePassword etc. into the
//	// consumer's settings.
//
// Today the inputs must be JKS and the outputs are JKS (keystore.jks,
// truststore.jks, ca-bundle.jks).
package materialize

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// Secrets maps each ref of a spec to its resolved secret. Build reads it and
// never modifies or zeroes it: the caller owns the secrets.
type Secrets map[spec.Ref]plugin.Secret

// Options tunes Build. The zero value is valid.
type Options struct{}

// Sensitive is secret bytes: a password or a store's contents. It converts
// to and from []byte freely, but formats as "[redacted]" with every fmt verb
// and in log/slog, so that printing a Bundle or a File never shows it.
type Sensitive []byte

// Format writes "[redacted]" whatever the verb.
func (Sensitive) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// LogValue keeps the bytes out of log/slog output.
func (Sensitive) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Role says what a File is for, so that a shipper can point the consumer's
// setting (spark.ssl.keyStore, security.ssl.truststore, ...) at it whatever
// its format.
type Role string

// The roles of the files of a Bundle.
const (
	RoleKeystore   Role = "keystore"
	RoleTruststore Role = "truststore"
	RoleCABundle   Role = "ca-bundle"
)

// The paths of the files Build writes today, relative to wherever the shipper
// puts them.
const (
	KeystoreJKS   = "keystore.jks"
	TruststoreJKS = "truststore.jks"
	CABundleJKS   = "ca-bundle.jks"
)

// FileMode is the mode of every File Build writes: the stores are secrets.
const FileMode fs.FileMode = 0o600

// File is one file to ship.
type File struct {
	// Path is relative and clean, e.g. "keystore.jks".
	Path string
	// Role is what the file is for.
	Role Role
	// Mode is the file's permission bits.
	Mode fs.FileMode
	// Contents is the file's bytes. Bundle.Zero clears it.
	Contents Sensitive
	// Version changes whenever an input of the file changes. It is derived
	// from the opaque versions of the input secrets, never from secret bytes,
	// and is empty when some input secret has no version (then the shipper
	// cannot tell whether the file changed and should rewrite it).
	Version string
}

// CertInfo is the non-secret description of one certificate, for responses,
// logs and later checks.
type CertInfo struct {
	Subject      string
	Issuer       string
	SerialNumber string // hexadecimal
	NotBefore    time.Time
	NotAfter     time.Time
	DNSNames     []string
	IPAddresses  []net.IP
	IsCA         bool
}

// Bundle is what Build made of a spec: the files to ship and the passwords
// the consumer's settings need. Call Zero once the bundle is shipped.
type Bundle struct {
	// Files are the stores, keystore first, then truststore and CA bundle
	// when the spec has them.
	Files []File
	// KeystorePassword opens the keystore file.
	KeystorePassword Sensitive
	// KeyPassword opens the private key in the keystore file. It is the
	// keystore password when the spec sets no key password.
	KeyPassword Sensitive
	// TruststorePassword opens the truststore and CA bundle files, or is nil
	// when the spec has no truststore.
	TruststorePassword Sensitive

	// KeyAlias is the alias of the private key entry in the keystore file
	// (in lower case, as Java's JKS writes aliases).
	KeyAlias string
	// Chain describes the key's certificate chain, leaf first.
	Chain []CertInfo
	// Trusted describes the trusted certificates of the truststore, then
	// those of the CA bundle.
	Trusted []CertInfo
	// Warnings are problems that do not stop the job, in words for an
	// operator. They hold no secret bytes.
	Warnings []string
}

// File returns the bundle's file with role r, or nil.
func (b *Bundle) File(r Role) *File {
	for i := range b.Files {
		if b.Files[i].Role == r {
			return &b.Files[i]
		}
	}
	return nil
}

// Zero overwrites the passwords and file contents of b with zeros and drops
// them. Build made them, so nothing else shares them; b must not be used for
// shipping afterwards.
func (b *Bundle) Zero() {
	if b == nil {
		return
	}
	for i := range b.Files {
		clear(b.Files[i].Contents)
		b.Files[i].Contents = nil
	}
	clear(b.KeystorePassword)
	clear(b.KeyPassword)
	clear(b.TruststorePassword)
	b.KeystorePassword, b.KeyPassword, b.TruststorePassword = nil, nil, nil
}

// Build checks the stores that secrets hold for s and writes the stores the
// job will use. It guarantees, before anything ships:
//   - every password is printable ASCII (Java's JKS and PKCS12 need that);
//   - the keystore opens with its store password, holds exactly one private
//     key entry, the key opens with the key password and matches the leaf
//     certificate of its chain;
//   - the truststore (when the spec has one) opens with its password and
//     holds at least one trusted certificate; the CA bundle opens with the
//     truststore password.
//
// The keystore file holds the private key entry only; the truststore and CA
// bundle files hold the trusted certificate entries only (private keys found
// there are left out, with a warning). Entries keep their aliases, in lower
// case as Java's JKS writes them.
//
// When checks fail, Build returns a *spec.Errors with every problem found,
// each a *spec.FieldError naming the setting and its ref in the words of the
// JVM's own messages. Errors never hold secret bytes or passwords.
//
// Build does not modify secrets. The outputs depend only on the inputs: two
// Builds of the same secrets give byte-identical files.
func Build(ctx context.Context, s *spec.Spec, secrets Secrets, opts Options) (*Bundle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errors.New("materialize: nil spec")
	}
	switch strings.ToLower(s.StoreType) {
	case "", "jks":
	default:
		return nil, fmt.Errorf("materialize: store type %q: %w (only jks today)", s.StoreType, errors.ErrUnsupported)
	}

	b := &builder{spec: s, secrets: secrets}
	defer b.zero()
	ks := b.openKeystore()
	var ts, ca []jksCert
	if s.Truststore != nil {
		ts = b.openTrusted(s.Truststore.Secret, s.Truststore.Password, "truststore")
	}
	if s.CABundle != nil {
		if s.Truststore == nil {
			b.fail(*s.CABundle, "a CA bundle opens with the truststore password, and the spec sets no truststore")
		} else {
			ca = b.openTrusted(*s.CABundle, s.Truststore.Password, "CA bundle")
		}
	}
	if len(b.errs.List) > 0 {
		return nil, &b.errs
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return b.bundle(ks, ts, ca)
}

// builder holds the state of one Build: the problems found so far and the
// password copies it made.
type builder struct {
	spec     *spec.Spec
	secrets  Secrets
	errs     spec.Errors
	warnings []string
	// passwords are the checked copies of password secrets, by ref (nil
	// when the check failed); zero clears them.
	passwords map[spec.Ref][]byte
}

// keyMaterial is the opened private key entry of the keystore.
type keyMaterial struct {
	alias string
	key   crypto.PrivateKey // matches chain[0]
	chain []*x509.Certificate
}

func (b *builder) fail(f spec.Field, reason string) {
	b.errs.List = append(b.errs.List, &spec.FieldError{Field: f.Name, Ref: f.Ref.String(), Reason: reason})
}

// secret returns the data of f's secret, or reports that there is none.
func (b *builder) secret(f spec.Field) ([]byte, bool) {
	sec, ok := b.secrets[f.Ref]
	switch {
	case !ok:
		b.fail(f, "no secret was resolved for this ref")
		return nil, false
	case len(sec.Data) == 0:
		b.fail(f, "the secret is empty")
		return nil, false
	}
	return sec.Data, true
}

// password returns a copy of the password that f refers to, once checked. A
// password that two settings share is checked and reported once.
func (b *builder) password(f spec.Field) ([]byte, bool) {
	if pw, ok := b.passwords[f.Ref]; ok {
		return pw, pw != nil
	}
	if b.passwords == nil {
		b.passwords = make(map[spec.Ref][]byte)
	}
	b.passwords[f.Ref] = nil
	data, ok := b.secret(f)
	if !ok {
		return nil, false
	}
	if reason := checkPassword(data); reason != "" {
		b.fail(f, reason)
		return nil, false
	}
	pw := append([]byte(nil), data...)
	b.passwords[f.Ref] = pw
	return pw, true
}

// checkPassword says why pw cannot be a JKS or PKCS12 password, or returns
// "". The reason never quotes the password.
func checkPassword(pw []byte) string {
	if len(pw) == 0 {
		return "the password is empty"
	}
	for _, c := range pw {
		if c < 0x20 || c > 0x7e {
			reason := "the password holds a character outside printable ASCII (0x20-0x7E), which Java keystores do not accept"
			if n := len(pw); pw[n-1] == '\n' || pw[n-1] == '\r' {
				reason += "; it ends with a line break: store it without one"
			}
			return reason
		}
	}
	return ""
}

// zero clears the password copies of the builder.
func (b *builder) zero() {
	for _, pw := range b.passwords {
		clear(pw)
	}
}

// openKeystore checks the keystore of the spec and returns its key entry, or
// nil after reporting why it cannot be used.
func (b *builder) openKeystore() *keyMaterial {
	st := b.spec.Keystore
	data, okData := b.secret(st.Secret)
	storePass, okStore := b.password(st.Password)
	keyPassField := st.Password
	if st.KeyPassword != nil {
		keyPassField = *st.KeyPassword
	}
	keyPass, okKey := b.password(keyPassField)
	if !okData || !b.wellFormed(st.Secret, data, "keystore") || !okStore {
		return nil
	}
	store, err := decodeJKS(data, storePass)
	if err != nil {
		b.storeError(st.Secret, st.Password, "keystore", err)
		return nil
	}
	if len(store.keys) != 1 {
		b.fail(st.Secret, keyCountReason(store))
		return nil
	}
	entry := store.keys[0]
	if !okKey {
		return nil
	}
	key, err := store.openKey(entry, keyPass)
	switch {
	case errors.Is(err, errCannotRecoverKey):
		reason := fmt.Sprintf("the password does not open private key %q in keystore %s (Cannot recover key)", entry.alias, st.Secret.Ref)
		if st.KeyPassword == nil {
			reason += "; the spec sets no key password, so the keystore password was tried"
		}
		b.fail(keyPassField, reason)
		return nil
	case err != nil:
		b.fail(st.Secret, fmt.Sprintf("private key entry %q: %v", entry.alias, err))
		return nil
	}
	if !publicKeyMatches(key, entry.chain[0]) {
		b.fail(st.Secret, fmt.Sprintf("the private key of entry %q does not match the public key of its certificate %q",
			entry.alias, entry.chain[0].Subject.String()))
		return nil
	}
	return &keyMaterial{alias: entry.alias, key: key, chain: entry.chain}
}

// keyCountReason explains a keystore that does not hold exactly one private
// key entry.
func keyCountReason(store *jksStore) string {
	if len(store.keys) > 1 {
		return fmt.Sprintf("the keystore holds %d private key entries (%s); it must hold exactly one private key and its certificate chain",
			len(store.keys), store.keyAliases())
	}
	reason := "the keystore holds no private key entry (PrivateKeyEntry); it must hold exactly one private key and its certificate chain"
	if len(store.certs) > 0 {
		reason += fmt.Sprintf(" (it holds only trusted certificate entries: %s; is it a truststore?)", store.certAliases())
	}
	return reason
}

// openTrusted checks a truststore or CA bundle and returns its trusted
// certificate entries, or nil after reporting why it cannot be used.
func (b *builder) openTrusted(secret, password spec.Field, kind string) []jksCert {
	data, okData := b.secret(secret)
	pass, okPass := b.password(password)
	if !okData || !b.wellFormed(secret, data, kind) || !okPass {
		return nil
	}
	store, err := decodeJKS(data, pass)
	if err != nil {
		b.storeError(secret, password, kind, err)
		return nil
	}
	if len(store.certs) == 0 {
		b.fail(secret, fmt.Sprintf("the %s holds no trusted certificate entry (trustedCertEntry)", kind))
		return nil
	}
	if len(store.keys) > 0 {
		b.warnings = append(b.warnings, fmt.Sprintf("%s %s: private key entries %s are left out: a %s holds trusted certificates only",
			kind, secret.Ref, store.keyAliases(), kind))
	}
	return store.certs
}

// wellFormed reports whether data is a well-formed JKS store, and why not.
// It needs no password, so that a corrupt store is reported even when its
// password is wrong too.
func (b *builder) wellFormed(secret spec.Field, data []byte, kind string) bool {
	if reason := notJKS(data, kind); reason != "" {
		b.fail(secret, reason)
		return false
	}
	if _, _, err := scanJKS(data); err != nil {
		b.fail(secret, fmt.Sprintf("the %s is corrupt: %v", kind, err))
		return false
	}
	return true
}

// storeError reports an error of decodeJKS against the setting that caused
// it: the password for a digest mismatch, the store otherwise.
func (b *builder) storeError(secret, password spec.Field, kind string, err error) {
	if errors.Is(err, errJKSDigest) {
		b.fail(password, fmt.Sprintf("the password does not open %s %s (keystore was tampered with, or password was incorrect)", kind, secret.Ref))
		return
	}
	b.fail(secret, fmt.Sprintf("the %s is corrupt: %v", kind, err))
}

// bundle writes the output stores of checked inputs.
func (b *builder) bundle(ks *keyMaterial, ts, ca []jksCert) (*Bundle, error) {
	s := b.spec
	out := &Bundle{Warnings: b.warnings, KeyAlias: strings.ToLower(ks.alias)}
	storePass := b.passwords[s.Keystore.Password.Ref]
	keyPassField := s.Keystore.Password
	if s.Keystore.KeyPassword != nil {
		keyPassField = *s.Keystore.KeyPassword
	}
	keyPass := b.passwords[keyPassField.Ref]

	contents, err := writeJKSKeystore(ks.alias, ks.key, ks.chain, storePass, keyPass)
	if err != nil {
		return nil, fmt.Errorf("materialize: write %s: %w", KeystoreJKS, err)
	}
	out.Files = append(out.Files, File{
		Path: KeystoreJKS, Role: RoleKeystore, Mode: FileMode, Contents: contents,
		Version: b.version(KeystoreJKS, s.Keystore.Secret, s.Keystore.Password, keyPassField),
	})
	for _, c := range ks.chain {
		out.Chain = append(out.Chain, certInfo(c))
	}
	if s.Truststore != nil {
		tsPass := b.passwords[s.Truststore.Password.Ref]
		for _, w := range []struct {
			path   string
			role   Role
			secret spec.Field
			certs  []jksCert
		}{
			{TruststoreJKS, RoleTruststore, s.Truststore.Secret, ts},
			{CABundleJKS, RoleCABundle, derefField(s.CABundle), ca},
		} {
			if w.certs == nil {
				continue
			}
			contents, err := writeJKSTrusted(w.certs, tsPass)
			if err != nil {
				out.Zero()
				return nil, fmt.Errorf("materialize: write %s: %w", w.path, err)
			}
			out.Files = append(out.Files, File{
				Path: w.path, Role: w.role, Mode: FileMode, Contents: contents,
				Version: b.version(w.path, w.secret, s.Truststore.Password),
			})
			for _, c := range w.certs {
				out.Trusted = append(out.Trusted, certInfo(c.cert))
			}
		}
	}
	// The Bundle gets its own copies; the builder zeroes its copies.
	out.KeystorePassword = Sensitive(bytes.Clone(storePass))
	out.KeyPassword = Sensitive(bytes.Clone(keyPass))
	if s.Truststore != nil {
		out.TruststorePassword = Sensitive(bytes.Clone(b.passwords[s.Truststore.Password.Ref]))
	}
	return out, nil
}

func derefField(f *spec.Field) spec.Field {
	if f == nil {
		return spec.Field{}
	}
	return *f
}

// version derives a File.Version from the versions of the secrets behind
// fields: a short SHA-256 over the output's name and each ref with its
// opaque version. It is "" when some secret has no version.
func (b *builder) version(path string, fields ...spec.Field) string {
	h := sha256.New()
	fmt.Fprintf(h, "keyship/materialize/v1\x00%s\x00", path)
	for _, f := range fields {
		v := b.secrets[f.Ref].Version
		if v == "" {
			return ""
		}
		fmt.Fprintf(h, "%s\x00%d:%s\x00", f.Ref, len(v), v)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func certInfo(c *x509.Certificate) CertInfo {
	return CertInfo{
		Subject:      c.Subject.String(),
		Issuer:       c.Issuer.String(),
		SerialNumber: c.SerialNumber.Text(16),
		NotBefore:    c.NotBefore,
		NotAfter:     c.NotAfter,
		DNSNames:     c.DNSNames,
		IPAddresses:  c.IPAddresses,
		IsCA:         c.IsCA,
	}
}
