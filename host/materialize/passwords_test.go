package materialize

import (
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize/jssetest"
)

// keytoolUTF8 runs keytool with its arguments decoded as UTF-8 (a C.UTF-8
// locale: the JVM decodes argv in the locale's charset), and returns its
// output and error. keytool's messages hold no password.
func keytoolUTF8(t *testing.T, args ...string) (string, error) {
	t.Helper()
	kt := jssetest.Require(t, "keytool")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kt, append([]string{"-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1", "-J-XX:-UsePerfData"}, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "LANG=C.UTF-8")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestNonASCIIPasswords (issue 22, item 5): keyship accepts a password the
// store it writes takes, as Java 17 reads that store, and refuses the rest
// with the reason. Java's JKS (sun.security.provider.JavaKeyStore and
// KeyProtector, JDK 17) digests each password character as its UTF-16
// code unit, so keytool writes and JSSE opens a JKS store whose password is
// "pässwörd" or "пароль"; keyship's JKS codec takes ISO 8859-1, so it
// opens and writes the first and refuses the second, saying why. Java's
// PKCS12 (PKCS12KeyStore through com.sun.crypto.provider.PBEKey, JDK 17)
// refuses any non-ASCII password ("Password is not ASCII"): keytool cannot
// write such a store, and keyship refuses it for PKCS12 output.
//
// Each store is made by keytool (-importkeystore from a store keyship
// wrote with an ASCII password), so that the input is Java's own; keyship
// then opens it as the job's keystore and truststore, and what keyship
// ships goes through a JSSE handshake.
func TestNonASCIIPasswords(t *testing.T) {
	jssetest.Require(t, "java")
	f := fx()
	const ascii = "ascii-pass"
	src := filepath.Join(t.TempDir(), "src.p12")
	if err := os.WriteFile(src, must(keystore.PKCS12Keystore(f.node.Key, f.node.Chain, []byte(ascii), PKCS12Modern2023)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, password, storeType string
		output                    Format
		javaRefuses               string // keytool's words when Java itself cannot write the store
		keyshipRefuses            string // "" when keyship ships it
	}{
		{"JKS, ISO 8859-1", "pässwörd-ß", "JKS", FormatJKS, "", ""},
		{"JKS, beyond ISO 8859-1", "пароль-12", "JKS", FormatJKS, "", "beyond U+00FF"},
		{"PKCS12, ISO 8859-1", "pässwörd-ß", "PKCS12", FormatPKCS12, "Password is not ASCII", "Password is not ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "java-made")
			out, err := keytoolUTF8(t, "-importkeystore", "-noprompt", "-srckeystore", src, "-srcstoretype", "PKCS12", "-srcstorepass", ascii,
				"-destkeystore", dst, "-deststoretype", tt.storeType, "-deststorepass", tt.password, "-destkeypass", tt.password)
			if tt.javaRefuses != "" {
				if err == nil || !strings.Contains(out, tt.javaRefuses) {
					t.Fatalf("keytool wrote a %s store with a non-ASCII password (%v): %s", tt.storeType, err, out)
				}
				// keyship refuses it for its own output, with Java's words.
				in := goodInputs(t)
				in.storePass, in.keyPass = tt.password, tt.password
				s := dcosSpec()
				_, err := Build(context.Background(), s, in.secrets(s), Options{Outputs: []Format{tt.output}})
				checkProblems(t, err, []string{tt.password},
					problem{"security.tls.keystore_password", []string{tt.keyshipRefuses}}, problem{"security.tls.key_password", []string{tt.keyshipRefuses}})
				return
			}
			if err != nil {
				t.Fatalf("keytool: %v: %s", err, out)
			}
			javaMade, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			pw := []byte(tt.password)
			ts := must(JKSTruststore(trustAliasCerts(), []byte(trustPass)))
			// JSSE opens Java's store with the password.
			if herr := jssetest.Handshake(t, javaMade, tt.storeType, pw, pw, ts, []byte(trustPass), "node1.example.com", "TLSv1.3"); herr != nil {
				t.Fatalf("JSSE does not open keytool's %s store: %v", tt.storeType, herr)
			}
			in := goodInputs(t)
			in.keystore, in.storePass, in.keyPass = javaMade, tt.password, tt.password
			s := dcosSpec()
			b, err := Build(context.Background(), s, in.secrets(s), Options{Outputs: []Format{tt.output}})
			if tt.keyshipRefuses != "" {
				checkProblems(t, err, []string{tt.password},
					problem{"security.tls.keystore_password", []string{tt.keyshipRefuses}}, problem{"security.tls.key_password", []string{tt.keyshipRefuses}})
				return
			}
			if err != nil {
				t.Fatalf("keyship refuses a password Java takes: %v", err)
			}
			defer b.Zero()
			ks := b.File(RoleKeystore)
			if herr := jssetest.Handshake(t, ks.Contents, tt.storeType, b.KeystorePassword, b.KeyPassword, b.File(RoleTruststore).Contents, b.TruststorePassword, "node1.example.com", "TLSv1.3"); herr != nil {
				t.Errorf("JSSE does not open the store keyship shipped: %v", herr)
			}
			// keyship writes it anew too (not its exact bytes) and Java still opens it.
			s.Passthrough = new(bool)
			b2 := must(Build(context.Background(), s, in.secrets(s), Options{Outputs: []Format{tt.output}}))
			defer b2.Zero()
			if out, err := keytoolUTF8(t, "-list", "-keystore", writeTemp(t, b2.File(RoleKeystore).Contents), "-storetype", tt.storeType, "-storepass", tt.password); err != nil {
				t.Errorf("keytool -list of the store keyship wrote: %v: %s", err, out)
			}
		})
	}
}

// trustAliasCerts is the fixture CA, for a truststore.
func trustAliasCerts() []*x509.Certificate { return []*x509.Certificate{fx().ca.Cert} }

// writeTemp writes data to a 0600 file under t.TempDir and returns its path.
func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "store")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
