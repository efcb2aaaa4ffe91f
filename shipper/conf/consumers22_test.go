package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
)

// TestFlinkRESTAuthentication (issue 22, item 1): the spec's
// security.ssl.rest.authentication-enabled reaches the fragment for the
// releases that read it (SecurityOptions.SSL_REST_AUTHENTICATION_ENABLED,
// Flink 1.7+, FLINK-10371; default false), and mutual TLS on the REST
// endpoint is not silently off: a client without a certificate is refused
// by a REST server configured from the fragment as Flink's
// SSLUtils.createRestServerSSLEngineFactory configures it
// (setNeedClientAuth(authentication-enabled)).
func TestFlinkRESTAuthentication(t *testing.T) {
	doc := `security.ssl.internal.enabled: true
security.ssl.rest.enabled: true
security.ssl.keystore: /flink/keystore
security.ssl.keystore-password: ks
security.ssl.key-password: kp
security.ssl.truststore: /flink/truststore
security.ssl.truststore-password: ts
security.ssl.rest.authentication-enabled: %s
`
	tests := []struct {
		release, auth, source string
		want                  string // the fragment's value, "" absent, "error" refused
	}{
		{"1.6", "true", "Flink 1.6 SecurityOptions.java: no SSL_REST_AUTHENTICATION_ENABLED", "error"},
		{"1.6", "false", "Flink 1.6: the REST endpoint is never mutual TLS, as false asks", ""},
		{"1.7", "true", "Flink 1.7 SecurityOptions.java: SSL_REST_AUTHENTICATION_ENABLED (FLINK-10371)", "true"},
		{"1.20", "false", "Flink 1.20 SecurityOptions.java", "false"},
		{"", "true", "Flink 2.x SecurityOptions.java", "true"},
	}
	for _, tt := range tests {
		t.Run("Flink "+tt.release+" "+tt.auth, func(t *testing.T) {
			s, err := spec.ParseFlink([]byte(strings.Replace(doc, "%s", tt.auth, 1)))
			if err != nil {
				t.Fatal(err)
			}
			s = flinkAt(t, tt.release, s)
			if tt.release == "" {
				s.FlinkVersion = spec.ConsumerVersion{}
			}
			settings, err := Flink(jksBundle("pw"), dir, ProfileOf(s))
			if tt.want == "error" {
				if err == nil || !strings.Contains(err.Error(), "security.ssl.rest.authentication-enabled") || !strings.Contains(err.Error(), "Flink 1.7") {
					t.Fatalf("%s: err %v, want a refusal naming the setting and Flink 1.7", tt.source, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", tt.source, err)
			}
			got := ""
			for _, st := range settings {
				if st.Key == "security.ssl.rest.authentication-enabled" {
					got = st.Value
				}
			}
			if got != tt.want {
				t.Errorf("%s: security.ssl.rest.authentication-enabled = %q, want %q", tt.source, got, tt.want)
			}
		})
	}

	t.Run("a client without a certificate", func(t *testing.T) {
		javaPeers(t)
		const host = "jm.example.com"
		for _, tt := range []struct {
			release, mode string
			auth          bool
			want          string
		}{
			{"", "standard", true, "FAIL"},
			{"1.18", "legacy", true, "FAIL"},
			{"", "standard", false, "OK"},
		} {
			s := flinkAt(t, tt.release, &spec.Spec{Flink: &spec.Flink{RESTAuth: &spec.Switch{Setting: "security.ssl.rest.authentication-enabled", On: tt.auth}}})
			root, frag := writeFlinkSandbox(t, realBundle(t, host), s)
			out, _ := runJava(t, root, nil, "FlinkHandshake", tt.mode, frag, host, "rest-anonymous")
			if !strings.HasPrefix(out, tt.want) {
				t.Errorf("Flink %q, authentication-enabled %t: the REST handshake of an anonymous client: %s, want %s", tt.release, tt.auth, strings.TrimSpace(out), tt.want)
			}
		}
	})
}

// TestFlinkPrintNamesParserAndFile (issue 22, items 2 and 3): what keyship
// prints and the fragment's header name the reader each release uses and,
// for Flink 1.19 and 1.20, the flink-conf.yaml that takes precedence over
// config.yaml.
func TestFlinkPrintNamesParserAndFile(t *testing.T) {
	tests := []struct {
		release, source string
		parser          string
		leftover        bool
	}{
		{"1.18", "Flink 1.18 GlobalConfiguration.java: flink-conf.yaml only, loadYAMLResource line by line", "flink-conf.yaml line by line", false},
		{"1.19", "Flink 1.19 GlobalConfiguration.loadConfiguration: flink-conf.yaml if it exists, else config.yaml; YamlParserUtils.java: snakeyaml-engine CoreSchema (FLINK-34257)", "config.yaml with snakeyaml-engine (YAML 1.2, Core schema)", true},
		{"1.20", "Flink 1.20 GlobalConfiguration.java, YamlParserUtils.java (as 1.19)", "config.yaml with snakeyaml-engine (YAML 1.2, Core schema)", true},
		{"2.0", "Flink 2.0 GlobalConfiguration.java: config.yaml only (flink-conf.yaml support removed)", "config.yaml with snakeyaml-engine (YAML 1.2, Core schema)", false},
		{"", "Flink 2.x (the newest)", "config.yaml with snakeyaml-engine (YAML 1.2, Core schema)", false},
	}
	for _, tt := range tests {
		t.Run("Flink "+tt.release, func(t *testing.T) {
			b := jksBundle("pw")
			s := flinkAt(t, tt.release, nil)
			settings, extra, err := For(ConsumerFlink, b, dir, ProfileOf(s))
			if err != nil {
				t.Fatal(err)
			}
			out := Print(ConsumerFlink, settings, b, ProfileOf(s), dir)
			if !strings.Contains(out, "it reads "+tt.parser) || strings.Contains(out, "SnakeYAML (YAML 1.1)") {
				t.Errorf("%s: stdout does not say %q:\n%s", tt.source, tt.parser, out)
			}
			const warn = "reads $FLINK_CONF_DIR/flink-conf.yaml INSTEAD of config.yaml when that file exists"
			if got := strings.Contains(out, warn); got != tt.leftover {
				t.Errorf("%s: stdout warns of a leftover flink-conf.yaml: %t, want %t:\n%s", tt.source, got, tt.leftover, out)
			}
			header := strings.SplitN(string(extra[0].Contents), "\n", 3)
			if got := strings.Contains(header[1], "remove a leftover flink-conf.yaml"); got != tt.leftover {
				t.Errorf("%s: the fragment's header warns of a leftover flink-conf.yaml: %t, want %t:\n%s", tt.source, got, tt.leftover, header[0]+"\n"+header[1])
			}
		})
	}
}

// TestFlinkConfReadsYAML12Core (issue 22, item 2): the harness that loads
// fragments as Flink 1.19+ does types plain scalars by the YAML 1.2 Core
// schema, as snakeyaml-engine's CoreSchema (Flink's YamlParserUtils, Flink
// 1.19+), and not by SnakeYAML 1.x's YAML 1.1 rules: were it YAML 1.1,
// "on" would be a Boolean and "1:20:30" an Integer.
func TestFlinkConfReadsYAML12Core(t *testing.T) {
	javaPeers(t)
	tests := []struct{ plain, javaType string }{
		{"on", "String"}, {"yes", "String"}, {"1:20:30", "String"}, {"2001-12-14", "String"}, {"0b101", "String"},
		{"True", "Boolean"}, {"false", "Boolean"}, {"0x1F", "Integer"}, {"-42", "Integer"},
		{"1e3", "Double"}, {".inf", "Double"}, {"~", "null"}, {"Null", "null"},
	}
	var doc strings.Builder
	for i, tt := range tests {
		doc.WriteString("k" + strings.Repeat("x", i) + ": " + tt.plain + "\n")
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(doc.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := loadFlink(t, "standard", file)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		if g := got["k"+strings.Repeat("x", i)]; g.javaType != tt.javaType {
			t.Errorf("plain %q: a %s, want a %s (YAML 1.2 Core schema, snakeyaml-engine CoreSchema)", tt.plain, g.javaType, tt.javaType)
		}
	}
}

// TestSparkNamespaceByRelease (issue 22, item 6): keyship warns when the
// request names a spark.ssl.<ns> namespace that the chosen Spark release
// does not read, citing the source that reads it; the namespaces came and
// went with releases (core/src/main/scala/org/apache/spark/
// SecurityManager.scala of each release).
func TestSparkNamespaceByRelease(t *testing.T) {
	tests := []struct {
		release, ns, source string
		warn                bool
	}{
		{"3.5", "rpc", "Spark 3.5 SecurityManager.scala: no rpc namespace (RPC TLS is SPARK-44937, 4.0)", true},
		{"4.0", "rpc", "Spark 4.0 SecurityManager.scala: rpcSSLOptions = getSSLOptions(\"rpc\")", false},
		{"", "rpc", "the newest Spark (4.x)", false},
		{"1.6", "ui", "Spark 1.6 SecurityManager.scala: only spark.ssl.fs and spark.ssl.akka", true},
		{"2.0", "ui", "Spark 2.0: getSSLOptions(\"ui\") (SPARK-2750)", false},
		{"2.3", "fs", "Spark 2.3 SecurityManager.scala: fileServerSSLOptions = getSSLOptions(\"fs\")", false},
		{"2.4", "fs", "Spark 2.4 SecurityManager.scala: no fileServerSSLOptions (SPARK-23538)", true},
		{"1.6", "fs", "Spark 1.6 SecurityManager.scala: SSLOptions.parse(sparkConf, \"spark.ssl.fs\", ...)", false},
		{"3.0", "fs", "Spark 3.0 SecurityManager.scala: no fileServerSSLOptions", true},
		{"3.5", "mesos", "Spark 3.5 MesosClusterUI (resource-managers/mesos)", false},
		{"4.0", "mesos", "Spark 4.0 removed Mesos support", true},
		{"2.2", "submission", "DC/OS Spark 2.2 SecurityManager.scala: spark.ssl.submission", false},
		{"3.5", "submission", "DC/OS Spark 3.x SecurityManager.scala: no submissionServerSSLOptions (Apache Spark never had it)", true},
	}
	for _, tt := range tests {
		t.Run("Spark "+tt.release+" "+tt.ns, func(t *testing.T) {
			s := atRelease(t, tt.release, &spec.Spec{Spark: &spec.Spark{Namespaces: []spec.SparkNamespace{{Name: tt.ns}}}},
				func(s *spec.Spec) *spec.ConsumerVersion { return &s.SparkVersion })
			b := jksBundle("pw")
			settings, _, err := For(ConsumerSpark, b, dir, ProfileOf(s))
			if err != nil {
				t.Fatal(err)
			}
			out := Print(ConsumerSpark, settings, b, ProfileOf(s), dir)
			prefix := "# warning: spark.ssl." + tt.ns + ".*: "
			got := strings.Contains(out, prefix)
			if got != tt.warn {
				t.Fatalf("%s: warned %t, want %t:\n%s", tt.source, got, tt.warn, out)
			}
			if got && (!strings.Contains(out, "SecurityManager") && !strings.Contains(out, "MesosClusterUI") || !strings.Contains(out, "--spark-version")) {
				t.Errorf("%s: the warning cites no source or no way out:\n%s", tt.source, out)
			}
		})
	}
}

// TestNonASCIIPasswordsReachTheConsumer (issue 22, item 5): a non-ASCII
// password (which a JKS store takes: host/materialize
// TestNonASCIIPasswords) is written only where the consumer's reader gets it
// back whatever the task's locale, and refused with the reason elsewhere.
// Every case runs the consumer's reader under the POSIX locale (LC_ALL=C)
// a Mesos task gets; where keyship now refuses, on what keyship wrote
// before, which fails there.
//
//   - Flink 1.19+ config.yaml: YamlParserUtils loads an InputStream, which
//     the YAML reader decodes as UTF-8 (Flink 1.19+): taken;
//   - Flink 1.18 flink-conf.yaml: GlobalConfiguration.loadYAMLResource reads
//     it with new InputStreamReader(new FileInputStream(file)), the default
//     charset, ASCII under LC_ALL=C on Java 17: refused;
//   - Spark 2.3+: SSLOptions.scala reads ${env:NAME} through ConfigReader
//     (System.getenv), which Java 17 decodes in the locale's charset:
//     refused;
//   - Spark 2.2: Utils.getPropertiesFromFile reads the properties file as
//     UTF-8: taken.
func TestNonASCIIPasswordsReachTheConsumer(t *testing.T) {
	javaPeers(t)
	const host = "node.example.com"
	pw := []byte("pässwörd-ß")
	b := realBundleWith(t, host, pw, pw, pw)
	posix := []string{"LC_ALL=C", "LANG=C"}
	tests := []struct {
		name, consumer, release, reader string
		refused                         bool
	}{
		{"Flink 2.x config.yaml", ConsumerFlink, "", "standard", false},
		{"Flink 1.19 config.yaml", ConsumerFlink, "1.19", "standard", false},
		{"Flink 1.18 flink-conf.yaml", ConsumerFlink, "1.18", "legacy", true},
		{"Spark 3.x ${env:...}", ConsumerSpark, "", "2.3", true},
		{"Spark 2.2 properties file", ConsumerSpark, "2.2", "2.2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *spec.Spec
			if tt.consumer == ConsumerFlink {
				s = flinkAt(t, tt.release, nil)
			} else {
				s = sparkAt(t, tt.release, &spec.Spec{})
			}
			_, extra, err := For(tt.consumer, b, dir, ProfileOf(s))
			if tt.refused {
				if err == nil || !strings.Contains(err.Error(), "non-ASCII") || !strings.Contains(err.Error(), "Java 17") {
					t.Fatalf("keyship: %v; want a refusal saying why", err)
				}
				if strings.Contains(err.Error(), string(pw)) {
					t.Fatal("the error holds the password")
				}
			} else if err != nil {
				t.Fatalf("keyship refuses what the consumer reads: %v", err)
			}

			// What the consumer reads: what keyship writes now, or what it
			// wrote before where it now refuses.
			var file []byte
			var env []string
			switch {
			case tt.consumer == ConsumerFlink && !tt.refused:
				file = extra[0].Contents
			case tt.consumer == ConsumerFlink:
				settings, err := Flink(realBundle(t, host), dir, ProfileOf(s))
				if err != nil {
					t.Fatal(err)
				}
				for i := range settings {
					if settings[i].Password != nil {
						settings[i].Password = pw
					}
				}
				file = FlinkFragment(settings, ProfileOf(s))
			case !tt.refused:
				file = extra[0].Contents
			default:
				file = []byte(Properties(Spark(b, dir, ProfileOf(s))))
				env = []string{EnvKeystorePassword + "=" + string(pw), EnvKeyPassword + "=" + string(pw), EnvTruststorePassword + "=" + string(pw)}
			}
			root := shipSandbox(t, b, materialize.File{Path: "job.conf", Contents: file})
			path := filepath.Join(root, dir, "job.conf")
			var out string
			if tt.consumer == ConsumerFlink {
				out, _ = runJava(t, root, posix, "FlinkHandshake", tt.reader, path, host)
			} else {
				out, _ = runJava(t, root, append(env, posix...), "SparkConf", tt.reader, path)
			}
			t.Logf("reader: %s", strings.TrimSpace(out))
			if got := strings.HasPrefix(out, "OK"); got == tt.refused {
				t.Errorf("the consumer's reader under LC_ALL=C: %s (keyship refuses: %t)", strings.TrimSpace(out), tt.refused)
			}
		})
	}
}

// TestFlinkCarriesEverySetting (issue 22, item 1): every security.ssl
// setting the spec gives and keyship does not act on (SecurityOptions.java:
// SSL_PROVIDER, the internal session and handshake timeouts, Flink 1.9+)
// reaches the fragment as written, so that the TLS keyship writes is the
// one the request asked for; an internal.* one is refused for Flink 1.5,
// which has no security.ssl.internal.* (SecurityOptions.java, Flink 1.5).
func TestFlinkCarriesEverySetting(t *testing.T) {
	doc := []byte(`security.ssl.internal.enabled: true
security.ssl.rest.enabled: false
security.ssl.internal.keystore: /flink/keystore
security.ssl.internal.keystore-password: ks
security.ssl.internal.key-password: kp
security.ssl.internal.truststore: /flink/truststore
security.ssl.internal.truststore-password: ts
security.ssl.provider: OPENSSL
security.ssl.internal.session-timeout: 86400000
security.ssl.internal.handshake-timeout: 10000
`)
	tests := []struct {
		release, source string
		wantErr         string
	}{
		{"", "Flink 2.x SecurityOptions.java", ""},
		{"1.18", "Flink 1.18 SecurityOptions.java", ""},
		{"1.5", "Flink 1.5 SecurityOptions.java: no security.ssl.internal.*", "security.ssl.internal.session-timeout: Flink 1.5 does not read it"},
	}
	for _, tt := range tests {
		t.Run("Flink "+tt.release, func(t *testing.T) {
			s, err := spec.ParseFlink(doc)
			if err != nil {
				t.Fatal(err)
			}
			s.FlinkVersion = spec.ConsumerVersion{}
			s = flinkAt(t, tt.release, s)
			settings, err := Flink(jksBundle("pw"), dir, ProfileOf(s))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("%s: err %v, want %q", tt.source, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, st := range settings {
				got[st.Key] = st.Value
			}
			for k, v := range map[string]string{"security.ssl.provider": "OPENSSL", "security.ssl.internal.session-timeout": "86400000", "security.ssl.internal.handshake-timeout": "10000"} {
				if got[k] != v {
					t.Errorf("%s: %s = %q, want %q as the spec gives it", tt.source, k, got[k], v)
				}
			}
		})
	}
}
