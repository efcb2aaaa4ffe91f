// Package jssetest runs the real Java peers of keyship's stores in tests: a
// JSSE TLS handshake that uses a keystore and a truststore the way a Spark or
// Flink job does, and Java's keytool. It is a normal package for use from
// tests only.
//
// Quickstart:
//
//	err := jssetest.Handshake(t, bundle.File(materialize.RoleKeystore).Contents, "JKS",
//		bundle.KeystorePassword, bundle.KeyPassword,
//		bundle.File(materialize.RoleTruststore).Contents, bundle.TruststorePassword,
//		"node1.example.com", "TLSv1.3")
//	if err != nil {
//		t.Fatal(err) // e.g. "javax.net.ssl.SSLHandshakeException: No subject alternative DNS name matching ... found."
//	}
//
// When java, javac or keytool is missing, the test is skipped, or fails when
// the environment sets KEYSHIP_REQUIRE_PEERS=1 (make test does).
package jssetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed testdata/Handshake.java
var handshakeSource []byte

// RequirePeersEnv names the environment variable that turns a missing peer
// from a skip into a failure when it is "1".
const RequirePeersEnv = "KEYSHIP_REQUIRE_PEERS"

// Require returns the path of tool (java, javac, keytool, openssl), or ends
// the test: it skips, or fails when KEYSHIP_REQUIRE_PEERS=1.
func Require(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv(RequirePeersEnv) == "1" {
			t.Fatalf("%s not found and %s=1 (run tools/install-deps.sh)", tool, RequirePeersEnv)
		}
		t.Skipf("%s not found; run tools/install-deps.sh to test against the real peer", tool)
	}
	return p
}

// The Java program is compiled once per test binary into a directory under
// os.TempDir named after the source's hash, which later test binaries reuse.
var (
	compileOnce sync.Once
	classDir    string
	compileErr  error
)

func compile(javac string) (string, error) {
	compileOnce.Do(func() {
		sum := sha256.Sum256(handshakeSource)
		dir := filepath.Join(os.TempDir(), "keyship-jssetest-"+hex.EncodeToString(sum[:8]))
		if _, err := os.Stat(filepath.Join(dir, "Handshake.class")); err == nil {
			classDir = dir
			return
		}
		tmp, err := os.MkdirTemp(os.TempDir(), "keyship-jssetest-build-")
		if err != nil {
			compileErr = err
			return
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		src := filepath.Join(tmp, "Handshake.java")
		if err := os.WriteFile(src, handshakeSource, 0o600); err != nil {
			compileErr = err
			return
		}
		out, err := exec.Command(javac, "-nowarn", "-d", tmp, src).CombinedOutput()
		if err != nil {
			compileErr = fmt.Errorf("javac Handshake.java: %v\n%s", err, out)
			return
		}
		_ = os.Remove(src)
		// Another test binary may have won the race: then its directory
		// is as good as ours.
		if err := os.Rename(tmp, dir); err != nil {
			if _, statErr := os.Stat(filepath.Join(dir, "Handshake.class")); statErr != nil {
				compileErr = err
				return
			}
		}
		classDir = dir
	})
	return classDir, compileErr
}

// javaFlags start a small JVM quickly: this is one handshake, not a server.
var javaFlags = []string{"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-XX:-UsePerfData"}

// Handshake runs one TLS handshake between a JSSE server and a JSSE client
// (Java's SSLSocket, in one JVM) and returns the handshake's error, or nil
// when it completes with protocol ("TLSv1.2" or "TLSv1.3").
//
// The server presents keystore, a store of storeType ("JKS" or "PKCS12";
// Java 17 opens either as either) opened with storePass and its key with
// keyPass. The client trusts truststore (JKS or PKCS12, told by its content)
// opened with trustPass, and connects to 127.0.0.1 while naming hostname for
// SNI and hostname verification (endpoint identification "HTTPS"), so that no
// /etc/hosts entry is needed.
//
// The error holds Java's exception chain, e.g. "...SSLHandshakeException: No
// subject alternative DNS name matching node3.example.com found." or
// "...PKIX path building failed: ... unable to find valid certification path
// to requested target"; a store that does not open is an error too. Handshake
// ends the test itself only when the peers are missing (see Require) or the
// harness breaks. The stores go to files under t.TempDir (0600), the
// passwords through the JVM's standard input; nothing secret is printed.
func Handshake(t testing.TB, keystore []byte, storeType string, storePass, keyPass []byte, truststore []byte, trustPass []byte, hostname string, protocol string) error {
	t.Helper()
	return HandshakeSuites(t, keystore, storeType, storePass, keyPass, truststore, trustPass, hostname, protocol, nil)
}

// HandshakeSuites is Handshake with both sides enabling only suites (JSSE
// names), as Flink's security.ssl.algorithms and Spark's
// spark.ssl.enabledAlgorithms make them; nil leaves Java's defaults.
func HandshakeSuites(t testing.TB, keystore []byte, storeType string, storePass, keyPass []byte, truststore []byte, trustPass []byte, hostname, protocol string, suites []string) error {
	t.Helper()
	java := Require(t, "java")
	javac := Require(t, "javac")
	dir, err := compile(javac)
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range [][]byte{storePass, keyPass, trustPass} {
		if bytes.ContainsAny(pw, "\r\n") || len(pw) == 0 {
			return errors.New("jssetest: a password is empty or holds a line break")
		}
	}
	work := t.TempDir()
	ks, ts := filepath.Join(work, "keystore"), filepath.Join(work, "truststore")
	if err := os.WriteFile(ks, keystore, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ts, truststore, 0o600); err != nil {
		t.Fatal(err)
	}
	trustType := "PKCS12"
	if bytes.HasPrefix(truststore, []byte{0xfe, 0xed, 0xfe, 0xed}) {
		trustType = "JKS"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append(append([]string{}, javaFlags...), "-cp", dir, "Handshake", ks, storeType, ts, trustType, hostname, protocol)
	if suites != nil {
		args = append(args, strings.Join(suites, ","))
	}
	cmd := exec.CommandContext(ctx, java, args...)
	var stdin bytes.Buffer
	for _, pw := range [][]byte{storePass, keyPass, trustPass} {
		stdin.Write(pw)
		stdin.WriteByte('\n')
	}
	defer clear(stdin.Bytes())
	cmd.Stdin = &stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	line := strings.TrimSpace(string(out))
	switch {
	case err == nil && strings.HasPrefix(line, "OK "):
		return nil
	case strings.HasPrefix(line, "FAIL "):
		return errors.New(strings.TrimPrefix(line, "FAIL "))
	}
	t.Fatalf("jssetest: java Handshake: %v\n%s\n%s", err, out, stderr.String())
	return nil
}

// Keytool runs Java's keytool with args and returns its combined output and
// error (an *exec.ExitError when keytool fails). It ends the test only when
// keytool is missing (see Require). keytool's messages hold no passwords,
// but its arguments do: callers should not print args.
func Keytool(t testing.TB, args ...string) (string, error) {
	t.Helper()
	keytool := Require(t, "keytool")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, keytool, append([]string{"-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1", "-J-XX:-UsePerfData"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Seed002Password is the password of every store MakeSeed002 makes.
const Seed002Password = "password"

// MakeSeed002 runs the keytool commands of Flink's SSL setup guide (seed
// 002) in dir, exactly as written there (RSA keys, Java's default PKCS12
// store type), and so makes:
//
//	ca.keystore        the private CA (PrivateKeyEntry "ca", bc=ca:true)
//	ca.cer             its certificate, DER (keytool -exportcert)
//	ca.truststore      trustedCertEntry "ca"
//	node.keystore      PrivateKeyEntry "node" (CN=example.com, SAN DNS:node1.example.com,DNS:node2.example.com,
//	                   signed by the CA, chain of 2) and trustedCertEntry "ca"
//	wildcard.keystore  PrivateKeyEntry "wildcard" (CN=*.example.com, no SAN, signed by the CA) and "ca"
//
// every store with password Seed002Password. It takes 13 keytool runs (about
// 10 s): call it once per test binary where possible.
func MakeSeed002(t testing.TB, dir string) {
	t.Helper()
	Require(t, "keytool") // here, not in the goroutines below
	pw := Seed002Password
	at := func(name string) string { return filepath.Join(dir, name) }
	ca := [][]string{
		// Creating a Private Certificate Authority.
		{"-genkeypair", "-alias", "ca", "-keystore", at("ca.keystore"), "-dname", "CN=Sample CA", "-storepass", pw, "-keypass", pw, "-keyalg", "RSA", "-ext", "bc=ca:true"},
		{"-keystore", at("ca.keystore"), "-storepass", pw, "-alias", "ca", "-exportcert", "-file", at("ca.cer")},
		{"-importcert", "-keystore", at("ca.truststore"), "-alias", "ca", "-storepass", pw, "-noprompt", "-file", at("ca.cer")},
	}
	// Creating a Multi-Host Certificate.
	nodeReq := [][]string{
		{"-genkeypair", "-alias", "node", "-keystore", at("node.keystore"), "-dname", "CN=example.com", "-ext", "SAN=DNS:node1.example.com,DNS:node2.example.com", "-storepass", pw, "-keypass", pw, "-keyalg", "RSA"},
		{"-certreq", "-keystore", at("node.keystore"), "-storepass", pw, "-alias", "node", "-file", at("node.csr")},
	}
	nodeCert := [][]string{
		{"-gencert", "-keystore", at("ca.keystore"), "-storepass", pw, "-alias", "ca", "-ext", "SAN=DNS:node1.example.com,DNS:node2.example.com", "-infile", at("node.csr"), "-outfile", at("node.cer")},
		{"-importcert", "-keystore", at("node.keystore"), "-storepass", pw, "-file", at("ca.cer"), "-alias", "ca", "-noprompt"},
		{"-importcert", "-keystore", at("node.keystore"), "-storepass", pw, "-file", at("node.cer"), "-alias", "node", "-noprompt"},
	}
	// Creating a Wildcard Certificate.
	wildReq := [][]string{
		{"-genkeypair", "-alias", "wildcard", "-keystore", at("wildcard.keystore"), "-dname", "CN=*.example.com", "-storepass", pw, "-keypass", pw, "-keyalg", "RSA"},
		{"-certreq", "-keystore", at("wildcard.keystore"), "-storepass", pw, "-alias", "wildcard", "-file", at("wildcard.csr")},
	}
	wildCert := [][]string{
		{"-gencert", "-keystore", at("ca.keystore"), "-storepass", pw, "-alias", "ca", "-infile", at("wildcard.csr"), "-outfile", at("wildcard.cer")},
		{"-importcert", "-keystore", at("wildcard.keystore"), "-storepass", pw, "-file", at("ca.cer"), "-alias", "ca", "-noprompt"},
		{"-importcert", "-keystore", at("wildcard.keystore"), "-storepass", pw, "-file", at("wildcard.cer"), "-alias", "wildcard", "-noprompt"},
	}
	// The three keys are made side by side; the CA then signs (keytool
	// -gencert reads ca.keystore, so the signings run one after the
	// other).
	run := func(steps ...[][]string) error {
		for _, group := range steps {
			for _, args := range group {
				if out, err := Keytool(t, args...); err != nil {
					return fmt.Errorf("keytool %s ... %s: %v\n%s", args[0], filepath.Base(args[len(args)-1]), err, out)
				}
			}
		}
		return nil
	}
	errs := make(chan error, 3)
	go func() { errs <- run(ca) }()
	go func() { errs <- run(nodeReq) }()
	go func() { errs <- run(wildReq) }()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := run(nodeCert, wildCert); err != nil {
		t.Fatal(err)
	}
}
