package materialize

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyship/keyship/host/spec"
)

// Opening the inputs: checks 1, 2 and 7 happen here, as each store is
// opened in whatever form it comes.

// keyPasswordField is the setting that holds the key's password: the key
// password, else the store password.
func keyPasswordField(st spec.Store) spec.Field {
	if st.KeyPassword != nil && st.KeyPassword.IsSet() {
		return *st.KeyPassword
	}
	return st.Password
}

// openKeystore opens the keystore of the spec, from whichever source it
// names, and returns its key, or nil after reporting why it cannot be used.
func (b *builder) openKeystore() *keyMaterial {
	st := b.spec.Keystore
	pair := st.Key != nil || st.Certificate != nil
	switch {
	case st.Issue != nil:
		if st.Secret.IsSet() || pair {
			b.fail(st.Issue.Field, "set together with another keystore source (a store secret, or a key and certificate); set one")
			return nil
		}
		return b.openIssued(st)
	case pair:
		if st.Secret.IsSet() {
			b.fail(st.Secret, "set together with a separate key and certificate; set one or the other")
			return nil
		}
		return b.openPair(st)
	case !st.Secret.IsSet():
		b.errs.List = append(b.errs.List, &spec.FieldError{Field: "keystore",
			Reason: "the spec names no keystore (a store secret, a key and certificate, or an issuer)"})
		return nil
	}
	return b.openKeystoreSecret(st)
}

// openKeystoreSecret opens a keystore held in one secret: JKS, PKCS12, or
// PEM with the key and its chain.
func (b *builder) openKeystoreSecret(st spec.Store) *keyMaterial {
	data, okData := b.raw(st.Secret)
	storePass, okStore := b.optPassword(st.Password)
	keyPassField := keyPasswordField(st)
	keyPass, okKey := b.optPassword(keyPassField)
	if !okData {
		return nil
	}
	km := &keyMaterial{source: st.Secret, kind: "keystore", inputs: []spec.Field{st.Secret}}
	format := detectFormat(data)
	switch format {
	case formatJKS, formatPKCS12:
		if !st.Password.IsSet() {
			b.fail(st.Secret, fmt.Sprintf("a %s keystore opens with its store password, and the spec sets none", format))
			return nil
		}
	}
	switch format {
	case formatJKS:
		if !b.wellFormedJKS(st.Secret, data, "keystore") || !okStore {
			return nil
		}
		store, err := decodeJKS(data, storePass)
		if err != nil {
			b.storeError(st.Secret, st.Password, "keystore", err)
			return nil
		}
		if len(store.keys) != 1 {
			b.fail(st.Secret, keyCountReason(len(store.keys), store.keyAliases(), store.certAliases()))
			return nil
		}
		entry := store.keys[0]
		if !okKey {
			return nil
		}
		key, err := store.openKey(entry, keyPass)
		if err != nil {
			b.keyError(st, keyPassField, entry.alias, err)
			return nil
		}
		km.alias, km.key, km.chain = entry.alias, key, entry.chain
		if len(store.certs) == 0 {
			// A keystore ships as it is only when writing it anew would
			// drop nothing (trusted entries are left out of keystores).
			b.passable(st.Secret, FormatJKS)
		}
	case formatPKCS12:
		if !okStore {
			return nil
		}
		store, err := decodePKCS12(data, storePass)
		if err != nil {
			b.storeError(st.Secret, st.Password, "keystore", err)
			return nil
		}
		if len(store.keys) != 1 {
			var keys, certs []string
			for _, k := range store.keys {
				keys = append(keys, fmt.Sprintf("%q", k.alias))
			}
			for _, c := range store.certs {
				if c.trusted {
					certs = append(certs, fmt.Sprintf("%q", c.alias))
				}
			}
			b.fail(st.Secret, keyCountReason(len(store.keys), strings.Join(keys, ", "), strings.Join(certs, ", ")))
			return nil
		}
		entry := &store.keys[0]
		alias := entry.alias
		if alias == "" && entry.leafIdx >= 0 {
			alias = store.certs[entry.leafIdx].alias
		}
		if !okKey {
			return nil
		}
		key, err := entry.openKey(keyPass)
		if err != nil {
			b.keyError(st, keyPassField, alias, err)
			return nil
		}
		chain := store.chainFor(entry)
		if chain == nil {
			var all []*x509.Certificate
			for _, c := range store.certs {
				all = append(all, c.cert)
			}
			chain = orderChain(key, all)
		}
		if chain == nil {
			b.fail(st.Secret, fmt.Sprintf("private key entry %q has no certificate: no certificate of the keystore carries its localKeyId or matches its public key", alias))
			return nil
		}
		km.alias, km.key, km.chain = alias, key, chain
		if bytes.Equal(storePass, keyPass) && !slices.ContainsFunc(store.certs, func(c p12Cert) bool { return c.trusted }) {
			// Java opens a PKCS12 key with the store password; trusted
			// entries would be left out of a keystore written anew.
			b.passable(st.Secret, FormatPKCS12)
		}
	case formatPEM:
		// The passwords are those of the stores keyship writes, and the
		// key password (or else the store password) opens an encrypted key.
		if !okStore || !okKey {
			return nil
		}
		return b.openPEMKeystore(st, km, data, data, keyPass, keyPassField)
	case formatDERCertificate:
		b.fail(st.Secret, "the keystore is a single DER certificate without its private key (as keytool -exportcert writes it); a keystore needs the private key and its chain. Is it a truststore?")
		return nil
	default:
		b.fail(st.Secret, notAStore(data, "keystore"))
		return nil
	}
	if !publicKeyMatches(km.key, km.chain[0]) {
		b.fail(st.Secret, fmt.Sprintf("the private key of entry %q does not match the public key of its certificate %q",
			km.alias, km.chain[0].Subject.String()))
		return nil
	}
	return km
}

// openPair opens a keystore given as a PEM key and a certificate chain in
// separate settings.
func (b *builder) openPair(st spec.Store) *keyMaterial {
	hasKey := st.Key != nil && st.Key.IsSet()
	hasCert := st.Certificate != nil && st.Certificate.IsSet()
	switch {
	case !hasKey && !hasCert:
		b.errs.List = append(b.errs.List, &spec.FieldError{Field: "keystore",
			Reason: "the spec names no keystore (a store secret, a key and certificate, or an issuer)"})
		return nil
	case !hasKey:
		b.fail(*st.Certificate, "a certificate without its private key: set the key setting too")
		return nil
	case !hasCert:
		b.fail(*st.Key, "a private key without its certificate: set the certificate setting too")
		return nil
	}
	keyData, okKeyData := b.raw(*st.Key)
	certData, okCertData := b.raw(*st.Certificate)
	_, okStore := b.optPassword(st.Password)
	keyPassField := keyPasswordField(st)
	keyPass, okKey := b.optPassword(keyPassField)
	if !okKeyData || !okCertData || !okStore || !okKey {
		return nil
	}
	km := &keyMaterial{source: *st.Certificate, kind: "certificate", inputs: []spec.Field{*st.Key, *st.Certificate}}
	if f := detectFormat(certData); f != formatPEM && f != formatDERCertificate {
		b.fail(*st.Certificate, "not a PEM certificate chain or a DER certificate"+hintSuffix(certData))
		return nil
	}
	if detectFormat(keyData) != formatPEM {
		b.fail(*st.Key, "not a PEM private key (PKCS#1, PKCS#8, SEC1 or encrypted PKCS#8)"+hintSuffix(keyData))
		return nil
	}
	return b.openPEMKeystore(st, km, keyData, certData, keyPass, keyPassField)
}

func hintSuffix(data []byte) string {
	if h := base64Hint(data); h != "" {
		return ": " + h
	}
	return ""
}

// openPEMKeystore reads exactly one private key from keyData and the chain
// from certData (which may be the same bytes) and orders the chain from the
// certificate that matches the key.
func (b *builder) openPEMKeystore(st spec.Store, km *keyMaterial, keyData, certData, keyPass []byte, keyPassField spec.Field) *keyMaterial {
	keyField := st.Secret
	if st.Key != nil && st.Key.IsSet() {
		keyField = *st.Key
	}
	kp, err := decodePEM(keyData)
	if err != nil {
		b.fail(keyField, "the PEM is corrupt: "+err.Error())
		return nil
	}
	defer kp.zero()
	var certs []*x509.Certificate
	if bytes.Equal(keyData, certData) {
		certs = kp.certs
		if len(kp.ignored) > 0 {
			b.warn("%s %s: PEM blocks %s are not used", km.kind, where(keyField), ignoredTypes(kp.ignored))
		}
	} else if detectFormat(certData) == formatDERCertificate {
		c, _ := x509.ParseCertificate(certData)
		certs = []*x509.Certificate{c}
	} else {
		cp, err := decodePEM(certData)
		if err != nil {
			b.fail(km.source, "the PEM is corrupt: "+err.Error())
			return nil
		}
		cp.zero()
		if len(cp.keys) > 0 {
			b.warn("certificate %s: holds a private key, which is not used: the key comes from %s", where(km.source), where(keyField))
		}
		certs = cp.certs
	}
	switch n := len(kp.keys); {
	case n == 0:
		reason := "holds no private key (no PRIVATE KEY block); a keystore needs exactly one private key and its certificate chain"
		if len(certs) > 0 && bytes.Equal(keyData, certData) {
			reason += fmt.Sprintf(" (it holds only %d certificates; is it a truststore?)", len(certs))
		}
		b.fail(keyField, reason)
		return nil
	case n > 1:
		b.fail(keyField, fmt.Sprintf("holds %d private keys; it must hold exactly one private key and its certificate chain", n))
		return nil
	}
	if len(certs) == 0 {
		b.fail(km.source, "holds no certificate (no CERTIFICATE block): the private key needs its certificate chain, leaf first")
		return nil
	}
	key, err := parsePEMKey(kp.keys[0], keyPass)
	switch {
	case errors.Is(err, errCannotRecoverKey):
		b.fail(keyPassField, fmt.Sprintf("the password does not decrypt the private key in %s (Cannot recover key)", where(keyField)))
		return nil
	case errors.Is(err, errNoKeyPassword):
		b.fail(keyField, err.Error())
		return nil
	case err != nil:
		b.fail(keyField, "the private key: "+err.Error())
		return nil
	}
	chain := orderChain(key, certs)
	if chain == nil {
		b.fail(km.source, fmt.Sprintf("the private key does not match the public key of its certificate %q (nor of any other certificate given)",
			certs[0].Subject.String()))
		return nil
	}
	if left := len(certs) - len(chain); left > 0 {
		b.warn("%s %s: %d certificates are not in the key's chain and are left out", km.kind, where(km.source), left)
	}
	km.key, km.chain = key, chain
	return km
}

// orderChain returns the certificate that matches key followed by its
// issuers among certs, or nil when none matches.
func orderChain(key crypto.PrivateKey, certs []*x509.Certificate) []*x509.Certificate {
	for _, c := range certs {
		if publicKeyMatches(key, c) {
			return buildChain(c, certs)
		}
	}
	return nil
}

// openIssued turns the certificate the host had issued for the keystore
// into its key material.
func (b *builder) openIssued(st spec.Store) *keyMaterial {
	f := st.Issue.Field
	_, okStore := b.optPassword(st.Password)
	_, okKey := b.optPassword(keyPasswordField(st))
	issued, ok := b.opts.Issued[f.Name]
	if !ok {
		b.fail(f, "no certificate was issued for this setting (the host did not call the backend's issuer)")
		return nil
	}
	if !okStore || !okKey {
		return nil
	}
	key, err := parsePKCS8(issued.PrivateKey)
	if err != nil {
		b.fail(f, "the issued private key: "+err.Error())
		return nil
	}
	var chain []*x509.Certificate
	for i, der := range issued.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			b.fail(f, fmt.Sprintf("issued certificate %d is not a valid X.509 certificate: %v", i, err))
			return nil
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		b.fail(f, "the issuer returned no certificate")
		return nil
	}
	if !publicKeyMatches(key, chain[0]) {
		b.fail(f, fmt.Sprintf("the issued private key does not match the public key of the issued certificate %q", chain[0].Subject.String()))
		return nil
	}
	for i, der := range issued.CACertificates {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			b.fail(f, fmt.Sprintf("CA certificate %d of the issuer is not a valid X.509 certificate: %v", i, err))
			return nil
		}
		b.issuedCA = append(b.issuedCA, c)
	}
	return &keyMaterial{key: key, chain: chain, source: f, kind: "issued certificate from", issuedVersion: issued.Version}
}

// parsePKCS8 parses a PKCS#8 private key, naming DSA keys (which Go does
// not read and TLSv1.3 cannot use) in words.
func parsePKCS8(der []byte) (crypto.PrivateKey, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err == nil {
		return key, nil
	}
	if bytes.Contains(der, []byte{0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01}) { // OID 1.2.840.10040.4.1
		return nil, errors.New("a DSA key: TLSv1.3 has no DSA signatures and keyship does not read DSA keys; make an RSA or EC key (keytool -keyalg RSA or EC)")
	}
	return nil, errors.New("not a PKCS#8 private key")
}

// keyCountReason explains a keystore that does not hold exactly one private
// key entry.
func keyCountReason(n int, keyAliases, certAliases string) string {
	if n > 1 {
		return fmt.Sprintf("the keystore holds %d private key entries (%s); it must hold exactly one private key and its certificate chain",
			n, keyAliases)
	}
	reason := "the keystore holds no private key entry (PrivateKeyEntry); it must hold exactly one private key and its certificate chain"
	if certAliases != "" {
		reason += fmt.Sprintf(" (it holds only trusted certificate entries: %s; is it a truststore?)", certAliases)
	}
	return reason
}

// keyError reports a private key entry that does not open.
func (b *builder) keyError(st spec.Store, keyPassField spec.Field, alias string, err error) {
	if errors.Is(err, errCannotRecoverKey) {
		reason := fmt.Sprintf("the password does not open private key %q in keystore %s (Cannot recover key)", alias, where(st.Secret))
		if st.KeyPassword == nil || !st.KeyPassword.IsSet() {
			reason += "; the spec sets no key password, so the keystore password was tried"
		}
		b.fail(keyPassField, reason)
		return
	}
	if errors.Is(err, errUnsupportedAlgorithm) {
		b.fail(st.Secret, fmt.Sprintf("private key entry %q: %v, which keyship does not read", alias, err))
		return
	}
	b.fail(st.Secret, fmt.Sprintf("private key entry %q: %v", alias, err))
}

// trustMaterial is the trusted certificates a job will use.
type trustMaterial struct {
	truststore []jksCert
	caBundle   []jksCert
}

// anchors returns every trusted certificate, truststore first, without
// duplicates.
func (t trustMaterial) anchors(issued []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	add := func(c *x509.Certificate) {
		if !slices.ContainsFunc(out, c.Equal) {
			out = append(out, c)
		}
	}
	for _, c := range t.truststore {
		add(c.cert)
	}
	for _, c := range t.caBundle {
		add(c.cert)
	}
	for _, c := range issued {
		add(c)
	}
	return out
}

// openTrust opens the truststore and CA bundle of the spec.
func (b *builder) openTrust() trustMaterial {
	var t trustMaterial
	s := b.spec
	if ts := s.Truststore; ts != nil {
		if ts.Secret.IsSet() {
			t.truststore = b.openTrusted(ts.Secret, ts.Password, "truststore")
		}
		if ts.Certificate != nil && ts.Certificate.IsSet() {
			t.truststore = append(t.truststore, b.openTrusted(*ts.Certificate, ts.Password, "truststore")...)
		}
		t.truststore = uniqueAliases(t.truststore)
	}
	if s.CABundle != nil && s.CABundle.IsSet() {
		var pw spec.Field
		if s.Truststore != nil {
			pw = s.Truststore.Password
		}
		t.caBundle = b.openTrusted(*s.CABundle, pw, "CA bundle")
	}
	return t
}

// openTrusted opens a truststore or CA bundle and returns its trusted
// certificates, or nil after reporting why it cannot be used.
func (b *builder) openTrusted(secret, password spec.Field, kind string) []jksCert {
	data, okData := b.raw(secret)
	pass, okPass := b.optPassword(password)
	if !okData {
		return nil
	}
	format := detectFormat(data)
	if (format == formatJKS || format == formatPKCS12) && !password.IsSet() {
		if kind == "CA bundle" && b.spec.Truststore == nil {
			b.fail(secret, fmt.Sprintf("a %s CA bundle opens with the truststore password, and the spec sets no truststore", format))
		} else {
			b.fail(secret, fmt.Sprintf("a %s %s opens with its password, and the spec sets none", format, kind))
		}
		return nil
	}
	switch format {
	case formatJKS:
		if !b.wellFormedJKS(secret, data, kind) || !okPass {
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
			b.warn("%s %s: private key entries %s are left out: a %s holds trusted certificates only",
				kind, where(secret), store.keyAliases(), kind)
		} else {
			b.passable(secret, FormatJKS)
		}
		return store.certs
	case formatPKCS12:
		if !okPass {
			return nil
		}
		store, err := decodePKCS12(data, pass)
		if err != nil {
			b.storeError(secret, password, kind, err)
			return nil
		}
		var trusted, loose []*x509.Certificate
		var aliases []string
		for _, c := range store.certs {
			switch {
			case c.trusted:
				trusted = append(trusted, c.cert)
				aliases = append(aliases, strings.ToLower(c.alias))
			case c.keyID == nil:
				loose = append(loose, c.cert)
			}
		}
		if len(store.keys) > 0 {
			var names []string
			for _, k := range store.keys {
				names = append(names, fmt.Sprintf("%q", k.alias))
			}
			b.warn("%s %s: private key entries %s are left out: a %s holds trusted certificates only",
				kind, where(secret), strings.Join(names, ", "), kind)
		}
		if len(trusted) == 0 {
			if len(loose) == 0 || len(store.keys) > 0 {
				b.fail(secret, fmt.Sprintf("the %s holds no trusted certificate entry (trustedCertEntry)", kind))
				return nil
			}
			// openssl pkcs12 -export -nokeys writes certificates Java does
			// not list as trustedCertEntry; the stores keyship writes do.
			b.warn("%s %s: its certificates are not marked trusted for Java (as openssl pkcs12 -export writes them without -jdktrust); the %s keyship writes marks them trusted",
				kind, where(secret), kind)
			return trustAliases(loose)
		}
		if len(store.keys) == 0 && len(loose) == 0 {
			b.passable(secret, FormatPKCS12)
		}
		out := make([]jksCert, len(trusted))
		for i, c := range trusted {
			out[i] = jksCert{alias: aliases[i], cert: c}
		}
		return uniqueAliases(out)
	case formatPEM:
		p, err := decodePEM(data)
		if err != nil {
			b.fail(secret, fmt.Sprintf("the %s PEM is corrupt: %v", kind, err))
			return nil
		}
		p.zero()
		if len(p.keys) > 0 {
			b.warn("%s %s: %d private keys are left out: a %s holds trusted certificates only", kind, where(secret), len(p.keys), kind)
		}
		if len(p.certs) == 0 {
			b.fail(secret, fmt.Sprintf("the %s holds no certificate (no CERTIFICATE block)", kind))
			return nil
		}
		return trustAliases(p.certs)
	case formatDERCertificate:
		c, _ := x509.ParseCertificate(data)
		return trustAliases([]*x509.Certificate{c})
	}
	b.fail(secret, notAStore(data, kind))
	return nil
}

// notAStore explains data that is no store keyship reads, in words for an
// operator. It never quotes the data.
func notAStore(data []byte, kind string) string {
	if detectFormat(data) == formatJCEKS {
		return fmt.Sprintf("not a JKS, PKCS12 or PEM %s (Invalid keystore format): it is a JCEKS keystore; convert it with keytool -importkeystore -deststoretype PKCS12", kind)
	}
	reason := "not a JKS, PKCS12 or PEM " + kind + " (Invalid keystore format)"
	if h := base64Hint(data); h != "" {
		return reason + ": " + h
	}
	if len(data) > 0 && data[0] == 0x30 {
		return reason + ": it is DER, but neither a PKCS12 file nor a certificate"
	}
	return reason
}

// wellFormedJKS reports whether data is a well-formed JKS store, and why
// not. It needs no password, so that a corrupt store is reported even when
// its password is wrong too.
func (b *builder) wellFormedJKS(secret spec.Field, data []byte, kind string) bool {
	if _, _, err := scanJKS(data); err != nil {
		b.fail(secret, fmt.Sprintf("the %s is corrupt: %v", kind, err))
		return false
	}
	return true
}

// storeError reports an error opening a store against the setting that
// caused it: the password for a digest or MAC mismatch, the store otherwise.
func (b *builder) storeError(secret, password spec.Field, kind string, err error) {
	switch {
	case errors.Is(err, errJKSDigest), errors.Is(err, errP12MAC):
		b.fail(password, fmt.Sprintf("the password does not open %s %s (keystore was tampered with, or password was incorrect)", kind, where(secret)))
	case errors.Is(err, errUnsupportedAlgorithm):
		b.fail(secret, fmt.Sprintf("the %s uses %v, which keyship does not read", kind, err))
	default:
		b.fail(secret, fmt.Sprintf("the %s is corrupt: %v", kind, err))
	}
}

// trustAliases names certificates as JKSTruststore does, dropping repeated
// certificates.
func trustAliases(certs []*x509.Certificate) []jksCert {
	out := make([]jksCert, 0, len(certs))
	for _, c := range certs {
		out = append(out, jksCert{cert: c})
	}
	return uniqueAliases(out)
}

// uniqueAliases drops repeated certificates and makes aliases unique, as
// JKSTruststore does.
func uniqueAliases(certs []jksCert) []jksCert {
	var out []jksCert
	for _, c := range certs {
		if !slices.ContainsFunc(out, func(o jksCert) bool { return o.cert.Equal(c.cert) }) {
			out = append(out, c)
		}
	}
	return aliasCerts(out)
}

// aliasCerts gives each certificate a unique alias in lower case: its own
// alias, else its common name, else "ca"; a taken alias gets "-1", "-2", ...
// appended.
func aliasCerts(certs []jksCert) []jksCert {
	out := make([]jksCert, 0, len(certs))
	taken := make(map[string]bool)
	for _, c := range certs {
		base := strings.ToLower(c.alias)
		if base == "" {
			base = strings.ToLower(c.cert.Subject.CommonName)
		}
		if base == "" {
			base = "ca"
		}
		alias := base
		for i := 1; taken[alias]; i++ {
			alias = fmt.Sprintf("%s-%d", base, i)
		}
		taken[alias] = true
		out = append(out, jksCert{alias: alias, cert: c.cert})
	}
	return out
}
