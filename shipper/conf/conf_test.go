package conf

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper/mesos"
	"github.com/keyship/keyship/shipper/sandbox"
)

// dir is where the tests ship the files in the task, relative to the sandbox.
const dir = ".keyship"

// jksBundle is a Bundle with stand-in bytes: settings do not look inside the
// stores.
func jksBundle(pw string) *materialize.Bundle {
	return &materialize.Bundle{
		Files: []materialize.File{
			{Path: "keystore.jks", Role: materialize.RoleKeystore, Mode: 0o600, Contents: []byte("ks")},
			{Path: "truststore.jks", Role: materialize.RoleTruststore, Mode: 0o600, Contents: []byte("ts")},
			{Path: "ca-bundle.jks", Role: materialize.RoleCABundle, Mode: 0o600, Contents: []byte("ca")},
		},
		KeystorePassword:   []byte(pw + "-ks"),
		KeyPassword:        []byte(pw + "-key"),
		TruststorePassword: []byte(pw + "-ts"),
	}
}

func pemBundle() *materialize.Bundle {
	return &materialize.Bundle{
		Files: []materialize.File{
			{Path: "cert.pem", Role: roleCertPEM, Mode: 0o600, Contents: []byte("cert")},
			{Path: "key.pem", Role: roleKeyPEM, Mode: 0o600, Contents: []byte("key")},
			{Path: "ca.pem", Role: roleCAPEM, Mode: 0o600, Contents: []byte("ca")},
		},
	}
}

// shipSandbox writes b's files and password files as keyship ship does into
// <tmp>/.keyship and returns <tmp>, the task's sandbox.
func shipSandbox(t *testing.T, b *materialize.Bundle, extra ...materialize.File) string {
	t.Helper()
	root := t.TempDir()
	var files []materialize.File
	for _, f := range b.Files {
		files = append(files, materialize.File{Path: f.Path, Mode: f.Mode, Contents: f.Contents})
	}
	for _, pw := range []struct {
		name string
		v    []byte
	}{{KeystorePasswordFile, b.KeystorePassword}, {KeyPasswordFile, b.KeyPassword}, {TruststorePasswordFile, b.TruststorePassword}} {
		if pw.v != nil {
			files = append(files, materialize.File{Path: pw.name, Contents: pw.v})
		}
	}
	if _, err := sandbox.Write(t.Context(), filepath.Join(root, dir), append(files, extra...), sandbox.Options{}); err != nil {
		t.Fatal(err)
	}
	return root
}

// mustExist fails unless rel, relative to the sandbox root, is a file that
// holds one of b's files.
func mustExist(t *testing.T, root, setting, rel string) {
	t.Helper()
	if filepath.IsAbs(rel) {
		t.Errorf("%s = %q: want a path relative to the sandbox", setting, rel)
		return
	}
	if st, err := os.Stat(filepath.Join(root, rel)); err != nil || !st.Mode().IsRegular() {
		t.Errorf("%s = %q: no such file in the shipped sandbox (%v)", setting, rel, err)
	}
}

func TestSparkParsesBack(t *testing.T) {
	b := jksBundle("pw")
	root := shipSandbox(t, b)
	out := Properties(Spark(b, dir, ProfileOf(&spec.Spec{Protocol: "TLSv1.3"})))
	props, err := spec.ReadSparkProperties([]byte(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := map[string]string{
		"spark.ssl.enabled":            "true",
		"spark.ssl.keyStore":           ".keyship/keystore.jks",
		"spark.ssl.keyStoreType":       "JKS",
		"spark.ssl.keyStorePassword":   "${env:KEYSHIP_KEYSTORE_PASSWORD}",
		"spark.ssl.keyPassword":        "${env:KEYSHIP_KEY_PASSWORD}",
		"spark.ssl.trustStore":         ".keyship/truststore.jks",
		"spark.ssl.trustStoreType":     "JKS",
		"spark.ssl.trustStorePassword": "${env:KEYSHIP_TRUSTSTORE_PASSWORD}",
		"spark.ssl.protocol":           "TLSv1.3",
	}
	if !reflect.DeepEqual(props, want) {
		t.Errorf("parsed back\n%v\nwant\n%v", props, want)
	}
	mustExist(t, root, "spark.ssl.keyStore", props["spark.ssl.keyStore"])
	mustExist(t, root, "spark.ssl.trustStore", props["spark.ssl.trustStore"])
	if strings.Contains(out, "pw-") {
		t.Errorf("a password in the properties:\n%s", out)
	}
}

func TestPropertiesEscapes(t *testing.T) {
	settings := []Setting{
		{Key: "a key=with:odd#chars!", Value: " leading space, tab\there, \\ and\nnewline"},
		{Key: "spark.x", Value: "#not a comment"},
		{Key: "spark.pw", Password: []byte("never")},
	}
	out := Properties(settings)
	if strings.Contains(out, "never") {
		t.Fatalf("a Password setting was written:\n%s", out)
	}
	got, err := spec.ReadSparkProperties([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	// Spark trims values, and so does the reader.
	want := map[string]string{"a key=with:odd#chars!": "leading space, tab\there, \\ and\nnewline", "spark.x": "#not a comment"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %q\nwant %q\nfrom\n%s", got, want, out)
	}
}

func TestSparkSecrets(t *testing.T) {
	b := jksBundle("pw")
	all := mesos.Sources{
		Files: map[materialize.Role]mesos.Reference{
			materialize.RoleKeystore:   {Name: "/spark/keystore"},
			materialize.RoleTruststore: {Name: "/spark/truststore"},
		},
		KeystorePassword: &mesos.Reference{Name: "/spark/keystore_password"},
		KeyPassword:      &mesos.Reference{Name: "/spark/key_password"},
		// The truststore password is one key of a JSON secret: Spark
		// cannot name it.
		TruststorePassword: &mesos.Reference{Name: "/spark/passwords", Key: "truststore"},
	}
	plan, err := mesos.NewPlan(b, dir, all)
	if err != nil {
		t.Fatal(err)
	}
	settings, left := SparkSecrets(plan)
	var leftNames []string
	for _, it := range left {
		leftNames = append(leftNames, it.Path+it.Env)
	}
	if want := []string{".keyship/ca-bundle.jks", mesos.EnvTruststorePassword}; !reflect.DeepEqual(leftNames, want) {
		t.Errorf("left %v, want %v", leftNames, want)
	}
	props, err := spec.ReadSparkProperties([]byte(Properties(settings)))
	if err != nil {
		t.Fatal(err)
	}
	root := shipSandbox(t, b)
	sparkEnv := map[string]bool{}
	for _, s := range Spark(b, dir, ProfileOf(&spec.Spec{})) {
		if v, ok := strings.CutPrefix(s.Value, "${env:"); ok {
			sparkEnv[strings.TrimSuffix(v, "}")] = true
		}
	}
	for _, task := range []string{"driver", "executor"} {
		p := "spark.mesos." + task + ".secret."
		names := strings.Split(props[p+"names"], ",")
		files := strings.Split(props[p+"filenames"], ",")
		envs := strings.Split(props[p+"envkeys"], ",")
		if want := []string{"/spark/keystore", "/spark/truststore", "/spark/keystore_password", "/spark/key_password"}; !reflect.DeepEqual(names, want) {
			t.Errorf("%snames = %v", p, names)
		}
		// Spark's one-to-one rule: one filename and one envkey per name.
		if len(files) != len(names) || len(envs) != len(names) {
			t.Fatalf("%s: %d names, %d filenames, %d envkeys", p, len(names), len(files), len(envs))
		}
		for i, f := range files {
			mustExist(t, root, p+"filenames", f)
			if data, _ := os.ReadFile(filepath.Join(root, f)); i >= 2 && !bytes.Contains(data, []byte("pw-")) {
				t.Errorf("%s: %s should be a password file", p, f)
			}
		}
		if envs[0] != "KEYSHIP_FILE_KEYSTORE" || envs[2] != EnvKeystorePassword || envs[3] != EnvKeyPassword {
			t.Errorf("%senvkeys = %v", p, envs)
		}
		for _, e := range envs[2:] {
			if !sparkEnv[e] {
				t.Errorf("%s is not a variable the spark.ssl settings read", e)
			}
		}
	}

	// Files only: no envkeys (no placeholder variables with store bytes).
	plan, _ = mesos.NewPlan(b, dir, mesos.Sources{Files: all.Files})
	settings, _ = SparkSecrets(plan)
	if out := Properties(settings); strings.Contains(out, "envkeys") || !strings.Contains(out, "spark.mesos.executor.secret.filenames=.keyship/keystore.jks,.keyship/truststore.jks\n") {
		t.Errorf("files only:\n%s", out)
	}
	// Nothing by reference: no settings, everything left.
	plan, _ = mesos.NewPlan(b, dir, mesos.Sources{})
	if settings, left = SparkSecrets(plan); settings != nil || len(left) != len(plan.Items) {
		t.Errorf("all by value: %v, left %d", settings, len(left))
	}
}

func TestLibprocessParsesBack(t *testing.T) {
	b := pemBundle()
	root := shipSandbox(t, b)
	env, err := spec.ReadEnv([]byte("LIBPROCESS_SSL_ENABLED=true LIBPROCESS_SSL_SUPPORT_DOWNGRADE=true LIBPROCESS_SSL_KEY_FILE=/k " +
		"LIBPROCESS_SSL_CERT_FILE=/c LIBPROCESS_SSL_ENABLE_TLS_V1_3=1 LIBPROCESS_SSL_VERIFY_DEPTH=6 LIBPROCESS_SSL_CIPHERS='A:B' LIBPROCESS_SSL_CA_DIR='/etc/ssl/my certs'"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := spec.ParseLibprocess(env)
	if err != nil {
		t.Fatal(err)
	}
	settings, err := Libprocess(b, dir, ProfileOf(in))
	if err != nil {
		t.Fatal(err)
	}
	out := Environment(settings)
	env, err = spec.ReadEnv([]byte(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, k := range []string{"LIBPROCESS_SSL_CERT_FILE", "LIBPROCESS_SSL_KEY_FILE", "LIBPROCESS_SSL_CA_FILE"} {
		mustExist(t, root, k, env[k])
	}
	want := map[string]string{
		"LIBPROCESS_SSL_ENABLED": "true", "LIBPROCESS_SSL_CERT_FILE": ".keyship/cert.pem", "LIBPROCESS_SSL_KEY_FILE": ".keyship/key.pem",
		"LIBPROCESS_SSL_CA_FILE": ".keyship/ca.pem", "LIBPROCESS_SSL_CA_DIR": "/etc/ssl/my certs", "LIBPROCESS_SSL_VERIFY_CERT": "true",
		"LIBPROCESS_SSL_REQUIRE_CERT": "false", "LIBPROCESS_SSL_VERIFICATION_DEPTH": "6", "LIBPROCESS_SSL_ENABLE_TLS_V1_2": "true",
		"LIBPROCESS_SSL_ENABLE_TLS_V1_3": "true", "LIBPROCESS_SSL_SUPPORT_DOWNGRADE": "true", "LIBPROCESS_SSL_CIPHERS": "A:B",
	}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("read back\n%v\nwant\n%v\nfrom\n%s", env, want, out)
	}
	// VERIFY_DEPTH is the Mesos documentation's name; libprocess reads
	// VERIFICATION_DEPTH (openssl.cpp, Flags::verification_depth), and the
	// printed text says so.
	if p := Print(ConsumerLibprocess, settings, b, ProfileOf(in), dir); !strings.Contains(p, "# warning: LIBPROCESS_SSL_VERIFY_DEPTH is the Mesos documentation's name, but libprocess reads LIBPROCESS_SSL_VERIFICATION_DEPTH") {
		t.Errorf("printed:\n%s", p)
	}
	back, err := spec.ParseLibprocess(env)
	if err != nil {
		t.Fatal(err)
	}
	if back.Keystore.Key.Ref.Path != ".keyship/key.pem" || back.Truststore.Secret.Ref.Path != ".keyship/ca.pem" ||
		*back.Libprocess.SupportDowngrade != true || back.Protocol != "TLSv1.3" {
		t.Errorf("read back: %+v", back)
	}

	// A spec of another dialect: exactly its protocol, verification on.
	settings, err = Libprocess(b, dir, ProfileOf(&spec.Spec{Protocol: "TLSv1.3"}))
	if err != nil {
		t.Fatal(err)
	}
	env, _ = spec.ReadEnv([]byte(Environment(settings)))
	if env["LIBPROCESS_SSL_ENABLE_TLS_V1_2"] != "false" || env["LIBPROCESS_SSL_ENABLE_TLS_V1_3"] != "true" ||
		env["LIBPROCESS_SSL_VERIFY_CERT"] != "true" || env["LIBPROCESS_SSL_SUPPORT_DOWNGRADE"] != "false" {
		t.Errorf("from a TLSv1.3 spec: %v", env)
	}
	if _, err := Libprocess(jksBundle("pw"), dir, ProfileOf(&spec.Spec{})); err == nil || !strings.Contains(err.Error(), `no pem-cert or pem-key file`) {
		t.Errorf("JKS bundle: %v", err)
	}
}

// canary is a password planted in bundles.
const canary = "CANARY-pw-9c1d"

func TestNoPasswordPrinted(t *testing.T) {
	b := jksBundle(canary)
	b.Files = append(b.Files, materialize.File{Path: "ca-bundle.jks", Role: materialize.RoleCABundle})
	plan, _ := mesos.NewPlan(b, dir, mesos.Sources{KeystorePassword: &mesos.Reference{Name: "/p"}})
	secrets, _ := SparkSecrets(plan)
	for _, s := range []*spec.Spec{
		{Protocol: "TLSv1.2"},
		{Protocol: "TLSv1.3", SparkVersion: spec.ConsumerVersion{Version: spec.Version{Major: 2, Minor: 2}}, FlinkVersion: spec.ConsumerVersion{Version: spec.Version{Major: 1, Minor: 16}}},
		{Protocol: "TLSv1.2", FlinkVersion: spec.ConsumerVersion{Version: spec.Version{Major: 1, Minor: 5}}},
	} {
		printed := Properties(secrets)
		for _, c := range []string{ConsumerSpark, ConsumerFlink} {
			settings, extra, err := For(c, b, dir, ProfileOf(s))
			if err != nil {
				t.Fatal(err)
			}
			printed += Print(c, settings, b, ProfileOf(s), dir) + Properties(settings) + Environment(settings) + Format(c, settings)
			if slices.ContainsFunc(settings, func(s Setting) bool { return strings.Contains(s.Value, canary) }) {
				t.Errorf("%s: a password in a Setting's Value", c)
			}
			// The fragment files are where the passwords are, and they
			// never format.
			for _, x := range extra {
				if x.Mode != 0o600 || !bytes.Contains(x.Contents, []byte(canary)) || !strings.Contains(formatted(materialize.Sensitive(x.Contents)), "[redacted]") {
					t.Errorf("%s: %s is not a 0600 fragment with the passwords", c, x.Path)
				}
			}
		}
		if strings.Contains(printed, canary) {
			t.Fatalf("a password printed:\n%s", printed)
		}
	}
}

func formatted(v any) string {
	return fmt.Sprintf("%v %s %q %x %+v", v, v, v, v, v)
}
