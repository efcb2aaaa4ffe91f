package spec

import (
	"reflect"
	"strings"
	"testing"
)

// TestLibprocessNamesLibprocessReads (issue 11, defect 4): libprocess reads
// LIBPROCESS_SSL_VERIFICATION_DEPTH and LIBPROCESS_SSL_ECDH_CURVES
// (3rdparty/libprocess/src/openssl.cpp, Flags(): verification_depth,
// ecdh_curves; Mesos 1.4+); the Mesos documentation's VERIFY_DEPTH and
// ECDH_CURVE (seed 004) are skipped by stout's flag loader without a word.
func TestLibprocessNamesLibprocessReads(t *testing.T) {
	base := "LIBPROCESS_SSL_ENABLED=true LIBPROCESS_SSL_KEY_FILE=/k LIBPROCESS_SSL_CERT_FILE=/c "
	tests := []struct {
		name, env string
		depth     *int
		curves    string
		warnings  []string
		problem   string
	}{
		{"the names libprocess reads", "LIBPROCESS_SSL_VERIFICATION_DEPTH=6 LIBPROCESS_SSL_ECDH_CURVES=P-384:P-256", new(6), "P-384:P-256", nil, ""},
		{"the documented names, translated", "LIBPROCESS_SSL_VERIFY_DEPTH=6 LIBPROCESS_SSL_ECDH_CURVE=auto", new(6), "auto", []string{
			"LIBPROCESS_SSL_ECDH_CURVE is the Mesos documentation's name, but libprocess reads LIBPROCESS_SSL_ECDH_CURVES",
			"LIBPROCESS_SSL_VERIFY_DEPTH is the Mesos documentation's name, but libprocess reads LIBPROCESS_SSL_VERIFICATION_DEPTH"}, ""},
		{"legacy prefix", "SSL_VERIFY_DEPTH=2", new(2), "", []string{"SSL_VERIFY_DEPTH is the Mesos documentation's name"}, ""},
		{"both names, one value", "LIBPROCESS_SSL_VERIFY_DEPTH=3 LIBPROCESS_SSL_VERIFICATION_DEPTH=3", new(3), "", []string{"LIBPROCESS_SSL_VERIFY_DEPTH is"}, ""},
		{"both names, two values", "LIBPROCESS_SSL_VERIFY_DEPTH=3 LIBPROCESS_SSL_VERIFICATION_DEPTH=5", nil, "", nil,
			"LIBPROCESS_SSL_VERIFY_DEPTH: set together with LIBPROCESS_SSL_VERIFICATION_DEPTH to another value"},
		{"a typo still gets a guess", "LIBPROCESS_SSL_VERIFICATION_DEPT=3", nil, "", nil,
			"LIBPROCESS_SSL_VERIFICATION_DEPT: unknown setting; did you mean LIBPROCESS_SSL_VERIFICATION_DEPTH?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ReadEnv([]byte(base + tt.env))
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParseLibprocess(env)
			if tt.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("error %v, want %q", err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Libprocess.VerificationDepth, tt.depth) || s.Libprocess.ECDHCurves != tt.curves {
				t.Errorf("depth %v curves %q", s.Libprocess.VerificationDepth, s.Libprocess.ECDHCurves)
			}
			if len(s.Warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %d", s.Warnings, len(tt.warnings))
			}
			for i, w := range tt.warnings {
				if !strings.Contains(s.Warnings[i], w) {
					t.Errorf("warning %q, want %q", s.Warnings[i], w)
				}
			}
		})
	}
}

// TestSparkNamespacesAndProtocol (issue 11, defect 6): every namespace Spark
// or the DC/OS fork reads is accepted and inherits from spark.ssl as
// SSLOptions.parse(conf, ns, Some(defaults)) does (Spark 3.5/4.0
// core/src/main/scala/org/apache/spark/SSLOptions.scala; spark.ssl.mesos:
// MesosClusterUI, Spark 2.x; spark.ssl.submission: mesosphere/spark
// SecurityManager); spark.ssl.protocol=TLS (the dcos-spark CLI's default,
// spark-build cli/dcos-spark/security.go setupTLSArgs) is accepted;
// enabledAlgorithms is carried.
func TestSparkNamespacesAndProtocol(t *testing.T) {
	base := map[string]string{"spark.ssl.enabled": "true", "spark.ssl.keyStore": "/ks", "spark.ssl.keyStorePassword": "pw"}
	with := func(kv ...string) map[string]string { return overlay(base, kv...) }
	tests := []struct {
		name  string
		props map[string]string
		check func(t *testing.T, s *Spec)
		want  []problem
	}{
		{"every namespace", with("spark.ssl.mesos.enabled", "true", "spark.ssl.submission.port", "7077", "spark.ssl.ui.needClientAuth", "false",
			"spark.ssl.historyServer.enabled", "false", "spark.ssl.rpc.enabled", "true", "spark.ssl.standalone.keyStore", "/ks", "spark.ssl.fs.protocol", "TLSv1.2"),
			func(t *testing.T, s *Spec) {
				var names []string
				for _, n := range s.Spark.Namespaces {
					names = append(names, n.Name)
				}
				if !reflect.DeepEqual(names, []string{"ui", "standalone", "historyServer", "rpc", "fs", "mesos", "submission"}) {
					t.Errorf("namespaces %v", names)
				}
				if n := s.Spark.Namespaces[2]; n.Enabled == nil || *n.Enabled {
					t.Errorf("historyServer %+v", n)
				}
			}, nil},
		{"a namespace alone turns TLS on and gives the stores", map[string]string{"spark.ssl.mesos.enabled": "true", "spark.ssl.mesos.keyStore": "/ks",
			"spark.ssl.mesos.keyStorePassword": "pw"}, func(t *testing.T, s *Spec) {
			if s.Keystore.Secret.Name != "spark.ssl.mesos.keyStore" || s.Spark.Enabled != nil {
				t.Errorf("got %s", dump(s))
			}
		}, nil},
		{"protocol TLS", with("spark.ssl.protocol", "TLS"), func(t *testing.T, s *Spec) {
			if s.Protocol != "TLSv1.2" || s.Spark.Protocol != "TLS" {
				t.Errorf("protocol %q, Spark %q", s.Protocol, s.Spark.Protocol)
			}
		}, nil},
		{"enabledAlgorithms", with("spark.ssl.protocol", "TLSv1.3", "spark.ssl.enabledAlgorithms", " TLS_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256,"),
			func(t *testing.T, s *Spec) {
				if !reflect.DeepEqual(s.CipherSuites, []string{"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"}) || s.CipherSuitesSetting != "spark.ssl.enabledAlgorithms" {
					t.Errorf("suites %v from %q", s.CipherSuites, s.CipherSuitesSetting)
				}
			}, nil},
		{"a namespace with another keystore", with("spark.ssl.ui.keyStore", "/other"), nil,
			[]problem{{"spark.ssl.ui.keyStore", "", "names another keystore than spark.ssl.keyStore; keyship ships one keystore per job"}}},
		{"a namespace with another protocol", with("spark.ssl.protocol", "TLSv1.2", "spark.ssl.ui.protocol", "TLSv1.3"), nil,
			[]problem{{"spark.ssl.ui.protocol", "", "differs from spark.ssl.protocol"}}},
		{"suites that cannot meet the protocol", with("spark.ssl.protocol", "TLSv1.3", "spark.ssl.enabledAlgorithms", "TLS_RSA_WITH_AES_128_CBC_SHA"), nil,
			[]problem{{"spark.ssl.enabledAlgorithms", "", "lists no TLS 1.3 cipher suite"}}},
		{"a typo in a namespace", with("spark.ssl.ui.keystore", "/ks"), nil,
			[]problem{{"spark.ssl.ui.keystore", "", "did you mean spark.ssl.ui.keyStore?"}}},
		{"an unknown namespace", with("spark.ssl.web.keyStore", "/ks"), nil,
			[]problem{{"spark.ssl.web.keyStore", "", "unknown setting; known settings are spark.ssl.enabled"}}},
		{"nothing enabled", overlay(base, "spark.ssl.enabled", "false", "spark.ssl.ui.enabled", "false"), nil,
			[]problem{{"spark.ssl.enabled", "", "TLS is not enabled: spark.ssl.enabled is false"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSpark(tt.props)
			if tt.want != nil {
				checkProblems(t, err, tt.want...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

// TestSparkVersionInferred (issue 11, defect 5): keyStoreBase64 is read only
// by the DC/OS fork of Spark 2.2 and before (mesosphere/spark
// core/src/main/scala/org/apache/spark/SSLOptions.scala, parse: temporaryStoreFile),
// whose SSLOptions reads passwords with getOption: no ${env:...}.
func TestSparkVersionInferred(t *testing.T) {
	for _, tt := range []struct {
		name, doc string
		want      Version
	}{
		{"package options JSON", seed003Options, Version{2, 2}},
		{"keyStoreBase64 property", seed003Properties, Version{2, 2}},
		{"spark-defaults.conf", "spark.ssl.enabled true\nspark.ssl.keyStore /ks\nspark.ssl.keyStorePassword pw\n", Version{}},
	} {
		s := mustParse(t, tt.doc, DialectSpark)
		if s.SparkVersion.Version != tt.want || !tt.want.IsZero() && !strings.Contains(s.SparkVersion.From, "Spark 2.2") {
			t.Errorf("%s: SparkVersion %+v, want %v", tt.name, s.SparkVersion, tt.want)
		}
	}
}

// TestFlinkReleaseInferred (issue 11, defect 8): the newest Flink that reads
// every key of the request (SecurityOptions.java of each release: internal/
// rest keys from 1.6, keystore-type from 1.20, security.ssl.enabled gone in
// 2.0; GlobalConfiguration: nested YAML from 1.19).
func TestFlinkReleaseInferred(t *testing.T) {
	internal := "security.ssl.internal.enabled: true\nsecurity.ssl.internal.keystore: /k\nsecurity.ssl.internal.keystore-password: p\n" +
		"security.ssl.internal.key-password: p\nsecurity.ssl.internal.truststore: /t\nsecurity.ssl.internal.truststore-password: p\n"
	for _, tt := range []struct {
		name, doc string
		want      Version
		from      string
	}{
		{"internal keys", internal, Version{}, "security.ssl.internal.* and security.ssl.rest.* exist from Flink 1.6"},
		{"with keystore-type", internal + "security.ssl.internal.keystore-type: PKCS12\nsecurity.ssl.internal.truststore-type: PKCS12\n", Version{}, "from Flink 1.20"},
		{"with security.ssl.enabled", internal + "security.ssl.enabled: true\nsecurity.ssl.rest.enabled: false\n", Version{1, 20}, "Flink 1.x only"},
		{"seed 002", seed002Standalone, Version{1, 20}, "Flink 1.x only"},
		{"seed 002 with its web UI switch", seed002Standalone + "jobmanager.web.ssl.enabled: false\n", Version{1, 5}, "jobmanager.web.ssl.enabled is Flink 1.5's"},
		{"seed 002 with Mesos", seed002Standalone + "mesos.resourcemanager.artifactserver.ssl.enabled: false\n", Version{1, 13}, "Flink 1.14 removed Mesos"},
		{"Mesos and keystore-type", internal + "security.ssl.internal.keystore-type: JKS\nmesos.resourcemanager.artifactserver.ssl.enabled: true\n", Version{1, 20}, "no release"},
		{"nested", "security:\n  ssl:\n    internal:\n      enabled: true\n      keystore: /k\n      keystore-password: p\n      key-password: p\n      truststore: /t\n      truststore-password: p\n",
			Version{}, "config.yaml"},
		{"pekko", internal + "pekko.ssl.enabled: true\nakka.ssl.enabled: true\n", Version{1, 20}, "akka.ssl.enabled is read by Flink 1.x only"},
	} {
		s, err := ParseFlink([]byte(tt.doc))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if s.FlinkVersion.Version != tt.want || tt.from != "no release" && !strings.Contains(s.FlinkVersion.From, tt.from) {
			t.Errorf("%s: FlinkVersion %+v, want %v (%s)", tt.name, s.FlinkVersion, tt.want, tt.from)
		}
	}
}

// TestSeedSwitches (issue 11, defect 7): seed 002's component switches are
// honoured as Flink does (each turns TLS off for its component), and seed
// 003's security.mesos.ssl.enabled, which keyship cannot honour, is refused
// with why.
func TestSeedSwitches(t *testing.T) {
	s := mustParse(t, seed002Standalone+"taskmanager.data.ssl.enabled: false\nblob.service.ssl.enabled: true\nakka.ssl.enabled: false\n"+
		"jobmanager.web.ssl.enabled: false\nmesos.resourcemanager.artifactserver.ssl.enabled: false\n", DialectFlink)
	if s.Endpoints == nil || !s.Endpoints.Internal || s.Endpoints.REST {
		t.Errorf("jobmanager.web.ssl.enabled: false leaves the REST endpoint %+v", s.Endpoints)
	}
	f := s.Flink
	if f == nil || f.Data == nil || f.Data.On || f.Blob == nil || !f.Blob.On || f.RPC == nil || f.RPC.Setting != "akka.ssl.enabled" || f.ArtifactServer == nil {
		t.Errorf("switches %+v", f)
	}
	// The three internal components off: internal TLS is off.
	s = mustParse(t, seed002Standalone+"taskmanager.data.ssl.enabled: false\nblob.service.ssl.enabled: false\npekko.ssl.enabled: false\n", DialectFlink)
	if s.Endpoints == nil || s.Endpoints.Internal || !s.Endpoints.REST {
		t.Errorf("internal components off: %+v", s.Endpoints)
	}
	// security.ssl.rest.enabled wins over the older web UI switch.
	s = mustParse(t, seed002Standalone+"security.ssl.rest.enabled: true\njobmanager.web.ssl.enabled: false\n", DialectFlink)
	if s.Endpoints != nil {
		t.Errorf("security.ssl.rest.enabled: true: %+v", s.Endpoints)
	}
	_, err := ParseFlink([]byte(seed002Standalone + "akka.ssl.enabled: false\npekko.ssl.enabled: true\n"))
	checkProblems(t, err, problem{"akka.ssl.enabled", "", "set to false while pekko.ssl.enabled is true"})

	_, err = Parse([]byte(`{"security": {"mesos": {"ssl": {"enabled": true}}, "ssl": {"enabled": true, "keyStoreBase64": "AAAA", "keyStorePassword": "x"}}}`), DialectSpark)
	checkProblems(t, err, problem{"security.mesos.ssl.enabled", "", "libprocess"})
	if _, err := Parse([]byte(`{"security": {"mesos": {"ssl": {"enabled": false}}, "ssl": {"enabled": true, "keyStoreBase64": "AAAA", "keyStorePassword": "x"}}}`), DialectSpark); err != nil {
		t.Errorf("security.mesos.ssl.enabled false: %v", err)
	}
}

// TestShellWordsAsAShell: google/shlex splits the words; a line it would
// read differently from a POSIX shell is refused.
func TestShellWordsAsAShell(t *testing.T) {
	for _, tt := range []struct {
		line   string
		words  []string
		reason string
	}{
		{`--conf spark.ssl.keyStorePassword='a b' -Dx="c\"d\$e" f\ g # comment`, []string{"--conf", "spark.ssl.keyStorePassword=a b", `-Dx=c"d$e`, "f g"}, ""},
		{`a#b 'c#d'`, []string{"a#b", "c#d"}, ""},
		{`--keystore-password "pa\ss"`, nil, `a backslash inside double quotes before 's'`},
		{`x='open`, nil, "unterminated single quote"},
		{`x="open`, nil, "unterminated double quote"},
	} {
		words, reason := shellWords(tt.line)
		if !reflect.DeepEqual(words, tt.words) || !strings.Contains(reason, tt.reason) || (tt.reason == "") != (reason == "") {
			t.Errorf("shellWords(%q) = %q, %q; want %q, %q", tt.line, words, reason, tt.words, tt.reason)
		}
	}
}

// TestDetectSaysYAMLError (issue 10): a YAML syntax error is a YAML error,
// with its line, not "cannot tell the dialect".
func TestDetectSaysYAMLError(t *testing.T) {
	for _, tt := range []struct{ doc, want string }{
		{"security.ssl.enabled: true\nsecurity.ssl.keystore: /k\n\tsecurity.ssl.key-password: p\n", "not valid YAML: line 2: found a tab character"},
		{"security:\n  ssl:\n    enabled: true\n   keystore: /k\n", "not valid YAML: line 1: did not find expected key"},
		{`{"security": {"tls": {"enabled": true,}}}`, "malformed JSON TLS request at line 1, column 39"},
		{"hello: world\n", "cannot tell the dialect"},
	} {
		_, err := Detect([]byte(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Detect(%q) = %v, want %q", tt.doc, err, tt.want)
		}
	}
}

// TestLongRefsAreCut (issue 10): a 1 MB ref is not echoed (twice) in errors.
func TestLongRefsAreCut(t *testing.T) {
	long := "/a" + strings.Repeat("x", 1<<20)
	doc := `{"security":{"tls":{"enabled":true,"keystore_secret":"` + long + `@v v","keystore_password":"/p","key_password":"` + long + `#f/g"}}}`
	_, err := ParseDCOS([]byte(doc))
	if err == nil {
		t.Fatal("no error")
	}
	if n := len(err.Error()); n > 2000 {
		t.Errorf("the error is %d bytes", n)
	}
	if !strings.Contains(err.Error(), "...[1048582 bytes]") {
		t.Errorf("the error does not say how long the ref is: %.300s", err)
	}
	if _, err := ParseRef(long + "@"); err == nil || len(err.Error()) > 300 {
		t.Errorf("ParseRef: %.300v", err)
	}
	if got := Shorten("short"); got != "short" {
		t.Errorf("Shorten(short) = %q", got)
	}
}
