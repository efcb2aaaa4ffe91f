package materialize

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/spec"
)

// Opening the inputs: checks 1, 2 and 7 happen here, as each store is
// opened in whatever form it comes. host/keystore reads the formats; what
// a job needs of them, and the words that name its settings and refs, are
// here.

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
	switch format := keystore.Detect(data); format {
	case keystore.JKS, keystore.PKCS12:
		if !st.Password.IsSet() {
			b.fail(st.Secret, fmt.Sprintf("a %s keystore opens with its store password, and the spec sets none", format))
			return nil
		}
		store := b.openStore(st.Secret, st.Password, data, storePass, okStore, "keystore")
		if store == nil {
			return nil
		}
		defer store.Zero()
		km = b.keyEntry(st, km, store, store, keyPass, okKey, keyPassField)
		// A keystore ships as it is only when writing it anew would drop
		// nothing (trusted entries are left out of keystores), and a PKCS12
		// one only when its key opens with the store password, as Java
		// opens it.
		if km != nil && len(store.Trusted) == 0 && len(store.Other) == 0 &&
			(format == keystore.JKS || bytes.Equal(storePass, keyPass)) {
			b.passable(st.Secret, outputFormat(format))
		}
		return km
	case keystore.PEM:
		// The passwords are those of the stores keyship writes, and the
		// key password (or else the store password) opens an encrypted key.
		if !okStore || !okKey {
			return nil
		}
		return b.openPEMKeystore(st, km, data, data, keyPass, keyPassField)
	case keystore.DERCertificate:
		b.fail(st.Secret, "the keystore is a single DER certificate without its private key (as keytool -exportcert writes it); a keystore needs the private key and its chain. Is it a truststore?")
		return nil
	}
	b.fail(st.Secret, notAStore(data, "keystore"))
	return nil
}

// openStore opens a JKS or PKCS12 store with its password, or reports why it
// does not open and returns nil. A corrupt JKS store is reported even when
// its password is unusable too: its structure needs no password.
func (b *builder) openStore(secret, password spec.Field, data, pass []byte, okPass bool, kind string) *keystore.Store {
	if keystore.Detect(data) == keystore.JKS {
		if err := keystore.CheckJKS(data); err != nil {
			b.fail(secret, fmt.Sprintf("the %s is corrupt: %v", kind, err))
			return nil
		}
	}
	if !okPass {
		return nil
	}
	store, err := keystore.Open(data, pass)
	if err != nil {
		b.storeError(secret, password, kind, err)
		return nil
	}
	return store
}

// keyEntry is checks 1 and 2 on an opened keystore, whatever its format:
// exactly one private key entry, which the key password opens and whose
// chain starts with its certificate. keys holds the key; certs the
// certificates to take its chain from when they are not in keys (a PEM key
// and its chain in separate secrets).
func (b *builder) keyEntry(st spec.Store, km *keyMaterial, keys, certs *keystore.Store, keyPass []byte, okKey bool, keyPassField spec.Field) *keyMaterial {
	keyField := st.Secret
	if st.Key != nil && st.Key.IsSet() {
		keyField = *st.Key
	}
	if len(keys.Keys) != 1 {
		b.fail(keyField, keyCountReason(keys))
		return nil
	}
	if keys.Format == keystore.PEM && len(certs.Trusted) == 0 {
		b.fail(km.source, "holds no certificate (no CERTIFICATE block): the private key needs its certificate chain, leaf first")
		return nil
	}
	if !okKey {
		return nil
	}
	entry := keys.Keys[0]
	if err := entry.Unlock(keyPass); err != nil {
		b.keyError(st, keyField, keyPassField, keys.Format, entry.Alias, err)
		return nil
	}
	chain := entry.Chain
	if certs != keys {
		chain = keystore.OrderChain(entry.Key, certsOf(certs.Trusted))
	}
	switch {
	case chain == nil && keys.Format == keystore.PEM:
		b.fail(km.source, fmt.Sprintf("the private key does not match the public key of its certificate %q (nor of any other certificate given)",
			certs.Trusted[0].Cert.Subject.String()))
		return nil
	case chain == nil:
		b.fail(st.Secret, fmt.Sprintf("%s has no certificate: no certificate of the keystore carries its localKeyId or matches its public key", entryName(entry.Alias)))
		return nil
	case !keystore.KeyMatches(entry.Key, chain[0]):
		b.fail(st.Secret, fmt.Sprintf("%s does not match the public key of its certificate %q",
			keyOfEntry(entry.Alias), chain[0].Subject.String()))
		return nil
	}
	if left := len(certs.Trusted) - len(chain); keys.Format == keystore.PEM && left > 0 {
		b.warn("%s %s: %d certificates are not in the key's chain and are left out", km.kind, where(km.source), left)
	}
	km.alias, km.key, km.chain = entry.Alias, entry.Key, chain
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
	if f := keystore.Detect(certData); f != keystore.PEM && f != keystore.DERCertificate {
		b.fail(*st.Certificate, "not a PEM certificate chain or a DER certificate"+hintSuffix(certData))
		return nil
	}
	if keystore.Detect(keyData) != keystore.PEM {
		b.fail(*st.Key, "not a PEM private key (PKCS#1, PKCS#8, SEC1 or encrypted PKCS#8)"+hintSuffix(keyData))
		return nil
	}
	return b.openPEMKeystore(st, km, keyData, certData, keyPass, keyPassField)
}

// openPEMKeystore opens a PEM keystore: exactly one private key from keyData
// and its chain from certData (which may be the same bytes: PEM, or a DER
// certificate), ordered from the certificate that matches the key.
func (b *builder) openPEMKeystore(st spec.Store, km *keyMaterial, keyData, certData, keyPass []byte, keyPassField spec.Field) *keyMaterial {
	keyField := st.Secret
	if st.Key != nil && st.Key.IsSet() {
		keyField = *st.Key
	}
	keys, err := keystore.OpenPEM(keyData)
	if err != nil {
		b.fail(keyField, "the PEM is corrupt: "+err.Error())
		return nil
	}
	defer keys.Zero()
	certs := keys
	if bytes.Equal(keyData, certData) {
		if len(keys.Ignored) > 0 {
			b.warn("%s %s: PEM blocks %s are not used", km.kind, where(keyField), ignoredTypes(keys.Ignored))
		}
	} else {
		certs, err = keystore.Open(certData, nil)
		if err != nil {
			b.fail(km.source, "the PEM is corrupt: "+err.Error())
			return nil
		}
		certs.Zero()
		if len(certs.Keys) > 0 {
			b.warn("certificate %s: holds a private key, which is not used: the key comes from %s", where(km.source), where(keyField))
		}
	}
	return b.keyEntry(st, km, keys, certs, keyPass, true, keyPassField)
}

// ignoredTypes lists ignored PEM block types for a warning.
func ignoredTypes(types []string) string {
	return `"` + strings.Join(types, `", "`) + `"`
}

// entryName names a private key entry in messages: by its alias, when it
// has one.
func entryName(alias string) string {
	if alias == "" {
		return "the private key entry"
	}
	return fmt.Sprintf("private key entry %q", alias)
}

// keyOfEntry names the private key of an entry in messages.
func keyOfEntry(alias string) string {
	if alias == "" {
		return "the private key"
	}
	return fmt.Sprintf("the private key of entry %q", alias)
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
	key, err := keystore.ParsePKCS8(issued.PrivateKey)
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
	if !keystore.KeyMatches(key, chain[0]) {
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

// keyCountReason explains a keystore that does not hold exactly one private
// key entry, in the words of its format.
func keyCountReason(st *keystore.Store) string {
	n := len(st.Keys)
	if st.Format == keystore.PEM {
		if n > 1 {
			return fmt.Sprintf("holds %d private keys; it must hold exactly one private key and its certificate chain", n)
		}
		reason := "holds no private key (no PRIVATE KEY block); a keystore needs exactly one private key and its certificate chain"
		if len(st.Trusted) > 0 {
			reason += fmt.Sprintf(" (it holds only %d certificates; is it a truststore?)", len(st.Trusted))
		}
		return reason
	}
	if n > 1 {
		return fmt.Sprintf("the keystore holds %d private key entries (%s); it must hold exactly one private key and its certificate chain",
			n, keyAliases(st))
	}
	reason := "the keystore holds no private key entry (PrivateKeyEntry); it must hold exactly one private key and its certificate chain"
	if len(st.Trusted) > 0 {
		aliases := make([]string, len(st.Trusted))
		for i, e := range st.Trusted {
			aliases[i] = strconv.Quote(e.Alias)
		}
		reason += fmt.Sprintf(" (it holds only trusted certificate entries: %s; is it a truststore?)", strings.Join(aliases, ", "))
	}
	return reason
}

// keyAliases lists the aliases of a store's private key entries, quoted,
// for messages.
func keyAliases(st *keystore.Store) string {
	aliases := make([]string, len(st.Keys))
	for i, k := range st.Keys {
		aliases[i] = strconv.Quote(k.Alias)
	}
	return strings.Join(aliases, ", ")
}

// keyError reports a private key that does not open, against the setting
// that caused it, in the words of its format.
func (b *builder) keyError(st spec.Store, keyField, keyPassField spec.Field, format keystore.Format, alias string, err error) {
	switch {
	case errors.Is(err, keystore.ErrCannotRecoverKey) && format == keystore.PEM:
		b.fail(keyPassField, fmt.Sprintf("the password does not decrypt the private key in %s (Cannot recover key)", where(keyField)))
	case errors.Is(err, keystore.ErrCannotRecoverKey):
		name := "the private key"
		if alias != "" {
			name = fmt.Sprintf("private key %q", alias)
		}
		reason := fmt.Sprintf("the password does not open %s in keystore %s (Cannot recover key)", name, where(st.Secret))
		if st.KeyPassword == nil || !st.KeyPassword.IsSet() {
			reason += "; the spec sets no key password, so the keystore password was tried"
		}
		b.fail(keyPassField, reason)
	case errors.Is(err, keystore.ErrNoKeyPassword):
		b.fail(keyField, "the private key is encrypted (ENCRYPTED PRIVATE KEY) and the spec sets no password for it")
	case format == keystore.PEM:
		b.fail(keyField, "the private key: "+err.Error())
	case errors.Is(err, keystore.ErrUnsupportedAlgorithm):
		b.fail(keyField, fmt.Sprintf("%s: %v, which keyship does not read", entryName(alias), err))
	default:
		b.fail(keyField, fmt.Sprintf("%s: %v", entryName(alias), err))
	}
}

// trustMaterial is the trusted certificates a job will use.
type trustMaterial struct {
	truststore []keystore.TrustedEntry
	caBundle   []keystore.TrustedEntry
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
		add(c.Cert)
	}
	for _, c := range t.caBundle {
		add(c.Cert)
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
		t.truststore = keystore.UniqueTrusted(t.truststore)
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
func (b *builder) openTrusted(secret, password spec.Field, kind string) []keystore.TrustedEntry {
	data, okData := b.raw(secret)
	pass, okPass := b.optPassword(password)
	if !okData {
		return nil
	}
	switch format := keystore.Detect(data); format {
	case keystore.JKS, keystore.PKCS12:
		if !password.IsSet() {
			if kind == "CA bundle" && b.spec.Truststore == nil {
				b.fail(secret, fmt.Sprintf("a %s CA bundle opens with the truststore password, and the spec sets no truststore", format))
			} else {
				b.fail(secret, fmt.Sprintf("a %s %s opens with its password, and the spec sets none", format, kind))
			}
			return nil
		}
		store := b.openStore(secret, password, data, pass, okPass, kind)
		if store == nil {
			return nil
		}
		defer store.Zero()
		if len(store.Keys) > 0 {
			b.warn("%s %s: private key entries %s are left out: a %s holds trusted certificates only",
				kind, where(secret), keyAliases(store), kind)
		}
		if len(store.Trusted) == 0 {
			if len(store.Other) == 0 || len(store.Keys) > 0 {
				b.fail(secret, fmt.Sprintf("the %s holds no trusted certificate entry (trustedCertEntry)", kind))
				return nil
			}
			// openssl pkcs12 -export -nokeys writes certificates Java does
			// not list as trustedCertEntry; the stores keyship writes do.
			b.warn("%s %s: its certificates are not marked trusted for Java (as openssl pkcs12 -export writes them without -jdktrust); the %s keyship writes marks them trusted",
				kind, where(secret), kind)
			return trustAliases(store.Other)
		}
		if len(store.Keys) == 0 && len(store.Other) == 0 {
			b.passable(secret, outputFormat(format))
		}
		if format == keystore.JKS {
			// JKS aliases are unique already; the entries stay as Java
			// lists them.
			return store.Trusted
		}
		return keystore.UniqueTrusted(store.Trusted)
	case keystore.PEM:
		store, err := keystore.OpenPEM(data)
		if err != nil {
			b.fail(secret, fmt.Sprintf("the %s PEM is corrupt: %v", kind, err))
			return nil
		}
		store.Zero()
		if len(store.Keys) > 0 {
			b.warn("%s %s: %d private keys are left out: a %s holds trusted certificates only", kind, where(secret), len(store.Keys), kind)
		}
		if len(store.Trusted) == 0 {
			b.fail(secret, fmt.Sprintf("the %s holds no certificate (no CERTIFICATE block)", kind))
			return nil
		}
		return keystore.UniqueTrusted(store.Trusted)
	case keystore.DERCertificate:
		if store, err := keystore.Open(data, nil); err == nil {
			return keystore.UniqueTrusted(store.Trusted)
		}
	}
	b.fail(secret, notAStore(data, kind))
	return nil
}

// notAStore explains data that is no store keyship reads, in words for an
// operator. It never quotes the data.
func notAStore(data []byte, kind string) string {
	if keystore.Detect(data) == keystore.JCEKS {
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

// storeError reports an error opening a store against the setting that
// caused it: the password for a digest or MAC mismatch, the store otherwise.
func (b *builder) storeError(secret, password spec.Field, kind string, err error) {
	switch {
	case errors.Is(err, keystore.ErrWrongPassword):
		b.fail(password, fmt.Sprintf("the password does not open %s %s (keystore was tampered with, or password was incorrect)", kind, where(secret)))
	case errors.Is(err, keystore.ErrUnsupportedAlgorithm):
		b.fail(secret, fmt.Sprintf("the %s uses %v, which keyship does not read", kind, err))
	default:
		b.fail(secret, fmt.Sprintf("the %s is corrupt: %v", kind, err))
	}
}

// trustAliases names certificates as a truststore holds them, dropping
// repeated certificates (keystore.UniqueTrusted).
func trustAliases(certs []*x509.Certificate) []keystore.TrustedEntry {
	entries := make([]keystore.TrustedEntry, len(certs))
	for i, c := range certs {
		entries[i] = keystore.TrustedEntry{Cert: c}
	}
	return keystore.UniqueTrusted(entries)
}

// certsOf returns the certificates of entries.
func certsOf(entries []keystore.TrustedEntry) []*x509.Certificate {
	out := make([]*x509.Certificate, len(entries))
	for i, e := range entries {
		out[i] = e.Cert
	}
	return out
}
