package materialize

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyship/keyship/host/keystore/keystoretest"
	"github.com/keyship/keyship/host/materialize/jssetest"
)

// The tests of this file run the real consumers of what Build writes:
// keytool, a JSSE handshake (jssetest) and OpenSSL. They skip when a peer
// is missing, or fail under KEYSHIP_REQUIRE_PEERS=1 (make test).

// allOutputs writes every format.
var allOutputs = Options{Outputs: []Format{FormatJKS, FormatPKCS12, FormatPEM}, KeyAlias: "node"}

// writeBundle writes b's files into dir, each name prefixed.
func writeBundle(t testing.TB, dir, prefix string, b *Bundle) {
	t.Helper()
	for _, f := range b.Files {
		if err := os.WriteFile(filepath.Join(dir, prefix+f.Path), f.Contents, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
}

// keytoolList runs keytool -list -v on a store and returns its output.
func keytoolList(t *testing.T, path, pass string) string {
	t.Helper()
	out, err := jssetest.Keytool(t, "-list", "-v", "-keystore", path, "-storepass", pass)
	if err != nil {
		t.Fatalf("keytool -list -v %s: %v\n%s", filepath.Base(path), err, out)
	}
	return out
}

// checkListing asserts what keytool -list -v shows of a store.
func checkListing(t *testing.T, list, storeType string, keys, trusted, chainLen int) {
	t.Helper()
	if !strings.Contains(list, "Keystore type: "+storeType+"\n") {
		t.Errorf("keytool shows another store type than %s:\n%s", storeType, list)
	}
	if n := strings.Count(list, "Entry type: PrivateKeyEntry"); n != keys {
		t.Errorf("keytool shows %d PrivateKeyEntry, want %d:\n%s", n, keys, list)
	}
	if n := strings.Count(list, "Entry type: trustedCertEntry"); n != trusted {
		t.Errorf("keytool shows %d trustedCertEntry, want %d:\n%s", n, trusted, list)
	}
	if keys > 0 && !strings.Contains(list, fmt.Sprintf("Certificate chain length: %d\n", chainLen)) {
		t.Errorf("keytool shows another chain length than %d:\n%s", chainLen, list)
	}
}

// TestKeytoolListsEveryStore: keytool -list -v opens every JKS and PKCS12
// file Build writes with its password and shows the right store type,
// entry types and chain length.
func TestKeytoolListsEveryStore(t *testing.T) {
	jssetest.Require(t, "keytool")
	t.Parallel()
	dir := t.TempDir()
	fm := forms(t)[0]
	b := must(fm.build(t, allOutputs))
	legacy := must(fm.build(t, Options{Outputs: []Format{FormatPKCS12}, PKCS12: PKCS12LegacyDES}))
	writeBundle(t, dir, "", b)
	writeBundle(t, dir, "legacy-", legacy)
	// The JKS keystore holds the key under Options.KeyAlias. go-pkcs12
	// writes no alias for the key of a PKCS12 keystore: Java names such an
	// entry "1" (see keystore.PKCS12Keystore).
	for _, c := range []struct {
		path, pass, storeType string
		keys, trusted, chain  int
		alias                 string
	}{
		{KeystoreJKS, storePass, "JKS", 1, 0, 2, "node"},
		{TruststoreJKS, trustPass, "JKS", 0, 1, 0, "sample ca"},
		{CABundleJKS, trustPass, "JKS", 0, 2, 0, "other ca"},
		{KeystoreP12, storePass, "PKCS12", 1, 0, 2, "1"},
		{TruststoreP12, trustPass, "PKCS12", 0, 1, 0, "sample ca"},
		{CABundleP12, trustPass, "PKCS12", 0, 2, 0, "other ca"},
		{"legacy-" + KeystoreP12, storePass, "PKCS12", 1, 0, 2, "1"},
		{"legacy-" + TruststoreP12, trustPass, "PKCS12", 0, 1, 0, "sample ca"},
	} {
		t.Run(c.path, func(t *testing.T) {
			t.Parallel()
			list := keytoolList(t, filepath.Join(dir, c.path), c.pass)
			checkListing(t, list, c.storeType, c.keys, c.trusted, c.chain)
			if !strings.Contains(list, "Alias name: "+c.alias+"\n") {
				t.Errorf("keytool does not show alias %s:\n%s", c.alias, list)
			}
		})
	}
}

// TestJavaHandshake: a JSSE server with the keystore Build wrote and a
// client with its truststore (endpoint identification HTTPS) complete a
// handshake over TLSv1.2 and TLSv1.3, from JKS and PKCS12 files; a name the
// certificate does not cover, an untrusted CA and a wrong key password fail,
// and Build's own checks say so first, in the same words.
func TestJavaHandshake(t *testing.T) {
	jssetest.Require(t, "java")
	t.Parallel()
	fm := forms(t)[0]
	b := must(fm.build(t, allOutputs))
	legacy := must(fm.build(t, Options{Outputs: []Format{FormatPKCS12}, PKCS12: PKCS12LegacyDES}))
	otherTrust := must(JKSTruststore([]*x509.Certificate{fx().otherCA.Cert}, []byte(trustPass)))

	jks, p12 := b.Files[0].Contents, b.Files[3].Contents
	// seed 000's spec: a key password of its own.
	s := dcosSpec()
	own := must(Build(context.Background(), s, goodInputs(t).secrets(s), Options{}))
	cases := []struct {
		name, storeType string
		keystore, trust []byte
		host, protocol  string
		want            string // "" for success, else words of Java's error
	}{
		{"JKS TLSv1.2", "JKS", jks, b.Files[1].Contents, "node1.example.com", "TLSv1.2", ""},
		{"JKS TLSv1.3", "JKS", jks, b.Files[1].Contents, "node2.example.com", "TLSv1.3", ""},
		{"JKS with its own key password", "JKS", own.Files[0].Contents, own.Files[1].Contents, "node1.example.com", "TLSv1.3", ""},
		{"JKS opened with the store password as key password", "JKS", own.Files[0].Contents, own.Files[1].Contents, "node1.example.com", "TLSv1.3", "Cannot recover key"},
		{"PKCS12 TLSv1.3", "PKCS12", p12, b.Files[4].Contents, "node1.example.com", "TLSv1.3", ""},
		{"PKCS12 LegacyDES TLSv1.2", "PKCS12", legacy.Files[0].Contents, legacy.Files[1].Contents, "node2.example.com", "TLSv1.2", ""},
		{"name not covered", "JKS", jks, b.Files[1].Contents, "node3.example.com", "TLSv1.3", "No subject alternative DNS name matching node3.example.com found"},
		{"untrusted CA", "PKCS12", p12, otherTrust, "node1.example.com", "TLSv1.2", "unable to find valid certification path to requested target"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			kp := storePass
			if c.name == "JKS with its own key password" {
				kp = keyPass
			}
			err := jssetest.Handshake(t, c.keystore, c.storeType, []byte(storePass), []byte(kp), c.trust, []byte(trustPass), c.host, c.protocol)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Java's handshake failed: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("Java's handshake: %v, want an error saying %q", err, c.want)
			}
		})
	}

	// keyship's checks catch both failures before anything ships.
	_, err := fm.on("node3.example.com").build(t, Options{})
	checkProblems(t, err, testPasswords, problem{"security.tls.keystore_secret", []string{"no name matching node3.example.com found"}})
	other := forms(t)[0]
	other.values["security.tls.truststore_secret"] = otherTrust
	_, err = other.build(t, Options{})
	checkProblems(t, err, testPasswords, problem{"security.tls.truststore_secret", []string{"unable to find valid certification path to requested target"}})
}

// opensslServer starts openssl s_server with the PEM files in dir on a free
// port of 127.0.0.1 and returns the port; the test stops it.
func opensslServer(t *testing.T, openssl, dir, protoFlag string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	cmd := exec.CommandContext(ctx, openssl, "s_server", "-accept", "127.0.0.1:0", protoFlag,
		"-cert", filepath.Join(dir, CertPEM), "-cert_chain", filepath.Join(dir, CertPEM), "-key", filepath.Join(dir, KeyPEM), "-naccept", "1")
	stdin, err := cmd.StdinPipe() // kept open: s_server ends on EOF
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		cancel()
		_ = cmd.Wait()
	})
	accept := regexp.MustCompile(`^ACCEPT 127\.0\.0\.1:(\d+)$`)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := accept.FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				for sc.Scan() {
				}
			}()
			return m[1]
		}
	}
	t.Fatal("openssl s_server did not say where it listens")
	return ""
}

// TestOpenSSLHandshake: openssl s_server with key.pem and cert.pem, and
// s_client -verify_return_error -verify_hostname with ca.pem, complete a
// handshake over TLSv1.2 and TLSv1.3; a name the certificate does not cover
// fails.
func TestOpenSSLHandshake(t *testing.T) {
	openssl := jssetest.Require(t, "openssl")
	t.Parallel()
	dir := t.TempDir()
	writeBundle(t, dir, "", must(forms(t)[0].build(t, Options{Outputs: []Format{FormatPEM}})))
	for _, c := range []struct {
		name, proto, host, want string
	}{
		{"TLSv1.2", "-tls1_2", "node1.example.com", ""},
		{"TLSv1.3", "-tls1_3", "node2.example.com", ""},
		{"name not covered", "-tls1_3", "node3.example.com", "hostname mismatch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := opensslServer(t, openssl, dir, c.proto)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", "127.0.0.1:"+port, c.proto,
				"-servername", c.host, "-verify_hostname", c.host, "-verify_return_error",
				"-CAfile", filepath.Join(dir, CAPEM), "-brief")
			out, err := cmd.CombinedOutput()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("openssl s_client: %v\n%s", err, out)
			case c.want == "" && !strings.Contains(string(out), "Verification: OK"):
				t.Errorf("openssl s_client did not verify:\n%s", out)
			case c.want != "" && (err == nil || !strings.Contains(string(out), c.want)):
				t.Errorf("openssl s_client: %v, want a failure saying %q:\n%s", err, c.want, out)
			}
		})
	}
}

// TestOpenSSLReadsPKCS12: openssl pkcs12 verifies the MAC and decrypts every
// PKCS12 file Build writes, Modern2023 and LegacyDES.
func TestOpenSSLReadsPKCS12(t *testing.T) {
	openssl := jssetest.Require(t, "openssl")
	t.Parallel()
	dir := t.TempDir()
	fm := forms(t)[0]
	writeBundle(t, dir, "", must(fm.build(t, Options{Outputs: []Format{FormatPKCS12}})))
	writeBundle(t, dir, "legacy-", must(fm.build(t, Options{Outputs: []Format{FormatPKCS12}, PKCS12: PKCS12LegacyDES})))
	for _, c := range []struct {
		path, pass, algorithm string
		certs, keys           int
	}{
		{KeystoreP12, storePass, "PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256", 2, 1},
		{TruststoreP12, trustPass, "PBES2, PBKDF2, AES-256-CBC", 1, 0},
		{CABundleP12, trustPass, "PBES2, PBKDF2, AES-256-CBC", 2, 0},
		{"legacy-" + KeystoreP12, storePass, "pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048", 2, 1},
	} {
		cmd := exec.Command(openssl, "pkcs12", "-in", filepath.Join(dir, c.path), "-passin", "env:KEYSHIP_TEST_PW", "-info", "-nodes")
		cmd.Env = append(os.Environ(), "KEYSHIP_TEST_PW="+c.pass)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("openssl pkcs12 %s: %v", c.path, err)
			continue
		}
		// The output holds the private key: count, never print it.
		s := string(out)
		if !strings.Contains(s, "MAC: ") || !strings.Contains(s, c.algorithm) {
			t.Errorf("openssl pkcs12 %s: MAC or encryption %q not shown", c.path, c.algorithm)
		}
		if n := strings.Count(s, "BEGIN CERTIFICATE"); n != c.certs {
			t.Errorf("openssl pkcs12 %s: %d certificates, want %d", c.path, n, c.certs)
		}
		if n := strings.Count(s, "BEGIN PRIVATE KEY"); n != c.keys {
			t.Errorf("openssl pkcs12 %s: %d private keys, want %d", c.path, n, c.keys)
		}
	}
}

// TestOpenSSLMadeInputs: stores and keys OpenSSL makes (openssl pkcs12
// -export with its defaults and with 3DES, openssl pkcs8 -topk8, a truststore
// without Java's trust marks) convert to the same stores as every other
// input form.
func TestOpenSSLMadeInputs(t *testing.T) {
	openssl := jssetest.Require(t, "openssl")
	t.Parallel()
	f := fx()
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	for name, data := range map[string][]byte{
		"key.pem":   keystoretest.PEMKey(t, pemPKCS8Key, f.node.Key),
		"cert.pem":  EncodePEMCertificates(f.node.Chain[:1]),
		"ca.pem":    EncodePEMCertificates(f.node.Chain[1:]),
		"trust.pem": EncodePEMCertificates([]*x509.Certificate{f.ca.Cert}),
	} {
		if err := os.WriteFile(at(name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(pass string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(openssl, args...)
		cmd.Env = append(os.Environ(), "KEYSHIP_TEST_PW="+pass)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", args[0], err, out)
		}
		data, err := os.ReadFile(at("out"))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	export := []string{"pkcs12", "-export", "-in", at("cert.pem"), "-inkey", at("key.pem"), "-certfile", at("ca.pem"), "-name", "node", "-passout", "env:KEYSHIP_TEST_PW", "-out", at("out")}
	modern := run(storePass, export...)
	des := run(storePass, append(export, "-descert", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1")...)
	trust := run(trustPass, "pkcs12", "-export", "-nokeys", "-in", at("trust.pem"), "-passout", "env:KEYSHIP_TEST_PW", "-out", at("out"))
	encKey := run(storePass, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256", "-in", at("key.pem"), "-passout", "env:KEYSHIP_TEST_PW", "-out", at("out"))
	encKeyV1 := run(storePass, "pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-in", at("key.pem"), "-passout", "env:KEYSHIP_TEST_PW", "-out", at("out"))

	ref := must(forms(t)[0].build(t, allOutputs))
	for _, c := range []struct {
		name     string
		change   func(fm *form)
		warnings int
	}{
		{"pkcs12 -export (OpenSSL 3 defaults)", func(fm *form) { fm.values["security.tls.keystore_secret"] = modern }, 0},
		{"pkcs12 -export -descert", func(fm *form) { fm.values["security.tls.keystore_secret"] = des }, 0},
		{"pkcs12 -export -nokeys truststore", func(fm *form) { fm.values["security.tls.truststore_secret"] = trust }, 1},
		{"pkcs8 -topk8 -v2 aes-256-cbc", func(fm *form) {
			fm.values["security.tls.keystore_secret"] = append(encKey, EncodePEMCertificates(f.node.Chain)...)
		}, 0},
		{"pkcs8 -topk8 -v1 PBE-SHA1-3DES", func(fm *form) {
			fm.values["security.tls.keystore_secret"] = append(encKeyV1, EncodePEMCertificates(f.node.Chain)...)
		}, 0},
	} {
		fm := forms(t)[0]
		c.change(fm)
		b, err := fm.build(t, allOutputs)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for i := range b.Files {
			if string(b.Files[i].Contents) != string(ref.Files[i].Contents) {
				t.Errorf("%s: %s differs from the JKS input's", c.name, b.Files[i].Path)
			}
		}
		if len(b.Warnings) != c.warnings {
			t.Errorf("%s: warnings %q, want %d", c.name, b.Warnings, c.warnings)
		}
	}
}

// TestSeed002KeytoolStores reads the stores seed 002's keytool commands make
// (PKCS12, RSA: the CA, the multi-host SAN and the wildcard keystore), checks
// them, converts them both ways (PKCS12 to JKS, and a keytool -importkeystore
// JKS to PKCS12), and proves the results in keytool and a JSSE handshake.
func TestSeed002KeytoolStores(t *testing.T) {
	jssetest.Require(t, "keytool")
	t.Parallel()
	dir := t.TempDir()
	jssetest.MakeSeed002(t, dir)
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	pw := []byte(jssetest.Seed002Password)
	flink := func(keystore string) *form {
		s := dcosSpec()
		s.Passthrough = new(false) // the conversions are what this test proves
		s.Keystore.Secret.Ref.Path = "/flink/" + keystore
		s.Truststore.Secret.Ref.Path = "/flink/ca.truststore"
		s.CABundle.Ref.Path = "/flink/ca.cer"
		return &form{name: keystore, spec: s, values: map[string][]byte{
			"security.tls.keystore_secret": read(keystore), "security.tls.keystore_password": pw, "security.tls.key_password": pw,
			"security.tls.truststore_secret": read("ca.truststore"), "security.tls.truststore_password": pw,
			"security.tls.ca_bundle_secret": read("ca.cer"),
		}}
	}

	node := flink("node.keystore")
	b, err := node.on("node1.example.com", "node2.example.com").build(t, Options{Outputs: []Format{FormatJKS, FormatPKCS12}})
	if err != nil {
		t.Fatal(err)
	}
	if b.KeyAlias != "node" || len(b.Chain) != 2 || b.Chain[0].Subject != "CN=example.com" || b.Chain[1].Subject != "CN=Sample CA" ||
		len(b.Trusted) != 2 || len(b.Warnings) != 0 {
		t.Errorf("facts of seed 002's node.keystore: alias %q, chain %+v, trusted %d, warnings %q", b.KeyAlias, b.Chain, len(b.Trusted), b.Warnings)
	}
	_, err = node.on("node1.example.com", "node3.example.com").build(t, Options{})
	checkProblems(t, err, []string{string(pw)}, problem{"security.tls.keystore_secret", []string{
		"keystore /flink/node.keystore: no name matching node3.example.com found (certificate covers node1.example.com, node2.example.com)"}})

	wild := flink("wildcard.keystore")
	if _, err := wild.on("node1.example.com", "node7.example.com").build(t, Options{}); err != nil {
		t.Errorf("the wildcard certificate does not cover one label under example.com: %v", err)
	}
	_, err = wild.on("a.b.example.com", "example.com").build(t, Options{})
	checkProblems(t, err, []string{string(pw)},
		problem{"security.tls.keystore_secret", []string{"no name matching a.b.example.com found (certificate covers CN=*.example.com (no DNS subject alternative name))"}},
		problem{"security.tls.keystore_secret", []string{"no name matching example.com found"}})

	ca := flink("ca.keystore")
	if b, err := ca.build(t, Options{}); err != nil || len(b.Chain) != 1 || !b.Chain[0].IsCA {
		t.Errorf("seed 002's CA keystore: %v", err)
	}

	// PKCS12 (keytool's) to JKS (keyship's), and JKS (keytool's
	// -importkeystore) to PKCS12 (keyship's).
	out := t.TempDir()
	writeBundle(t, out, "", b)
	if o, err := jssetest.Keytool(t, "-importkeystore", "-srckeystore", filepath.Join(dir, "node.keystore"), "-srcstorepass", string(pw),
		"-destkeystore", filepath.Join(dir, "node.jks"), "-deststoretype", "JKS", "-deststorepass", string(pw), "-noprompt"); err != nil {
		t.Fatalf("keytool -importkeystore: %v\n%s", err, o)
	}
	fromJKS := flink("node.jks")
	b2, err := fromJKS.build(t, Options{Outputs: []Format{FormatPKCS12}})
	if err != nil {
		t.Fatalf("keytool's JKS: %v", err)
	}
	writeBundle(t, out, "from-jks-", b2)
	if string(b2.Files[0].Contents) != string(b.Files[3].Contents) {
		t.Error("keytool's PKCS12 and its JKS copy convert to different PKCS12 keystores")
	}
	for _, c := range []struct {
		path, storeType string
		keys, trusted   int
	}{
		{KeystoreJKS, "JKS", 1, 0}, {TruststoreJKS, "JKS", 0, 1}, {"from-jks-" + KeystoreP12, "PKCS12", 1, 0}, {"from-jks-" + TruststoreP12, "PKCS12", 0, 1},
	} {
		t.Run("keytool -list "+c.path, func(t *testing.T) {
			t.Parallel()
			checkListing(t, keytoolList(t, filepath.Join(out, c.path), string(pw)), c.storeType, c.keys, c.trusted, 2)
		})
	}
	t.Run("JSSE JKS from keytool's PKCS12", func(t *testing.T) {
		t.Parallel()
		if err := jssetest.Handshake(t, b.Files[0].Contents, "JKS", pw, pw, b.Files[1].Contents, pw, "node2.example.com", "TLSv1.3"); err != nil {
			t.Error(err)
		}
	})
	t.Run("JSSE PKCS12 from keytool's JKS", func(t *testing.T) {
		t.Parallel()
		if err := jssetest.Handshake(t, b2.Files[0].Contents, "PKCS12", pw, pw, b2.Files[1].Contents, pw, "node1.example.com", "TLSv1.2"); err != nil {
			t.Error(err)
		}
	})
}
