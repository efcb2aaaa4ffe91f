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

	"gopkg.in/yaml.v3"

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
	out := Properties(Spark(b, dir, "TLSv1.3"))
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
	for _, s := range Spark(b, dir, "") {
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

func TestFlinkParsesBack(t *testing.T) {
	b := jksBundle("pw")
	root := shipSandbox(t, b)
	s, err := spec.ParseFlink([]byte("security.ssl.enabled: true\nsecurity.ssl.keystore: /k\nsecurity.ssl.keystore-password: p\n" +
		"security.ssl.key-password: p\nsecurity.ssl.truststore: /t\nsecurity.ssl.truststore-password: p\nsecurity.ssl.verify-hostname: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	settings, err := Flink(b, dir, s)
	if err != nil {
		t.Fatal(err)
	}
	printed := YAML(settings)
	var got map[string]any
	if err := yaml.Unmarshal([]byte(printed), &got); err != nil {
		t.Fatalf("%v\n%s", err, printed)
	}
	for _, ep := range []string{"internal", "rest"} {
		p := "security.ssl." + ep + "."
		if got[p+"enabled"] != true || got[p+"keystore-type"] != "JKS" || got[p+"truststore-type"] != "JKS" {
			t.Errorf("%s: %v", ep, got)
		}
		mustExist(t, root, p+"keystore", got[p+"keystore"].(string))
		mustExist(t, root, p+"truststore", got[p+"truststore"].(string))
		for _, pw := range []string{"keystore-password", "key-password", "truststore-password"} {
			if _, ok := got[p+pw]; ok {
				t.Errorf("%s%s printed", p, pw)
			}
			if !strings.Contains(printed, "# "+p+pw+": not printed") {
				t.Errorf("%s%s not named in a comment:\n%s", p, pw, printed)
			}
		}
	}
	if got["security.ssl.verify-hostname"] != false || got["security.ssl.protocol"] != "TLSv1.2" {
		t.Errorf("got %v", got)
	}
	if strings.Contains(printed, "pw-") {
		t.Fatalf("a password printed:\n%s", printed)
	}

	// The secret fragment holds the passwords, and keyship's own Flink
	// dialect reads it back as the same stores, now in the sandbox.
	secret := SecretYAML(settings)
	var full map[string]any
	if err := yaml.Unmarshal(secret, &full); err != nil {
		t.Fatal(err)
	}
	if full["security.ssl.internal.keystore-password"] != "pw-ks" || full["security.ssl.rest.key-password"] != "pw-key" || full["security.ssl.internal.truststore-password"] != "pw-ts" {
		t.Errorf("secret fragment %v", full)
	}
	back, err := spec.ParseFlink(secret)
	if err != nil {
		t.Fatal(err)
	}
	if back.Keystore.Secret.Ref.Path != ".keyship/keystore.jks" || string(back.Keystore.Password.Value) != "pw-ks" ||
		string(back.Keystore.KeyPassword.Value) != "pw-key" || back.Truststore.Secret.Ref.Path != ".keyship/truststore.jks" ||
		back.Endpoints != nil || back.VerifyHostname == nil || *back.VerifyHostname {
		t.Errorf("read back: %+v", back)
	}
}

func TestFlinkEndpointsAndProblems(t *testing.T) {
	b := jksBundle("pw")
	settings, err := Flink(b, dir, &spec.Spec{Protocol: "TLSv1.3", Endpoints: &spec.Endpoints{REST: true}})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	_ = yaml.Unmarshal([]byte(YAML(settings)), &got)
	if got["security.ssl.internal.enabled"] != false || got["security.ssl.rest.enabled"] != true || got["security.ssl.internal.keystore"] != nil ||
		got["security.ssl.protocol"] != "TLSv1.3" || got["security.ssl.verify-hostname"] != true {
		t.Errorf("REST only: %v", got)
	}

	noTrust := jksBundle("pw")
	noTrust.Files = noTrust.Files[:1]
	noTrust.TruststorePassword = nil
	if _, err := Flink(noTrust, dir, &spec.Spec{}); err == nil || !strings.Contains(err.Error(), "internal TLS needs a truststore") {
		t.Errorf("no truststore: %v", err)
	}
	if _, err := Flink(noTrust, dir, &spec.Spec{Endpoints: &spec.Endpoints{REST: true}}); err != nil {
		t.Errorf("REST without truststore: %v", err)
	}
	if _, err := Flink(&materialize.Bundle{}, dir, &spec.Spec{}); err == nil || !strings.Contains(err.Error(), "needs a keystore") {
		t.Errorf("no keystore: %v", err)
	}

	// Passwords Flink cannot read back unchanged are refused by name.
	for _, pw := range []string{canary + "#x", canary + ": x", "'" + canary, " " + canary, "0123", "1e3", "null", "True", "-" + canary, ""} {
		bad := jksBundle("pw")
		bad.KeyPassword = []byte(pw)
		_, err := Flink(bad, dir, &spec.Spec{})
		if err == nil || !strings.Contains(err.Error(), "security.ssl.internal.key-password, security.ssl.rest.key-password") {
			t.Errorf("password %q: %v", pw, err)
			continue
		}
		if pw != "" && strings.Contains(err.Error(), pw) {
			t.Errorf("the password shows in %v", err)
		}
	}
	for _, pw := range []string{"changeit", "123456", "true", "pa$$w0rd", "a:b", "x-y_z.1"} {
		ok := jksBundle("pw")
		ok.KeyPassword = []byte(pw)
		if _, err := Flink(ok, dir, &spec.Spec{}); err != nil {
			t.Errorf("password %q refused: %v", pw, err)
		}
	}
	if _, err := Flink(jksBundle("pw"), "dir with #hash", &spec.Spec{}); err == nil || !strings.Contains(err.Error(), "security.ssl.internal.keystore,") {
		t.Errorf("a path with #: %v", err)
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
	settings, err := Libprocess(b, dir, in)
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
		"LIBPROCESS_SSL_REQUIRE_CERT": "false", "LIBPROCESS_SSL_VERIFY_DEPTH": "6", "LIBPROCESS_SSL_ENABLE_TLS_V1_2": "true",
		"LIBPROCESS_SSL_ENABLE_TLS_V1_3": "true", "LIBPROCESS_SSL_SUPPORT_DOWNGRADE": "true", "LIBPROCESS_SSL_CIPHERS": "A:B",
	}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("read back\n%v\nwant\n%v\nfrom\n%s", env, want, out)
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
	settings, err = Libprocess(b, dir, &spec.Spec{Protocol: "TLSv1.3"})
	if err != nil {
		t.Fatal(err)
	}
	env, _ = spec.ReadEnv([]byte(Environment(settings)))
	if env["LIBPROCESS_SSL_ENABLE_TLS_V1_2"] != "false" || env["LIBPROCESS_SSL_ENABLE_TLS_V1_3"] != "true" ||
		env["LIBPROCESS_SSL_VERIFY_CERT"] != "true" || env["LIBPROCESS_SSL_SUPPORT_DOWNGRADE"] != "false" {
		t.Errorf("from a TLSv1.3 spec: %v", env)
	}
	if _, err := Libprocess(jksBundle("pw"), dir, &spec.Spec{}); err == nil || !strings.Contains(err.Error(), `no pem-cert or pem-key file`) {
		t.Errorf("JKS bundle: %v", err)
	}
}

// canary is a password planted in bundles.
const canary = "CANARY-pw-9c1d"

func TestNoPasswordPrinted(t *testing.T) {
	b := jksBundle(canary)
	s := &spec.Spec{Protocol: "TLSv1.2"}
	flink, err := Flink(b, dir, s)
	if err != nil {
		t.Fatal(err)
	}
	plan, _ := mesos.NewPlan(b, dir, mesos.Sources{KeystorePassword: &mesos.Reference{Name: "/p"}})
	secrets, _ := SparkSecrets(plan)
	printed := Properties(Spark(b, dir, s.Protocol)) + Properties(secrets) + YAML(flink) + Environment(flink) + Properties(flink)
	if strings.Contains(printed, canary) {
		t.Fatalf("a password printed:\n%s", printed)
	}
	// The secret fragment is where the passwords are.
	if frag := SecretYAML(flink); !bytes.Contains(frag, []byte(canary)) || !strings.Contains(formatted(frag), "[redacted]") {
		t.Errorf("secret fragment without the passwords, or printable: %s", formatted(frag))
	}
	if slices.ContainsFunc(flink, func(s Setting) bool { return strings.Contains(s.Value, canary) }) {
		t.Error("a password in a Setting's Value")
	}
}

func formatted(v any) string {
	return fmt.Sprintf("%v %s %q %x %+v", v, v, v, v, v)
}
