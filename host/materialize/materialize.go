// Package materialize turns the resolved secrets of a spec into checked stores
// the job can use: it opens the keystore, truststore and CA bundle in whatever
// form the secret store holds them (JKS, PKCS12, PEM, a DER certificate, raw
// or base64, or a certificate just issued), runs the pre-flight checks that
// catch what a JVM or OpenSSL would otherwise fail on at the first TLS
// handshake, and writes fresh, deterministic stores into a Bundle in the
// forms the consumer reads (JKS, PKCS12, PEM).
//
// Quickstart:
//
//	s.Hosts = []string{"node1.example.com"} // spec.NewRequest fills them
//	bundle, err := materialize.Build(ctx, s, secrets, materialize.Options{})
//	if err != nil {
//		// errors.As(err, new(*spec.Errors)) lists every problem of the spec,
//		// each naming the setting and the ref; none holds secret bytes.
//		// errors.As(err, new(*materialize.Error)) adds the warnings.
//	}
//	defer bundle.Zero()
//	// ship bundle.Files; bundle.File(materialize.RoleKeystore) is the
//	// keystore; put bundle.KeystorePassword etc. into the consumer's
//	// settings.
package materialize

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// Secrets maps each ref of a spec to its resolved secret. Build reads it and
// never modifies or zeroes it: the caller owns the secrets.
type Secrets map[spec.Ref]plugin.Secret

// DefaultExpiryWarning is how long before a certificate expires Build starts
// to warn, when Options.ExpiryWarning is zero.
const DefaultExpiryWarning = 30 * 24 * time.Hour

// DefaultKeyAlias is the alias of the private key entry written when the
// input has none (PEM, an issued certificate) and Options.KeyAlias is empty.
const DefaultKeyAlias = "keyship"

// Options tunes Build. The zero value is valid.
type Options struct {
	// Now returns the time the expiry check runs at; nil means time.Now.
	Now func() time.Time
	// ExpiryWarning is how long before a certificate's NotAfter Build warns;
	// 0 means DefaultExpiryWarning and a negative value turns the warning
	// off.
	ExpiryWarning time.Duration
	// Deadline, when set, is when the job may still run: a certificate that
	// expires before it fails the build.
	Deadline time.Time
	// Issued holds the certificates issued for the spec's Issue settings,
	// keyed by the Issue's Field.Name. The host fills it by calling the
	// backend's Issue; Build neither modifies nor zeroes it.
	Issued map[string]plugin.Issued
	// Outputs lists the formats to write, in order; empty means the spec's
	// store type (jks when it names none). Add FormatPEM for consumers that
	// read PEM files (libprocess, OpenSSL).
	Outputs []Format
	// PKCS12 selects the algorithms of PKCS#12 files; "" means
	// PKCS12Modern2023.
	PKCS12 PKCS12Encryption
	// KeyAlias is the alias of the JKS keystore's private key entry; ""
	// keeps the input's alias, or DefaultKeyAlias when the input has none.
	// PKCS12 keystores are written without alias (keytool -list shows "1",
	// see keystore.PKCS12Keystore).
	KeyAlias string
}

// Sensitive is secret bytes: a password or a store's contents. It converts
// to and from []byte freely, but formats as "[redacted]" with every fmt verb
// and in log/slog, so that printing a Bundle or a File never shows it.
type Sensitive = spec.Sensitive

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
	// and is empty when some input has no version (an inline setting, a
	// secret without version): then the shipper cannot tell whether the file
	// changed and should rewrite it.
	Version string
	// Source says whether Contents are the exact bytes of one secret (a
	// store shipped as it is, see Spec.Passthrough), and which; the zero
	// Source means keyship built the file.
	Source Source
}

// Source says where a file or password of a Bundle came from: the setting
// whose secret holds exactly its bytes, or nothing (the zero Source) when
// keyship built, converted, decoded or derived it. Build records it; a
// shipper reads it to send a reference to the secret instead of its bytes.
type Source struct {
	// Field is the name of the setting, e.g. "security.tls.keystore_secret".
	Field string
	// Ref is the secret the bytes are exactly.
	Ref spec.Ref
	// Referable is set by the host, not Build: the secret's backend declares
	// that the Mesos secret resolver can read its secrets by name
	// (plugin.CapabilityMesosReference), and the ref names the latest
	// version of a whole secret.
	Referable bool
}

// Exact reports whether the bytes are exactly one secret's.
func (s Source) Exact() bool { return s.Ref.Path != "" }

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
	// Files are the files of each format of Options.Outputs in turn: the
	// keystore first, then the truststore and CA bundle when there is trust
	// material (for PEM: key.pem, cert.pem, ca.pem).
	Files []File
	// KeystorePassword opens the keystore files; nil when only PEM is
	// written. It is the spec's keystore password, or, when the spec sets
	// none (PEM inputs, issued certificates), one derived from the private
	// key: secret, printable, and the same for the same key.
	KeystorePassword Sensitive
	// KeyPassword opens the private key in the keystore files. It is the
	// spec's key password, else the keystore password; when a PKCS12 file is
	// written it is always the keystore password (PKCS12 keystores use one
	// password).
	KeyPassword Sensitive
	// TruststorePassword opens the truststore and CA bundle files, or is nil
	// when none is written. Derived like KeystorePassword when the spec sets
	// none.
	TruststorePassword Sensitive
	// KeystorePasswordSource, KeyPasswordSource and TruststorePasswordSource
	// say which secret each password is exactly, or are zero when keyship
	// derived the password or the setting holds it inline.
	KeystorePasswordSource, KeyPasswordSource, TruststorePasswordSource Source

	// KeyAlias is the alias of the private key entry in the JKS keystore
	// files (in lower case, as Java writes aliases). A PKCS12 keystore
	// keyship writes has no alias (keytool -list shows "1"); one shipped as
	// it is (Spec.Passthrough) keeps its own.
	KeyAlias string
	// Chain describes the key's certificate chain, leaf first.
	Chain []CertInfo
	// Trusted describes the trusted certificates of the truststore, then
	// those of the CA bundle.
	Trusted []CertInfo
	// Warnings are problems that do not stop the job, in words for an
	// operator. They hold no secret bytes.
	Warnings []string
	// Inputs are the secrets the Bundle was built from, with the versions
	// their backends returned, for an audit record. Build leaves it empty;
	// the host fills it.
	Inputs []Input
}

// Input is one secret a Bundle was built from: the setting that names it,
// its ref (with the backend made explicit) and the opaque version its
// backend returned (or the issued certificate's). It holds no secret bytes.
type Input struct {
	Field   string
	Ref     spec.Ref
	Version string
}

// File returns the bundle's file with role r, or nil. When several formats
// were written, it is the file of the first of Options.Outputs.
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

// Error is what Build returns when a check fails: every problem of the spec,
// and the warnings found along the way. errors.As finds the *spec.Errors
// (and each *spec.FieldError) inside it.
type Error struct {
	// Problems lists every failed check, each naming the setting and its
	// ref.
	Problems *spec.Errors
	// Warnings are what would only have been warned about.
	Warnings []string
}

// Error lists the problems, one per line.
func (e *Error) Error() string { return e.Problems.Error() }

// Unwrap returns the problems.
func (e *Error) Unwrap() error { return e.Problems }

// Build opens the stores that secrets hold for s, checks them, and writes the
// stores the job will use. It guarantees, before anything ships, the
// pre-flight checks:
//
//  1. every store opens with its password and the key with the key password
//     (Java's "keystore was tampered with, or password was incorrect",
//     "Cannot recover key");
//  2. the keystore holds exactly one private key, whose public key matches
//     the leaf certificate;
//  3. the chain verifies against the truststore and CA bundle the job will
//     use ("unable to find valid certification path to requested target");
//  4. the leaf covers every host of Spec.Hosts (SAN DNS and
//     IP, RFC 6125 wildcards, the CN only without DNS SANs: "no name
//     matching <host> found");
//  5. no certificate of the chain is expired or not yet valid, or expires
//     before Options.Deadline; one expiring within Options.ExpiryWarning
//     gives a warning;
//  6. the protocol is TLSv1.2 or TLSv1.3, and the key and certificate can
//     serve it (key type and size, key usage, extended key usage), with
//     one of the cipher suites the spec lists, if it lists any (an EC key
//     with only RSA suites fails every handshake: "no cipher suites in
//     common");
//  7. every password is one the stores written take: printable ASCII for
//     PKCS12 (Java: "Password is not ASCII"), printable ISO 8859-1 for JKS
//     (keytool and JSSE open a JKS store with any; keyship's JKS codec
//     writes one byte per character).
//
// Checks 3 and 4 give warnings instead when the consumer would not make them
// (Spec.VerifyHostname false; libprocess without VERIFY_CERT).
//
// Inputs are told apart by content (JKS, PKCS12, PEM, a DER certificate);
// base64 is decoded only where the setting says so (Field.Encoding base64)
// or the name does (a DC/OS secret named __dcos_base64__...).
//
// The keystore files hold the private key entry only; the truststore and CA
// bundle files hold trusted certificate entries only (private keys found
// there are left out, with a warning).
//
// When checks fail, Build returns an *Error with every problem found, each a
// *spec.FieldError naming the setting and its ref in the words operators
// search for. Errors never hold secret bytes or passwords.
//
// Build does not modify secrets or opts.Issued. The outputs depend only on
// the inputs: two Builds of the same inputs give byte-identical files.
func Build(ctx context.Context, s *spec.Spec, secrets Secrets, opts Options) (*Bundle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errors.New("materialize: nil spec")
	}
	outputs, err := outputFormats(s, opts)
	if err != nil {
		return nil, err
	}
	if err := opts.PKCS12.Validate(); err != nil {
		return nil, fmt.Errorf("materialize: %w", err)
	}
	b := &builder{spec: s, secrets: secrets, opts: opts, now: time.Now(), outputs: outputs}
	if opts.Now != nil {
		b.now = opts.Now()
	}
	defer b.zero()

	ks := b.openKeystore()
	trust := b.openTrust()
	if ks != nil {
		b.checkChain(ks, trust)
	}
	b.checkProtocol(ks)
	if len(b.errs.List) > 0 {
		return nil, &Error{Problems: &b.errs, Warnings: b.warnings}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return b.bundle(ks, trust, outputs)
}

// outputFormats returns the formats Build writes.
func outputFormats(s *spec.Spec, opts Options) ([]Format, error) {
	if len(opts.Outputs) == 0 {
		switch st := strings.ToLower(s.StoreType); st {
		case "", spec.StoreTypeJKS:
			return []Format{FormatJKS}, nil
		case spec.StoreTypePKCS12:
			return []Format{FormatPKCS12}, nil
		case spec.StoreTypePEM:
			return []Format{FormatPEM}, nil
		default:
			return nil, fmt.Errorf("materialize: store type %q: %w (use jks, pkcs12 or pem)", s.StoreType, errors.ErrUnsupported)
		}
	}
	var out []Format
	for _, f := range opts.Outputs {
		switch f {
		case FormatJKS, FormatPKCS12, FormatPEM:
		default:
			return nil, fmt.Errorf("materialize: output format %q: %w (use jks, pkcs12 or pem)", f, errors.ErrUnsupported)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// pwKey identifies a password setting: by ref, or by name when inline.
type pwKey struct {
	ref    spec.Ref
	inline string
}

func keyOf(f spec.Field) pwKey {
	if f.Inline() {
		return pwKey{inline: f.Name}
	}
	return pwKey{ref: f.Ref}
}

// builder holds the state of one Build: the problems found so far and the
// secret copies it made, which zero clears.
type builder struct {
	spec     *spec.Spec
	secrets  Secrets
	opts     Options
	now      time.Time
	errs     spec.Errors
	warnings []string
	// passwords are the checked copies of password settings (nil when the
	// check failed).
	passwords map[pwKey][]byte
	// owned are buffers the builder decoded (base64) and must zero.
	owned [][]byte
	// issuedCA are the CA certificates of an issued keystore.
	issuedCA []*x509.Certificate
	// passFormats maps the store settings that could ship as they are to
	// their format (see passthrough).
	passFormats map[string]Format
	// outputs are the formats Build writes; they decide which passwords
	// are accepted (checkPassword).
	outputs []Format
}

// keyMaterial is the opened private key of the keystore.
type keyMaterial struct {
	alias string
	key   crypto.PrivateKey // matches chain[0]
	chain []*x509.Certificate
	// source is the setting that names the certificate: the keystore
	// secret, the certificate setting, or the Issue's.
	source spec.Field
	// kind names the source in messages: "keystore", "certificate", ...
	kind string
	// inputs are the settings the key and chain come from (for versions).
	inputs []spec.Field
	// issuedVersion is the version of an issued certificate.
	issuedVersion string
}

// label names a source in messages: "keystore /spark/keystore".
func (k *keyMaterial) label() string { return k.kind + " " + where(k.source) }

// where names a setting's secret in messages: its ref, or the setting's name
// when the secret is inline.
func where(f spec.Field) string {
	if f.Inline() || f.Ref == (spec.Ref{}) {
		return f.Name
	}
	return f.Ref.String()
}

func (b *builder) fail(f spec.Field, reason string) {
	fe := &spec.FieldError{Field: f.Name, Reason: reason}
	if !f.Inline() && f.Ref != (spec.Ref{}) {
		fe.Ref = f.Ref.String()
	}
	b.errs.List = append(b.errs.List, fe)
}

func (b *builder) warn(format string, args ...any) {
	b.warnings = append(b.warnings, fmt.Sprintf(format, args...))
}

// raw returns the bytes of f's secret (inline or resolved), base64-decoded
// when the setting or the ref's name says so, or reports why there are none.
func (b *builder) raw(f spec.Field) ([]byte, bool) {
	var data []byte
	if f.Inline() {
		data = f.Value
		if len(data) == 0 {
			b.fail(f, "the setting is empty")
			return nil, false
		}
	} else {
		sec, ok := b.secrets[f.Ref]
		switch {
		case !ok:
			b.fail(f, "no secret was resolved for this ref")
			return nil, false
		case len(sec.Data) == 0:
			b.fail(f, "the secret is empty")
			return nil, false
		}
		data = sec.Data
	}
	enc := f.Encoding
	if enc == "" && !f.Inline() && isDCOSBase64(f.Ref) {
		enc = spec.EncodingBase64
	}
	switch enc {
	case "":
		return data, true
	case spec.EncodingBase64:
		dec, err := keystore.DecodeBase64(data)
		if err != nil {
			why := "the setting says base64"
			if f.Encoding == "" {
				why = "its name starts with " + dcosBase64Prefix
			}
			b.fail(f, "the secret is not valid base64 text ("+why+")")
			return nil, false
		}
		b.owned = append(b.owned, dec)
		return dec, true
	}
	b.fail(f, fmt.Sprintf("unknown encoding %q; keyship decodes %q", f.Encoding, spec.EncodingBase64))
	return nil, false
}

// password returns a checked copy of the password f holds. A password that
// two settings share is checked and reported once.
func (b *builder) password(f spec.Field) ([]byte, bool) {
	k := keyOf(f)
	if pw, ok := b.passwords[k]; ok {
		return pw, pw != nil
	}
	if b.passwords == nil {
		b.passwords = make(map[pwKey][]byte)
	}
	b.passwords[k] = nil
	data, ok := b.raw(f)
	if !ok {
		return nil, false
	}
	if reason := b.checkPassword(data); reason != "" {
		b.fail(f, reason)
		return nil, false
	}
	pw := bytes.Clone(data)
	b.passwords[k] = pw
	return pw, true
}

// checkPassword says why pw cannot protect the stores Build writes, or
// returns "": for PKCS12 outputs printable ASCII (Java's PKCS12 keystore
// refuses anything else: "Password is not ASCII"), for JKS printable ISO
// 8859-1 (Java's JKS takes any character; keyship's JKS codec one byte per
// character). Whether the consumer reads such a password back unchanged is
// the consumer settings' check (shipper/conf).
func (b *builder) checkPassword(pw []byte) string {
	if slices.Contains(b.outputs, FormatPKCS12) {
		return keystore.CheckPassword(pw)
	}
	return keystore.CheckJKSPassword(pw)
}

// optPassword is password for a setting that may be unset: (nil, true) when
// it is.
func (b *builder) optPassword(f spec.Field) ([]byte, bool) {
	if !f.IsSet() {
		return nil, true
	}
	return b.password(f)
}

// zero clears the secret copies of the builder.
func (b *builder) zero() {
	for _, pw := range b.passwords {
		clear(pw)
	}
	for _, o := range b.owned {
		clear(o)
	}
}
