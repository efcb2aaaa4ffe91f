package materialize

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/keyship/keyship/host/keystore/keystoretest"
	"github.com/keyship/keyship/host/materialize/testca"
	"github.com/keyship/keyship/host/spec"
)

// issueCert signs a certificate from tmpl for key's public half with
// parent's key (self-signed when parent is nil). The template gets a serial
// number, validity and basic constraints unless it sets them.
func issueCert(t testing.TB, tmpl *x509.Certificate, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		tmpl.NotAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	tmpl.BasicConstraintsValid = true
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// withKeystore builds dcosSpec with a keystore of key and chain and a
// truststore of trusted.
func withKeystore(t testing.TB, key crypto.PrivateKey, chain []*x509.Certificate, trusted ...*x509.Certificate) (*spec.Spec, Secrets) {
	t.Helper()
	s := dcosSpec()
	s.CABundle = nil
	in := goodInputs(t)
	in.keystore = keystoretest.RawJKS(t, storePass, keystoretest.RawEntry{Alias: "node", Key: key, Pass: keyPass, Chain: chain})
	if len(trusted) > 0 {
		in.truststore = must(JKSTruststore(trusted, []byte(trustPass)))
	}
	return s, in.secrets(s)
}

// TestCheck1StoreAndKeyPasswords: the store password opens the store and
// the key password the key, whatever the format, in Java's words.
func TestCheck1StoreAndKeyPasswords(t *testing.T) {
	fm := forms(t)[1] // PKCS12; the key password is the store password's ref
	fm.values["security.tls.keystore_password"] = []byte("wrong-store-pass")
	fm.values["security.tls.key_password"] = []byte("wrong-store-pass")
	_, err := fm.build(t, Options{})
	checkProblems(t, err, []string{"wrong-store-pass", storePass}, problem{"security.tls.keystore_password", []string{
		"the password does not open keystore /spark/keystore (keystore was tampered with, or password was incorrect)"}})

	// keyship's PKCS12 keystore names no alias (go-pkcs12 writes none);
	// the JKS case names it (TestBuildFailures).
	fm = forms(t)[1]
	fm.values["security.tls.key_password"] = []byte("wrong-key-pass")
	fm.spec.Keystore.KeyPassword.Ref.Path = "/spark/key_password"
	_, err = fm.build(t, Options{})
	checkProblems(t, err, []string{"wrong-key-pass", storePass}, problem{"security.tls.key_password", []string{
		`the password does not open the private key in keystore /spark/keystore (Cannot recover key)`}})

	fm = forms(t)[6] // encrypted PKCS#8 key in its own secret
	fm.values["tls.key_password"] = []byte("wrong-key-pass")
	fm.spec.Keystore.KeyPassword.Ref.Path = "/tls/key_password"
	_, err = fm.build(t, Options{})
	checkProblems(t, err, []string{"wrong-key-pass", storePass}, problem{"tls.key_password", []string{
		"the password does not decrypt the private key in /tls/key (Cannot recover key)"}})

	fm = forms(t)[6]
	fm.spec.Keystore.KeyPassword, fm.spec.Keystore.Password = nil, spec.Field{}
	_, err = fm.build(t, Options{})
	checkProblems(t, err, testPasswords, problem{"tls.key", []string{"ENCRYPTED PRIVATE KEY", "sets no password"}})

	fm = forms(t)[1]
	fm.spec.Keystore.Password = spec.Field{}
	_, err = fm.build(t, Options{})
	checkProblems(t, err, testPasswords, problem{"security.tls.keystore_secret", []string{"a PKCS12 keystore opens with its store password, and the spec sets none"}})
}

// TestCheck2OneMatchingKey: exactly one private key, matching the leaf.
func TestCheck2OneMatchingKey(t *testing.T) {
	f := fx()
	twoKeys := append(append(keystoretest.PEMKey(t, pemPKCS8Key, f.node.Key), keystoretest.PEMKey(t, pemECKey, f.other.Key)...), EncodePEMCertificates(f.node.Chain)...)
	noKey := EncodePEMCertificates(f.node.Chain)
	mismatch := append(keystoretest.PEMKey(t, pemPKCS8Key, f.other.Key), EncodePEMCertificates(f.node.Chain)...)
	caOnly := must(p12Truststore([]*x509.Certificate{f.ca.Cert}, storePass, ""))
	for _, c := range []struct {
		name     string
		keystore []byte
		want     []string
	}{
		{"two PEM keys", twoKeys, []string{"holds 2 private keys; it must hold exactly one private key and its certificate chain"}},
		{"no PEM key", noKey, []string{"holds no private key", "it holds only 2 certificates; is it a truststore?"}},
		{"PEM key of another certificate", mismatch, []string{`the private key does not match the public key of its certificate "CN=node1.example.com"`}},
		{"PKCS12 truststore as keystore", caOnly, []string{"holds no private key entry (PrivateKeyEntry)", `"sample ca"; is it a truststore?`}},
		{"DER certificate as keystore", f.node.Chain[0].Raw, []string{"single DER certificate without its private key"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fm := forms(t)[0]
			fm.values["security.tls.keystore_secret"] = c.keystore
			_, err := fm.build(t, Options{})
			checkProblems(t, err, testPasswords, problem{"security.tls.keystore_secret", c.want})
		})
	}
}

// TestCheck3Trust: the chain verifies against the truststore the job uses.
func TestCheck3Trust(t *testing.T) {
	f := fx()
	sameName := must(testca.NewCA("Sample CA")) // same name, other key
	interKey := ecKey(t)
	inter := issueCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Intermediate CA"}, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign}, interKey, f.ca.Cert, f.ca.Key)
	notCA := issueCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Not A CA"}}, interKey, f.ca.Cert, f.ca.Key)
	leafKey := ecKey(t)
	leaf := issueCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "leaf"}, DNSNames: []string{"node1.example.com"}}, leafKey, inter, interKey)
	leafOfNotCA := issueCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "leaf"}}, leafKey, notCA, interKey)
	self := issueCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "self"}, DNSNames: []string{"node1.example.com"}}, leafKey, nil, nil)

	for _, c := range []struct {
		name    string
		key     crypto.PrivateKey
		chain   []*x509.Certificate
		trusted []*x509.Certificate
		want    string // "" when trusted
	}{
		{"signed by the trusted CA", f.node.Key, f.node.Chain, []*x509.Certificate{f.ca.Cert}, ""},
		{"chain without the root", f.node.Key, f.node.Chain[:1], []*x509.Certificate{f.ca.Cert}, ""},
		{"through an intermediate", leafKey, []*x509.Certificate{leaf, inter, f.ca.Cert}, []*x509.Certificate{f.ca.Cert}, ""},
		{"trusting the intermediate", leafKey, []*x509.Certificate{leaf, inter}, []*x509.Certificate{inter}, ""},
		{"self-signed leaf trusted itself", leafKey, []*x509.Certificate{self}, []*x509.Certificate{self}, ""},
		{"other CA", f.node.Key, f.node.Chain, []*x509.Certificate{f.otherCA.Cert},
			`truststore /spark/truststore does not trust keystore /spark/keystore: unable to find valid certification path to requested target (issuer "CN=Sample CA" not in truststore)`},
		{"same name, other key", f.node.Key, f.node.Chain[:1], []*x509.Certificate{sameName.Cert},
			`unable to find valid certification path to requested target (the truststore's "CN=Sample CA" has the name of the issuer of "CN=node1.example.com" but not its key`},
		{"missing intermediate", leafKey, []*x509.Certificate{leaf}, []*x509.Certificate{f.ca.Cert},
			`unable to find valid certification path to requested target (issuer "CN=Intermediate CA" not in truststore)`},
		{"intermediate missing in the middle", leafKey, []*x509.Certificate{leaf, inter}, []*x509.Certificate{f.otherCA.Cert},
			`(issuer "CN=Sample CA" of "CN=Intermediate CA" not in the keystore's chain or the truststore)`},
		{"intermediate that is not a CA", leafKey, []*x509.Certificate{leafOfNotCA, notCA}, []*x509.Certificate{f.ca.Cert},
			`("CN=Not A CA" signs "CN=leaf" but is not a CA (basicConstraints CA:true is missing))`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, secrets := withKeystore(t, c.key, c.chain, c.trusted...)
			_, err := Build(context.Background(), s, secrets, Options{})
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkProblems(t, err, testPasswords, problem{"security.tls.truststore_secret", []string{c.want}})
		})
	}
}

func TestMatchHostname(t *testing.T) {
	for _, c := range []struct {
		pattern, host string
		want          bool
	}{
		{"node1.example.com", "node1.example.com", true},
		{"NODE1.example.com.", "node1.EXAMPLE.com", true},
		{"node1.example.com", "node2.example.com", false},
		{"*.example.com", "node1.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.b.example.com", false},
		{"*.example.com", ".example.com", false},
		{"*.com", "example.com", false},
		{"f*.example.com", "foo.example.com", false},
		{"*.*.example.com", "a.b.example.com", false},
		{"node.*.com", "node.example.com", false},
		{"", "node1.example.com", false},
	} {
		if got := matchHostname(c.pattern, c.host); got != c.want {
			t.Errorf("matchHostname(%q, %q) = %v, want %v", c.pattern, c.host, got, c.want)
		}
	}
}

// TestCheck4Hosts: the leaf covers every host, by SAN DNS and IP, RFC 6125
// wildcards, and the CN only without DNS SANs.
func TestCheck4Hosts(t *testing.T) {
	f := fx()
	key := ecKey(t)
	leaf := issueCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "cn.example.com"},
		DNSNames: []string{"node1.example.com", "*.nodes.example.com"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.7")}}, key, f.ca.Cert, f.ca.Key)
	cnOnly := issueCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "cn.example.com"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.7")}}, key, f.ca.Cert, f.ca.Key)
	for _, c := range []struct {
		name  string
		leaf  *x509.Certificate
		hosts []string
		want  []string // uncovered hosts
	}{
		{"SANs", leaf, []string{"node1.example.com", "a.nodes.example.com", "10.0.0.7", " NODE1.example.com "}, nil},
		{"uncovered", leaf, []string{"node3.example.com", "a.b.nodes.example.com", "cn.example.com", "10.0.0.8", "node1.example.com"},
			[]string{"node3.example.com", "a.b.nodes.example.com", "cn.example.com", "10.0.0.8"}},
		{"CN without DNS SAN", cnOnly, []string{"cn.example.com", "10.0.0.7"}, nil},
		{"IP is not a DNS name", cnOnly, []string{"10.0.0.9"}, []string{"10.0.0.9"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, secrets := withKeystore(t, key, []*x509.Certificate{c.leaf, f.ca.Cert}, f.ca.Cert)
			_, err := Build(context.Background(), onHosts(s, c.hosts...), secrets, Options{})
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var want []problem
			for _, h := range c.want {
				want = append(want, problem{"security.tls.keystore_secret", []string{"keystore /spark/keystore: no name matching " + h + " found (certificate covers "}})
			}
			checkProblems(t, err, testPasswords, want...)
		})
	}

	// The issue's words, exactly; and Spec.Hosts when Options has none.
	s, secrets := withKeystore(t, f.node.Key, f.node.Chain, f.ca.Cert)
	s.Hosts = []string{"node3.example.com"}
	_, err := Build(context.Background(), s, secrets, Options{})
	want := "security.tls.keystore_secret (/spark/keystore): keystore /spark/keystore: no name matching node3.example.com found (certificate covers node1.example.com, node2.example.com)"
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
	if _, err := Build(context.Background(), onHosts(s, "node2.example.com"), secrets, Options{}); err != nil {
		t.Errorf("the keystore for a host it covers: %v", err)
	}

	// A consumer that does not verify hostnames (Flink's
	// security.ssl.verify-hostname: false, libprocess without VERIFY_CERT)
	// gets a warning, not a failure.
	off, on := false, true
	for name, change := range map[string]func(*spec.Spec){
		"verify-hostname false": func(s *spec.Spec) { s.VerifyHostname = &off },
		"libprocess":            func(s *spec.Spec) { s.Libprocess = &spec.Libprocess{} },
	} {
		s, secrets := withKeystore(t, f.node.Key, f.node.Chain, f.otherCA.Cert)
		change(s)
		b, err := Build(context.Background(), onHosts(s, "node3.example.com"), secrets, Options{})
		if name == "libprocess" {
			if err != nil || len(b.Warnings) != 2 || !strings.Contains(b.Warnings[0], "unable to find valid certification path") {
				t.Errorf("%s: %v, warnings %q", name, err, b.Warnings)
			}
			s.Libprocess.VerifyCert = &on
			_, err = Build(context.Background(), onHosts(s, "node3.example.com"), secrets, Options{})
			checkProblems(t, err, testPasswords,
				problem{"security.tls.truststore_secret", []string{"unable to find valid certification path"}},
				problem{"security.tls.keystore_secret", []string{"no name matching node3.example.com found"}})
			continue
		}
		if err == nil {
			t.Errorf("%s: an untrusted chain passed", name)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || len(e.Problems.List) != 1 || len(e.Warnings) != 1 ||
			!strings.Contains(e.Warnings[0], "no name matching node3.example.com found") || !strings.Contains(e.Warnings[0], "hostname verification is off") {
			t.Errorf("%s: %v, warnings %v", name, err, e)
		}
	}
}

// TestCheck5Expiry: expired, not yet valid, expiring before the deadline
// fail; expiring inside the warning window warns.
func TestCheck5Expiry(t *testing.T) {
	f := fx()
	leaf := f.node.Chain[0]
	s, secrets := withKeystore(t, f.node.Key, f.node.Chain, f.ca.Cert)
	at := func(d time.Time) func() time.Time { return func() time.Time { return d } }
	for _, c := range []struct {
		name string
		opts Options
		want string // problem; "" for none
		warn string // warning; "" for none
	}{
		{"valid", Options{}, "", ""},
		{"expired", Options{Now: at(leaf.NotAfter.Add(time.Hour))}, `keystore /spark/keystore: certificate "CN=node1.example.com" expired on ` + leaf.NotAfter.UTC().Format(time.RFC3339) + " (CertificateExpiredException", ""},
		{"not yet valid", Options{Now: at(leaf.NotBefore.Add(-time.Hour))}, "is not yet valid until", ""},
		{"deadline", Options{Deadline: leaf.NotAfter.Add(24 * time.Hour)}, "expires on " + leaf.NotAfter.UTC().Format(time.RFC3339) + ", before the job's deadline", ""},
		{"inside the window", Options{Now: at(leaf.NotAfter.Add(-10 * 24 * time.Hour))}, "", `certificate "CN=node1.example.com" expires on ` + leaf.NotAfter.UTC().Format(time.RFC3339) + ", in 10 days (inside the 30-day warning window)"},
		{"custom window", Options{ExpiryWarning: 100 * 24 * time.Hour}, "", "inside the 100-day warning window"},
		{"window off", Options{Now: at(leaf.NotAfter.Add(-time.Hour)), ExpiryWarning: -1}, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := Build(context.Background(), s, secrets, c.opts)
			if c.want != "" {
				checkProblems(t, err, testPasswords, problem{"security.tls.keystore_secret", []string{c.want}})
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.warn == "" && len(b.Warnings) > 0:
				t.Errorf("warnings %q, want none", b.Warnings)
			case c.warn != "" && (len(b.Warnings) != 1 || !strings.Contains(b.Warnings[0], c.warn)):
				t.Errorf("warnings %q, want one saying %q", b.Warnings, c.warn)
			}
		})
	}
}

// TestCheck6Protocol: TLSv1.2 or TLSv1.3 only, and a key and certificate
// that can serve it.
func TestCheck6Protocol(t *testing.T) {
	f := fx()
	for _, p := range []string{"TLSv1.1", "TLSv1", "SSLv3"} {
		s, secrets := withKeystore(t, f.node.Key, f.node.Chain, f.ca.Cert)
		s.Protocol = p
		_, err := Build(context.Background(), s, secrets, Options{})
		checkProblems(t, err, testPasswords, problem{"security.tls.protocol", []string{"protocol " + p + " is disabled in Java", "use TLSv1.2 or TLSv1.3"}})
	}
	s, secrets := withKeystore(t, f.node.Key, f.node.Chain, f.ca.Cert)
	s.Protocol = "TLSv9"
	_, err := Build(context.Background(), s, secrets, Options{})
	checkProblems(t, err, testPasswords, problem{"security.tls.protocol", []string{`protocol "TLSv9" is not one Java and OpenSSL both accept`}})

	key := ecKey(t)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	dns := []string{"node1.example.com"}
	for _, c := range []struct {
		name     string
		key      crypto.Signer
		tmpl     *x509.Certificate
		protocol string
		want     string
		warn     string
	}{
		{"no digitalSignature", key, &x509.Certificate{Subject: pkix.Name{CommonName: "ku"}, DNSNames: dns, KeyUsage: x509.KeyUsageKeyEncipherment}, "TLSv1.2",
			"the certificate's key usage lacks digitalSignature, which TLSv1.2 needs", ""},
		{"client auth only", key, &x509.Certificate{Subject: pkix.Name{CommonName: "eku"}, DNSNames: dns, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, "TLSv1.3",
			"does not include TLS server authentication (serverAuth)", ""},
		{"server auth only", key, &x509.Certificate{Subject: pkix.Name{CommonName: "eku"}, DNSNames: dns, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, "TLSv1.3",
			"", "lacks clientAuth"},
		{"RSA 1024", rsa1024, &x509.Certificate{Subject: pkix.Name{CommonName: "rsa"}, DNSNames: dns}, "TLSv1.2",
			"", "the RSA key has 1024 bits; OpenSSL at security level 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			leaf := issueCert(t, c.tmpl, c.key, f.ca.Cert, f.ca.Key)
			s, secrets := withKeystore(t, c.key, []*x509.Certificate{leaf, f.ca.Cert}, f.ca.Cert)
			s.Protocol = c.protocol
			b, err := Build(context.Background(), s, secrets, Options{})
			if c.want != "" {
				checkProblems(t, err, testPasswords, problem{"security.tls.keystore_secret", []string{c.want}})
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Warnings) != 1 || !strings.Contains(b.Warnings[0], c.warn) {
				t.Errorf("warnings %q, want one saying %q", b.Warnings, c.warn)
			}
		})
	}
}

// TestCheck7PrintableASCII covers inline passwords too (the ref ones are in
// TestBuildFailures).
func TestCheck7PrintableASCII(t *testing.T) {
	fm := forms(t)[7] // Spark inline
	fm.spec.Keystore.Password.Value = []byte("caf\xc3\xa9-pass")
	// PKCS12 takes printable ASCII only (JKS: TestNonASCIIPasswords).
	_, err := fm.build(t, Options{Outputs: []Format{FormatPKCS12}})
	checkProblems(t, err, []string{"caf\xc3\xa9-pass"}, problem{"spark.ssl.keyStorePassword", []string{"outside printable ASCII (0x20-0x7E)", "Password is not ASCII"}})
	var fe *spec.FieldError
	if !errors.As(err, &fe) || fe.Ref != "" {
		t.Errorf("an inline setting's problem names a ref: %+v", fe)
	}
}

// TestThreeCheckProblemsReportedTogether: an expired certificate, a host it
// does not cover and an untrusted CA are all reported by one Build.
func TestThreeCheckProblemsReportedTogether(t *testing.T) {
	f := fx()
	s, secrets := withKeystore(t, f.node.Key, f.node.Chain, f.otherCA.Cert)
	_, err := Build(context.Background(), onHosts(s, "node3.example.com"), secrets, Options{
		Now: func() time.Time { return f.node.Chain[0].NotAfter.Add(time.Minute) },
	})
	checkProblems(t, err, testPasswords,
		problem{"security.tls.truststore_secret", []string{"unable to find valid certification path to requested target"}},
		problem{"security.tls.keystore_secret", []string{"no name matching node3.example.com found"}},
		problem{"security.tls.keystore_secret", []string{`certificate "CN=node1.example.com" expired on`}},
		problem{"security.tls.keystore_secret", []string{`CA certificate "CN=Sample CA" of its chain expired on`}},
	)
	var e *Error
	if !errors.As(err, &e) || e.Problems == nil {
		t.Errorf("error %T is not a *materialize.Error", err)
	}
}

// TestWarningsComeWithProblems: a failing Build still says what it would
// have warned about.
func TestWarningsComeWithProblems(t *testing.T) {
	fm := forms(t)[0]
	fm.values["security.tls.truststore_secret"] = keystoretest.RawJKS(t, trustPass,
		keystoretest.RawEntry{Alias: "stray", Key: fx().other.Key, Pass: keyPass, Chain: fx().other.Chain},
		keystoretest.RawEntry{Alias: "ca", Chain: []*x509.Certificate{fx().ca.Cert}})
	_, err := fm.on("node9.example.com").build(t, Options{})
	var e *Error
	if !errors.As(err, &e) || len(e.Warnings) != 1 || !strings.Contains(e.Warnings[0], `private key entries "stray" are left out`) {
		t.Errorf("error %v: warnings %v", err, e)
	}
}
