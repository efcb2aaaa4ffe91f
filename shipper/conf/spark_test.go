package conf

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper/mesos"
)

// sparkAt is a Spec for Spark release v ("" is the newest).
func sparkAt(t *testing.T, v string, s *spec.Spec) *spec.Spec {
	t.Helper()
	return atRelease(t, v, s, func(s *spec.Spec) *spec.ConsumerVersion { return &s.SparkVersion })
}

// TestSparkReleases (issue 11, defect 5): Spark 2.3+ reads the passwords
// through ${env:...} (SSLOptions.parse with getWithSubstitution, SPARK-20379);
// Spark 2.2 and before read them literally (getOption), so they go into a
// 0600 properties file for --properties-file, never to stdout.
func TestSparkReleases(t *testing.T) {
	for _, tt := range []struct {
		release  string
		literal  bool
		source   string
		wantFile bool
	}{
		{"", false, "Spark 3.5 SSLOptions.scala: getWithSubstitution", false},
		{"2.3", false, "Spark 2.3 SSLOptions.scala: getWithSubstitution (SPARK-20379)", false},
		{"2.2", true, "Spark 2.2 SSLOptions.scala: getOption; mesosphere/spark's fork likewise", true},
		{"1.6", true, "Spark 1.6 SSLOptions.scala: getOption", true},
	} {
		t.Run("Spark "+tt.release, func(t *testing.T) {
			b := jksBundle(canary)
			s := sparkAt(t, tt.release, nil)
			settings, extra, err := For(ConsumerSpark, b, "/sb/.keyship", ProfileOf(s))
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range settings {
				if !strings.HasSuffix(st.Key, "Password") {
					continue
				}
				if tt.literal != (st.Password != nil) || !tt.literal && !strings.HasPrefix(st.Value, "${env:KEYSHIP_") {
					t.Errorf("%s: %s = %q (literal %v)", tt.source, st.Key, st.Value, st.Password != nil)
				}
			}
			if tt.wantFile != (len(extra) == 1) {
				t.Fatalf("%s: extra files %v", tt.source, extra)
			}
			printed := Print(ConsumerSpark, settings, b, ProfileOf(s), "/sb/.keyship")
			if strings.Contains(printed, canary) {
				t.Fatal("a password printed")
			}
			if tt.wantFile {
				if extra[0].Path != SparkPropertiesFile || extra[0].Mode != 0o600 || !strings.Contains(string(extra[0].Contents), "spark.ssl.keyStorePassword="+canary+"-ks\n") {
					t.Errorf("the properties file does not carry the passwords: %s %v", extra[0].Path, extra[0].Mode)
				}
				if !strings.Contains(printed, "/sb/.keyship/"+SparkPropertiesFile) || !strings.Contains(printed, "--properties-file") {
					t.Errorf("the printed text does not point at the properties file:\n%s", printed)
				}
				for line := range strings.SplitSeq(strings.TrimSpace(printed), "\n") {
					if !strings.HasPrefix(line, "#") {
						t.Errorf("printed a property to paste beside the file: %q", line)
					}
				}
			}
		})
	}
}

// TestSparkNamespaces (issue 11, defect 6): the namespaces a request names
// get the settings too, protocol TLS and enabledAlgorithms are carried.
func TestSparkNamespaces(t *testing.T) {
	off, on := false, true
	s := &spec.Spec{
		Protocol: "TLSv1.2", CipherSuites: []string{"TLS_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
		Spark: &spec.Spark{Protocol: "TLS", Namespaces: []spec.SparkNamespace{{Name: "ui"}, {Name: "historyServer", Enabled: &off}, {Name: "submission", Enabled: &on}}},
	}
	props, err := spec.ReadSparkProperties([]byte(Properties(Spark(jksBundle("pw"), dir, ProfileOf(s)))))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"spark.ssl.", "spark.ssl.ui.", "spark.ssl.submission."} {
		if props[p+"keyStore"] != ".keyship/keystore.jks" || props[p+"trustStorePassword"] != "${env:KEYSHIP_TRUSTSTORE_PASSWORD}" ||
			props[p+"protocol"] != "TLS" || props[p+"enabledAlgorithms"] != "TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" {
			t.Errorf("%s*: %v", p, props)
		}
	}
	if props["spark.ssl.historyServer.enabled"] != "false" || props["spark.ssl.historyServer.keyStore"] != "" || props["spark.ssl.submission.enabled"] != "true" ||
		props["spark.ssl.ui.enabled"] != "" || props["spark.ssl.enabled"] != "true" {
		t.Errorf("switches: %v", props)
	}
	// keyship's own Spark reader takes the output back as the same request
	// (with the passwords the task's environment would give).
	for k := range props {
		if strings.HasSuffix(k, "Password") {
			props[k] = "pw"
		}
	}
	back, err := spec.ParseSpark(props)
	if err != nil {
		t.Fatal(err)
	}
	if back.Spark.Protocol != "TLS" || len(back.Spark.Namespaces) != 3 || !reflect.DeepEqual(back.CipherSuites, s.CipherSuites) {
		t.Errorf("read back: %+v %+v", back, back.Spark)
	}
}

// TestSparkMesos (issue 11, defect 9): when every file ships as a Mesos
// secret by reference, --emit spark gives spark.ssl.* at the container paths
// and the spark.mesos.*.secret.* that mount them (SparkSecrets).
func TestSparkMesos(t *testing.T) {
	b := jksBundle("pw")
	byRef := mesos.Sources{
		Files: map[materialize.Role]mesos.Reference{
			materialize.RoleKeystore: {Name: "/spark/keystore"}, materialize.RoleTruststore: {Name: "/spark/truststore"},
			materialize.RoleCABundle: {Name: "/spark/ca"},
		},
		KeystorePassword: &mesos.Reference{Name: "/spark/keystore_password"},
	}
	plan, err := mesos.NewPlan(b, ".keyship", byRef)
	if err != nil {
		t.Fatal(err)
	}
	settings, left, ok := SparkMesos(b, ProfileOf(&spec.Spec{}), plan)
	if !ok {
		t.Fatal("every file by reference, and no Spark settings for Mesos secrets")
	}
	props, _ := spec.ReadSparkProperties([]byte(Properties(settings)))
	if props["spark.ssl.keyStore"] != ".keyship/keystore.jks" || props["spark.mesos.driver.secret.names"] != "/spark/keystore,/spark/truststore,/spark/ca,/spark/keystore_password" ||
		props["spark.mesos.executor.secret.filenames"] != ".keyship/keystore.jks,.keyship/truststore.jks,.keyship/ca-bundle.jks,.keyship/keystore.password" {
		t.Errorf("settings: %v", props)
	}
	if len(left) != 2 || left[0].Env != EnvKeyPassword || left[1].Env != EnvTruststorePassword {
		t.Errorf("left %v: want the two passwords by value", left)
	}
	if p := Print(ConsumerSpark, settings, b, ProfileOf(&spec.Spec{}), ".keyship"); !strings.Contains(p, "as Mesos secrets") {
		t.Errorf("printed:\n%s", p)
	}
	// Spark 2.2 has no spark.mesos.*.secret.* (SPARK-22131 came in 2.3).
	if _, _, ok := SparkMesos(b, ProfileOf(sparkAt(t, "2.2", nil)), plan); ok {
		t.Error("Spark 2.2 with Mesos secrets")
	}
	// A file keyship built (by value) cannot be a Spark secret.
	delete(byRef.Files, materialize.RoleTruststore)
	plan, _ = mesos.NewPlan(b, ".keyship", byRef)
	if settings, _, ok := SparkMesos(b, ProfileOf(&spec.Spec{}), plan); ok || settings != nil {
		t.Errorf("a file by value: %v %v", ok, settings)
	}
}

// TestSparkReadsTheProperties (issue 11, defects 5 and 6): Spark's own way
// of reading the properties (spark-submit --properties-file, SSLOptions.parse
// per namespace with spark.ssl as defaults, ConfigReader's ${env:...} from
// 2.3, getOption before) opens the stores keyship built.
func TestSparkReadsTheProperties(t *testing.T) {
	javaPeers(t)
	b := realBundle(t, "driver.example.com")
	env := []string{EnvKeystorePassword + "=on", EnvKeyPassword + "=1:20:30", EnvTruststorePassword + "=1e10000"}
	ns := &spec.Spark{Namespaces: []spec.SparkNamespace{{Name: "ui"}, {Name: "submission"}}}
	for _, tt := range []struct {
		name, release, reader string
		props                 func([]Setting, []materialize.File) []byte
		want                  string
	}{
		{"Spark 3.x, ${env:...}", "", "2.3", func(s []Setting, _ []materialize.File) []byte { return []byte(Properties(s)) },
			"OK spark.ssl\nOK spark.ssl.ui\nOK spark.ssl.submission"},
		// What keyship wrote for every release before: Spark 2.2 takes
		// "${env:KEYSHIP_KEYSTORE_PASSWORD}" for the password.
		{"Spark 3.x properties read by Spark 2.2", "", "2.2", func(s []Setting, _ []materialize.File) []byte { return []byte(Properties(s)) },
			"FAIL spark.ssl: java.io.IOException: Keystore was tampered with, or password was incorrect"},
		{"Spark 2.2, the properties file", "2.2", "2.2", func(_ []Setting, x []materialize.File) []byte { return x[0].Contents },
			"OK spark.ssl\nOK spark.ssl.ui\nOK spark.ssl.submission"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := sparkAt(t, tt.release, &spec.Spec{Spark: ns})
			settings, extra, err := For(ConsumerSpark, b, dir, ProfileOf(s))
			if err != nil {
				t.Fatal(err)
			}
			root := shipSandbox(t, b, materialize.File{Path: "job.properties", Contents: tt.props(settings, extra)})
			out, _ := runJava(t, root, env, "SparkConf", tt.reader, filepath.Join(root, dir, "job.properties"), "ui", "submission")
			if !strings.HasPrefix(strings.TrimSpace(out), tt.want) {
				t.Errorf("Spark %s reader: %s\nwant %q", tt.reader, strings.TrimSpace(out), tt.want)
			}
		})
	}
}

// TestExportHintQuoted (issue 20, item 14): the printed `export
// KEYSHIP_KEYSTORE_PASSWORD="$(cat …)"` hint, evaluated by bash, reads the
// password file even when the sandbox path holds a space and a "$".
func TestExportHintQuoted(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := filepath.Join(t.TempDir(), "my sandbox $HOME 'x'", ".keyship")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const pw = "hint-password-canary"
	if err := os.WriteFile(filepath.Join(dir, KeystorePasswordFile), []byte(pw), 0o600); err != nil {
		t.Fatal(err)
	}
	b := jksBundle(pw)
	s := sparkAt(t, "", nil)
	settings, _, err := For(ConsumerSpark, b, dir, ProfileOf(s))
	if err != nil {
		t.Fatal(err)
	}
	var hint string
	for line := range strings.SplitSeq(Print(ConsumerSpark, settings, b, ProfileOf(s), dir), "\n") {
		if l := strings.TrimPrefix(line, "#   "); strings.HasPrefix(l, "export "+EnvKeystorePassword+"=") {
			hint = l
		}
	}
	if hint == "" {
		t.Fatal("no export hint printed")
	}
	cmd := exec.Command(bash, "-c", hint+` && printf %s "$`+EnvKeystorePassword+`"`)
	cmd.Env = []string{"HOME=/nonexistent", "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != pw {
		t.Fatalf("bash ran %q: %v, printed %q; want the password file's content", hint, err, out)
	}
}
