package materialize

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyship/keyship/host/spec"
)

// The pre-flight checks that need an opened keystore: trust (3), hosts (4),
// expiry (5) and what the key and certificate can serve (6). Checks 1, 2 and
// 7 run while the stores are opened.

// checkChain runs checks 3, 4 and 5 on the keystore's chain.
func (b *builder) checkChain(ks *keyMaterial, t trustMaterial) {
	// The job's JVM trusts its truststore (spark.ssl.trustStore,
	// security.ssl.truststore); the CA bundle or the issuer's CA only when
	// the spec has none.
	// A store that did not open is reported already: no trust check then.
	var anchors []*x509.Certificate
	switch s := b.spec; {
	case s.Truststore != nil:
		anchors = certsOf(t.truststore)
	case s.CABundle != nil:
		anchors = certsOf(t.caBundle)
	default:
		anchors = b.issuedCA
	}
	if len(anchors) > 0 {
		if reason := trustPath(ks.chain, anchors); reason != "" {
			field, name := b.trustSource(ks)
			msg := fmt.Sprintf("%s does not trust %s: unable to find valid certification path to requested target (%s)",
				name, ks.label(), reason)
			if b.verifiesCerts() {
				b.fail(field, msg)
			} else {
				b.warn("%s; libprocess does not verify certificates here (LIBPROCESS_SSL_VERIFY_CERT is not true), so this does not fail", msg)
			}
		}
	}
	b.checkHosts(ks)
	b.checkExpiry(ks, anchors)
}

// trustSource is the setting the trust check blames, and its name in
// messages.
func (b *builder) trustSource(ks *keyMaterial) (spec.Field, string) {
	s := b.spec
	switch {
	case s.Truststore != nil && s.Truststore.Secret.IsSet():
		return s.Truststore.Secret, "truststore " + where(s.Truststore.Secret)
	case s.Truststore != nil && s.Truststore.Certificate != nil:
		return *s.Truststore.Certificate, "truststore " + where(*s.Truststore.Certificate)
	case s.CABundle != nil && s.CABundle.IsSet():
		return *s.CABundle, "CA bundle " + where(*s.CABundle)
	}
	return ks.source, "the issuer's CA certificates"
}

// trustPath says why chain does not lead to one of anchors, the way Java's
// PKIX trust manager and OpenSSL decide, or returns "" when it does: the
// leaf is itself trusted, or each certificate is signed by the next one of
// the chain (a CA) until one is signed by a trusted certificate. As in both,
// the validity of a trusted certificate is not checked, and SHA-1
// signatures are accepted.
func trustPath(chain, anchors []*x509.Certificate) string {
	trusted := func(c *x509.Certificate) bool { return slices.ContainsFunc(anchors, c.Equal) }
	used := make([]bool, len(chain))
	cur := chain[0]
	used[0] = true
	for {
		if trusted(cur) {
			return ""
		}
		var sameName *x509.Certificate
		var sameNameErr error
		for _, a := range anchors {
			if !bytes.Equal(a.RawSubject, cur.RawIssuer) {
				continue
			}
			err := signedBy(cur, a)
			if err == nil {
				return ""
			}
			sameName, sameNameErr = a, err
		}
		next := -1
		for i, c := range chain {
			if !used[i] && bytes.Equal(c.RawSubject, cur.RawIssuer) && signedBy(cur, c) == nil {
				next = i
				break
			}
		}
		if next < 0 {
			var insecure x509.InsecureAlgorithmError
			switch {
			case sameName != nil && errors.As(sameNameErr, &insecure):
				return fmt.Sprintf("certificate %q is signed with %v, which Java and OpenSSL reject", cur.Subject.String(), insecure)
			case sameName != nil:
				return fmt.Sprintf("the truststore's %q has the name of the issuer of %q but not its key: a different CA with the same name (signature check failed)",
					sameName.Subject.String(), cur.Subject.String())
			case cur == chain[0] || bytes.Equal(cur.RawIssuer, cur.RawSubject):
				return fmt.Sprintf("issuer %q not in truststore", cur.Issuer.String())
			}
			return fmt.Sprintf("issuer %q of %q not in the keystore's chain or the truststore", cur.Issuer.String(), cur.Subject.String())
		}
		c := chain[next]
		if !c.BasicConstraintsValid || !c.IsCA {
			return fmt.Sprintf("%q signs %q but is not a CA (basicConstraints CA:true is missing)", c.Subject.String(), cur.Subject.String())
		}
		used[next] = true
		cur = c
	}
}

// signedBy checks child's signature with parent's key. SHA-1 is accepted
// (Java and OpenSSL accept it from a private CA); MD5 is not.
// A signature once verified stays verified: jobs of one application check
// the same chain again and again, and a public-key operation per check is
// most of a Build's CPU. The memo is bounded and keyed by both
// certificates' bytes.
func signedBy(child, parent *x509.Certificate) error {
	h := sha256.New()
	h.Write(child.Raw)
	h.Write([]byte{0})
	h.Write(parent.Raw)
	var key [sha256.Size]byte
	h.Sum(key[:0])
	if _, ok := verified.Load(key); ok {
		return nil
	}
	if err := parent.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature); err != nil {
		return err
	}
	if verifiedCount.Add(1) > maxVerified {
		verified.Clear()
		verifiedCount.Store(1)
	}
	verified.Store(key, struct{}{})
	return nil
}

// verified holds the pairs (child, parent) whose signature checked.
var (
	verified      sync.Map // [32]byte -> struct{}
	verifiedCount atomic.Int64
)

// maxVerified bounds the memo of verified signatures (32 bytes each).
const maxVerified = 4096

// hosts returns the hosts the leaf must cover, trimmed and without
// duplicates.
func (b *builder) hosts() []string {
	var out []string
	for _, h := range b.spec.Hosts {
		h = strings.TrimSpace(h)
		if h != "" && !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, h) }) {
			out = append(out, h)
		}
	}
	return out
}

// checkHosts is check 4: the leaf covers every host.
func (b *builder) checkHosts(ks *keyMaterial) {
	leaf := ks.chain[0]
	for _, h := range b.hosts() {
		if coversHost(leaf, h) {
			continue
		}
		reason := fmt.Sprintf("%s: no name matching %s found (certificate covers %s)", ks.label(), h, certNames(leaf))
		if net.ParseIP(h) != nil {
			reason += "; an IP address must be an IP address subject alternative name"
		}
		if why := b.noHostnameVerification(); why != "" {
			b.warn("%s; %s, so this does not fail", reason, why)
			continue
		}
		b.fail(ks.source, reason)
	}
}

// verifiesCerts reports whether the consumer verifies the peer's
// certificate chain: always, except libprocess unless VERIFY_CERT or
// REQUIRE_CERT is on.
func (b *builder) verifiesCerts() bool {
	lp := b.spec.Libprocess
	if lp == nil {
		return true
	}
	return lp.VerifyCert != nil && *lp.VerifyCert || lp.RequireCert != nil && *lp.RequireCert
}

// noHostnameVerification says why the consumer does not check hostnames, or
// returns "" when it does: then a host the certificate does not cover fails.
func (b *builder) noHostnameVerification() string {
	switch {
	case b.spec.VerifyHostname != nil && !*b.spec.VerifyHostname:
		return "hostname verification is off in the request (e.g. security.ssl.verify-hostname: false)"
	case !b.verifiesCerts():
		return "libprocess does not verify certificates here (LIBPROCESS_SSL_VERIFY_CERT is not true)"
	}
	return ""
}

// checkExpiry is check 5 on the chain: trusted certificates in the chain
// are skipped, as Java and OpenSSL do not check a trust anchor's validity.
func (b *builder) checkExpiry(ks *keyMaterial, anchors []*x509.Certificate) {
	warnWithin := b.opts.ExpiryWarning
	if warnWithin == 0 {
		warnWithin = DefaultExpiryWarning
	}
	const day = 24 * time.Hour
	for i, c := range ks.chain {
		if i > 0 && slices.ContainsFunc(anchors, c.Equal) {
			continue
		}
		name := fmt.Sprintf("certificate %q", c.Subject.String())
		if i > 0 {
			name = "CA " + name + " of its chain"
		}
		stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
		switch {
		case b.now.After(c.NotAfter):
			b.fail(ks.source, fmt.Sprintf("%s: %s expired on %s (CertificateExpiredException: NotAfter: %s)",
				ks.label(), name, stamp(c.NotAfter), stamp(c.NotAfter)))
		case b.now.Before(c.NotBefore):
			b.fail(ks.source, fmt.Sprintf("%s: %s is not yet valid until %s (CertificateNotYetValidException: NotBefore: %s)",
				ks.label(), name, stamp(c.NotBefore), stamp(c.NotBefore)))
		case !b.opts.Deadline.IsZero() && c.NotAfter.Before(b.opts.Deadline):
			b.fail(ks.source, fmt.Sprintf("%s: %s expires on %s, before the job's deadline %s",
				ks.label(), name, stamp(c.NotAfter), stamp(b.opts.Deadline)))
		case warnWithin > 0 && c.NotAfter.Before(b.now.Add(warnWithin)):
			days := int(math.Ceil(c.NotAfter.Sub(b.now).Hours() / 24))
			b.warn("%s: %s expires on %s, in %d days (inside the %d-day warning window)",
				ks.label(), name, stamp(c.NotAfter), days, int(warnWithin/day))
		}
	}
}

// protocolField names the protocol setting of the spec's dialect for
// messages: Spec.ProtocolSetting, or for a spec built in code the keystore
// setting's prefix with "protocol", or "protocol".
func (b *builder) protocolField() spec.Field {
	if b.spec.ProtocolSetting != "" {
		return spec.Field{Name: b.spec.ProtocolSetting}
	}
	name := b.spec.Keystore.Secret.Name
	if name == "" && b.spec.Keystore.Certificate != nil {
		name = b.spec.Keystore.Certificate.Name
	}
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return spec.Field{Name: name[:i+1] + "protocol"}
	}
	return spec.Field{Name: "protocol"}
}

// checkProtocol is check 6: the protocol is TLSv1.2 or TLSv1.3, and the
// key and leaf certificate can serve it.
func (b *builder) checkProtocol(ks *keyMaterial) {
	protocol := b.spec.Protocol
	if protocol == "" {
		protocol = spec.DefaultProtocol
	}
	switch protocol {
	case "TLSv1.2", "TLSv1.3":
	case "SSLv3", "TLSv1", "TLSv1.0", "TLSv1.1":
		b.fail(b.protocolField(), fmt.Sprintf("protocol %s is disabled in Java (jdk.tls.disabledAlgorithms, since 8u291 and 11.0.11) and in OpenSSL 3 at its default security level; use TLSv1.2 or TLSv1.3", protocol))
		return
	default:
		b.fail(b.protocolField(), fmt.Sprintf("protocol %q is not one Java and OpenSSL both accept; use TLSv1.2 or TLSv1.3", protocol))
		return
	}
	if ks == nil {
		return
	}
	leaf := ks.chain[0]
	switch k := ks.key.(type) {
	case *rsa.PrivateKey:
		switch bits := k.N.BitLen(); {
		case bits < 1024:
			b.fail(ks.source, fmt.Sprintf("%s: the RSA key has %d bits; Java refuses RSA keys under 1024 bits (jdk.certpath.disabledAlgorithms) and OpenSSL under 2048: use 2048 bits or more", ks.label(), bits))
		case bits < 2048:
			b.warn("%s: the RSA key has %d bits; OpenSSL at security level 2 (Debian, Ubuntu, RHEL defaults) refuses keys under 2048 bits", ks.label(), bits)
		}
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
	default:
		b.fail(ks.source, fmt.Sprintf("%s: a %T key cannot serve %s; use an RSA or EC key", ks.label(), ks.key, protocol))
	}
	b.checkSuites(ks, protocol)
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		_, isRSA := ks.key.(*rsa.PrivateKey)
		if protocol == "TLSv1.3" || !isRSA || leaf.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
			b.fail(ks.source, fmt.Sprintf("%s: the certificate's key usage lacks digitalSignature, which %s needs to sign the handshake (Java: KeyUsage does not allow digital signatures)", ks.label(), protocol))
		}
	}
	if len(leaf.ExtKeyUsage) > 0 || len(leaf.UnknownExtKeyUsage) > 0 {
		has := func(u x509.ExtKeyUsage) bool {
			return slices.Contains(leaf.ExtKeyUsage, u) || slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny)
		}
		if !has(x509.ExtKeyUsageServerAuth) {
			b.fail(ks.source, fmt.Sprintf("%s: the certificate's extended key usage does not include TLS server authentication (serverAuth): Java rejects it (Extended key usage does not permit use for TLS server authentication)", ks.label()))
		} else if !has(x509.ExtKeyUsageClientAuth) {
			b.warn("%s: the certificate's extended key usage lacks clientAuth: peers that require client certificates (mutual TLS, Flink's internal connections) reject it", ks.label())
		}
	}
}

// suiteKey returns the kind of key a TLS 1.2 cipher suite (a JSSE name)
// needs the server to have: "EC" for the ECDSA suites (and the obsolete
// static ECDH ones, whose certificate holds an EC key), "RSA" for the RSA
// ones (TLS_ECDHE_RSA_, TLS_DHE_RSA_, TLS_RSA_), "DSA" for TLS_DHE_DSS_; ""
// for a name it cannot tell (a signalling suite, an anonymous or PSK suite,
// a name Java does not know), which the check then does not hold against
// the key.
func suiteKey(suite string) string {
	switch {
	case strings.Contains(suite, "_ECDSA_"), strings.HasPrefix(suite, "TLS_ECDH_RSA_"):
		return "EC"
	case strings.HasPrefix(suite, "TLS_ECDHE_RSA_"), strings.HasPrefix(suite, "TLS_DHE_RSA_"),
		strings.HasPrefix(suite, "TLS_RSA_WITH_"), strings.HasPrefix(suite, "SSL_RSA_WITH_"):
		return "RSA"
	case strings.HasPrefix(suite, "TLS_DHE_DSS_"), strings.HasPrefix(suite, "SSL_DHE_DSS_"):
		return "DSA"
	}
	return ""
}

// checkSuites is part of check 6: when the consumer enables only the cipher
// suites the spec lists (Flink's security.ssl.algorithms, Spark's
// spark.ssl.enabledAlgorithms: setEnabledCipherSuites on every engine), one
// of them must be one the keystore's key can serve with a protocol the
// consumer enables. JSSE chooses a TLS 1.2 suite only when the server's key
// fits it (X509KeyManager.chooseServerAlias for the suite's key type): an EC
// key with only RSA suites, or an RSA key with only ECDSA suites, fails every
// handshake with "no cipher suites in common". TLS 1.3 suites work with any
// key. A spec that lists no suites leaves them to keyship (Flink:
// spec.DefaultSuites, for EC and RSA keys alike) or to Java's defaults
// (Spark), which fit every key.
func (b *builder) checkSuites(ks *keyMaterial, protocol string) {
	suites := b.spec.CipherSuites
	if len(suites) == 0 {
		return
	}
	tls12, tls13 := protocol == "TLSv1.2", protocol == "TLSv1.3"
	if sp := b.spec.Spark; sp != nil && sp.Protocol == spec.ProtocolTLS {
		tls12, tls13 = true, true
	}
	kind := ""
	switch ks.key.(type) {
	case *rsa.PrivateKey:
		kind = "RSA"
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
		kind = "EC"
	default:
		return // check 6 reports the key itself
	}
	var fit []string
	for _, s := range suites {
		need := suiteKey(s)
		switch {
		case spec.IsTLS13Suite(s):
			if tls13 {
				return
			}
		case !tls12:
		case need == "" || need == kind:
			return
		default:
			fit = append(fit, need)
		}
	}
	name := b.spec.CipherSuitesSetting
	if name == "" {
		name = "the cipher suites"
	}
	want := "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
	if kind == "RSA" {
		want = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
	}
	reason := fmt.Sprintf("%s: the key is %s, and %s (%s) lists no cipher suite an %s key can serve with %s (they need %s keys), so Java fails every handshake with "+
		"\"no cipher suites in common\"; add a suite for %s keys such as %s, or use a key those suites fit",
		ks.label(), kind, name, strings.Join(suites, ","), kind, protocol, strings.Join(slices.Compact(slices.Sorted(slices.Values(fit))), " or "), kind, want)
	if len(fit) == 0 {
		return // only TLS 1.3 suites with TLS 1.2: spec.CheckSuites reports it
	}
	b.fail(spec.Field{Name: name}, reason)
}
