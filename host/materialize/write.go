package materialize

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/spec"
)

// Writing the outputs of checked inputs.

// derivedPassword makes the password of a store the spec sets none for:
// HMAC-SHA256 of the purpose keyed with the private key, in base64url. It is
// as secret as the key, printable, and the same for the same key, so that
// outputs stay deterministic.
func derivedPassword(key crypto.PrivateKey, purpose string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	defer clear(der)
	mac := hmac.New(sha256.New, der)
	mac.Write([]byte("keyship/materialize/password\x00" + purpose))
	sum := mac.Sum(nil)
	defer clear(sum)
	out := make([]byte, base64.RawURLEncoding.EncodedLen(len(sum)))
	base64.RawURLEncoding.Encode(out, sum)
	return out, nil
}

// bundle writes the output files of checked inputs.
func (b *builder) bundle(ks *keyMaterial, t trustMaterial, outputs []Format) (out *Bundle, err error) {
	s := b.spec
	out = &Bundle{Warnings: b.warnings}
	defer func() {
		if err != nil {
			out.Zero()
			out = nil
		}
	}()
	stores := slices.Contains(outputs, FormatJKS) || slices.Contains(outputs, FormatPKCS12)
	trusted := t.truststore
	if s.Truststore == nil && len(b.issuedCA) > 0 {
		trusted = trustAliases(b.issuedCA)
	}

	// Passwords: the bundle owns its copies.
	if stores {
		if st := s.Keystore; st.Password.IsSet() {
			out.KeystorePassword = bytes.Clone(b.passwords[keyOf(st.Password)])
			out.KeystorePasswordSource = exactSource(st.Password)
		} else if out.KeystorePassword, err = derivedPassword(ks.key, "keystore"); err != nil {
			return nil, fmt.Errorf("materialize: %w", err)
		}
		out.KeyPassword = bytes.Clone(out.KeystorePassword)
		out.KeyPasswordSource = out.KeystorePasswordSource
		if kp := s.Keystore.KeyPassword; kp != nil && kp.IsSet() {
			pw := b.passwords[keyOf(*kp)]
			switch {
			case !slices.Contains(outputs, FormatPKCS12):
				clear(out.KeyPassword)
				out.KeyPassword = bytes.Clone(pw)
				out.KeyPasswordSource = exactSource(*kp)
			case !bytes.Equal(pw, out.KeystorePassword):
				out.Warnings = append(out.Warnings, "the PKCS12 keystore protects its key with the keystore password, as keytool and OpenSSL expect: configure the keystore password as the key password")
			}
		}
		if len(trusted) > 0 || len(t.caBundle) > 0 {
			if s.Truststore != nil && s.Truststore.Password.IsSet() {
				out.TruststorePassword = bytes.Clone(b.passwords[keyOf(s.Truststore.Password)])
				out.TruststorePasswordSource = exactSource(s.Truststore.Password)
			} else if out.TruststorePassword, err = derivedPassword(ks.key, "truststore"); err != nil {
				return nil, fmt.Errorf("materialize: %w", err)
			}
		}
	}
	storePass, keyPass, trustPass := out.KeystorePassword, out.KeyPassword, out.TruststorePassword

	alias := strings.ToLower(b.opts.KeyAlias)
	if alias == "" {
		alias = strings.ToLower(ks.alias)
	}
	if alias == "" {
		alias = DefaultKeyAlias
	}
	out.KeyAlias = alias
	for _, c := range ks.chain {
		out.Chain = append(out.Chain, certInfo(c))
	}
	for _, c := range trusted {
		out.Trusted = append(out.Trusted, certInfo(c.Cert))
	}
	for _, c := range t.caBundle {
		out.Trusted = append(out.Trusted, certInfo(c.Cert))
	}

	// Versions.
	srcInputs := b.keySourceInputs(ks)
	ksInputs := b.keyInputs(ks)
	tsInputs := b.trustInputs(ks, trusted)
	var caInputs []versionInput
	if s.CABundle != nil {
		caInputs = append(b.trustPasswordInputs(ks), b.fieldInput(*s.CABundle))
	}

	// passFrom names, per role, the setting whose store may ship as it is.
	passFrom := map[Role]spec.Field{}
	if st := s.Keystore; st.Issue == nil && st.Key == nil && st.Certificate == nil {
		passFrom[RoleKeystore] = st.Secret
	}
	if ts := s.Truststore; ts != nil && (ts.Certificate == nil || !ts.Certificate.IsSet()) {
		passFrom[RoleTruststore] = ts.Secret
	}
	if s.CABundle != nil {
		passFrom[RoleCABundle] = *s.CABundle
	}
	var format Format
	add := func(path string, role Role, inputs []versionInput, write func() ([]byte, error)) error {
		file := File{Path: path, Role: role, Mode: FileMode, Version: version(path, inputs)}
		if data, src, ok := b.passthrough(passFrom[role], format); ok {
			file.Contents, file.Source = data, src
		} else {
			contents, werr := write()
			if werr != nil {
				return fmt.Errorf("materialize: write %s: %w", path, werr)
			}
			file.Contents = contents
		}
		out.Files = append(out.Files, file)
		return nil
	}
	for _, f := range outputs {
		format = f
		switch f {
		case FormatJKS:
			err = add(KeystoreJKS, RoleKeystore, ksInputs, func() ([]byte, error) {
				return keystore.JKSKeystore(alias, ks.key, ks.chain, storePass, keyPass)
			})
			if err == nil && len(trusted) > 0 {
				err = add(TruststoreJKS, RoleTruststore, tsInputs, func() ([]byte, error) { return keystore.JKSTruststore(trusted, trustPass) })
			}
			if err == nil && len(t.caBundle) > 0 {
				err = add(CABundleJKS, RoleCABundle, caInputs, func() ([]byte, error) { return keystore.JKSTruststore(t.caBundle, trustPass) })
			}
		case FormatPKCS12:
			err = add(KeystoreP12, RoleKeystore, ksInputs, func() ([]byte, error) {
				return keystore.PKCS12Keystore(ks.key, ks.chain, storePass, b.opts.PKCS12)
			})
			if err == nil && len(trusted) > 0 {
				err = add(TruststoreP12, RoleTruststore, tsInputs, func() ([]byte, error) { return keystore.PKCS12Truststore(trusted, trustPass, b.opts.PKCS12) })
			}
			if err == nil && len(t.caBundle) > 0 {
				err = add(CABundleP12, RoleCABundle, caInputs, func() ([]byte, error) { return keystore.PKCS12Truststore(t.caBundle, trustPass, b.opts.PKCS12) })
			}
		case FormatPEM:
			err = add(KeyPEM, RoleKeyPEM, srcInputs, func() ([]byte, error) { return keystore.EncodePEMKey(ks.key) })
			if err == nil {
				err = add(CertPEM, RoleCertPEM, srcInputs, func() ([]byte, error) { return keystore.EncodePEMCertificates(ks.chain), nil })
			}
			if all := t.anchors(certsOf(trusted)); err == nil && len(all) > 0 {
				err = add(CAPEM, RoleCAPEM, append(b.trustSourceInputs(trusted), caInputs...), func() ([]byte, error) { return keystore.EncodePEMCertificates(all), nil })
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// versionInput is one input of a file's version: a name and an opaque
// version; ok is false when the input has no version.
type versionInput struct {
	name, version string
	ok            bool
}

// fieldInput is the version input of a setting: its ref and the version of
// the secret resolved for it. An inline setting has no version.
func (b *builder) fieldInput(f spec.Field) versionInput {
	if f.Inline() {
		return versionInput{name: f.Name}
	}
	v := b.secrets[f.Ref].Version
	return versionInput{name: f.Ref.String(), version: v, ok: v != ""}
}

// keySourceInputs are the inputs of the key and chain.
func (b *builder) keySourceInputs(ks *keyMaterial) []versionInput {
	if ks.inputs == nil {
		return []versionInput{{name: "issued:" + ks.source.Name, version: ks.issuedVersion, ok: ks.issuedVersion != ""}}
	}
	var out []versionInput
	for _, f := range ks.inputs {
		out = append(out, b.fieldInput(f))
	}
	return out
}

// keyInputs are the inputs of a keystore file: the key's sources, then the
// passwords the spec sets (derived passwords follow from the key).
func (b *builder) keyInputs(ks *keyMaterial) []versionInput {
	out := b.keySourceInputs(ks)
	st := b.spec.Keystore
	if st.Password.IsSet() {
		out = append(out, b.fieldInput(st.Password))
	}
	if st.KeyPassword != nil && st.KeyPassword.IsSet() {
		out = append(out, b.fieldInput(*st.KeyPassword))
	}
	return out
}

// trustSourceInputs are the inputs of the trusted certificates.
func (b *builder) trustSourceInputs(trusted []keystore.TrustedEntry) []versionInput {
	ts := b.spec.Truststore
	if ts == nil {
		if len(trusted) > 0 {
			return []versionInput{{name: "issued-ca", version: b.issuedVersion(), ok: b.issuedVersion() != ""}}
		}
		return nil
	}
	var out []versionInput
	if ts.Secret.IsSet() {
		out = append(out, b.fieldInput(ts.Secret))
	}
	if ts.Certificate != nil && ts.Certificate.IsSet() {
		out = append(out, b.fieldInput(*ts.Certificate))
	}
	return out
}

func (b *builder) issuedVersion() string {
	if is := b.spec.Keystore.Issue; is != nil {
		return b.opts.Issued[is.Field.Name].Version
	}
	return ""
}

// trustPasswordInputs are the inputs of the truststore password: the
// setting, or the key it is derived from.
func (b *builder) trustPasswordInputs(ks *keyMaterial) []versionInput {
	if ts := b.spec.Truststore; ts != nil && ts.Password.IsSet() {
		return []versionInput{b.fieldInput(ts.Password)}
	}
	return b.keySourceInputs(ks)
}

// trustInputs are the inputs of a truststore file.
func (b *builder) trustInputs(ks *keyMaterial, trusted []keystore.TrustedEntry) []versionInput {
	return append(b.trustSourceInputs(trusted), b.trustPasswordInputs(ks)...)
}

// version derives a File.Version from the versions of its inputs: a short
// SHA-256 over the output's name and each input with its opaque version. It
// is "" when some input has no version.
func version(path string, inputs []versionInput) string {
	h := sha256.New()
	fmt.Fprintf(h, "keyship/materialize/v1\x00%s\x00", path)
	for _, in := range inputs {
		if !in.ok {
			return ""
		}
		fmt.Fprintf(h, "%s\x00%d:%s\x00", in.name, len(in.version), in.version)
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
