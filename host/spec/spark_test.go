package spec

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"
)

// problem is an expected FieldError: its field, and parts of its ref and
// reason.
type problem struct {
	field, ref, reason string
}

// checkProblems fails unless err is an *Errors listing exactly want, in
// order.
func checkProblems(t *testing.T, err error, want ...problem) {
	t.Helper()
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v (%T) is not *Errors", err, err)
	}
	if len(errs.List) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(errs.List), len(want), err)
	}
	for i, w := range want {
		fe := errs.List[i]
		if fe.Field != w.field || !strings.Contains(fe.Ref, w.ref) || !strings.Contains(fe.Reason, w.reason) {
			t.Errorf("problem %d = %#v\nwant field %q, ref containing %q, reason containing %q", i, fe, w.field, w.ref, w.reason)
		}
	}
}

func TestParseSparkValid(t *testing.T) {
	base := map[string]string{
		"spark.ssl.enabled":          "true",
		"spark.ssl.keyStore":         "vault:secret/spark/tls#keystore@3",
		"spark.ssl.keyStorePassword": "${secret:vault:secret/spark/tls#storepass}",
	}
	with := func(kv ...string) map[string]string { return overlay(base, kv...) }
	tests := []struct {
		name  string
		props map[string]string
		check func(t *testing.T, s *Spec)
	}{
		{"refs with backends, fields and versions", base, func(t *testing.T, s *Spec) {
			if s.Keystore.Secret.Ref != (Ref{Backend: "vault", Path: "secret/spark/tls", Field: "keystore", Version: "3"}) {
				t.Errorf("keystore %+v", s.Keystore.Secret)
			}
			if pw := s.Keystore.Password; pw.Inline() || pw.Ref != (Ref{Backend: "vault", Path: "secret/spark/tls", Field: "storepass"}) {
				t.Errorf("password %+v", pw)
			}
			if s.Keystore.KeyPassword != nil {
				t.Errorf("key password %+v; Spark falls back to the keystore password, so none", s.Keystore.KeyPassword)
			}
			if s.Protocol != DefaultProtocol || s.StoreType != StoreTypeJKS || s.Truststore != nil {
				t.Errorf("got %s", dump(s))
			}
		}},
		{"a literal password", with("spark.ssl.keyStorePassword", "changeit"), func(t *testing.T, s *Spec) {
			if string(s.Keystore.Password.Value) != "changeit" || s.Keystore.Password.Encoding != "" {
				t.Errorf("password %s", dump(s))
			}
		}},
		{"a literal password that looks like a path stays literal", with("spark.ssl.keyStorePassword", "/spark/keystore_password"), func(t *testing.T, s *Spec) {
			if !s.Keystore.Password.Inline() {
				t.Errorf("password %s", dump(s))
			}
		}},
		{"PKCS12, TLSv1.3, inline truststore", with("spark.ssl.keyStoreType", "pkcs12", "spark.ssl.trustStoreType", "PKCS12",
			"spark.ssl.protocol", "TLSv1.3", "spark.ssl.trustStoreBase64", "AAEC\nAwQ=", "spark.ssl.trustStorePassword", "tpw"), func(t *testing.T, s *Spec) {
			if s.StoreType != StoreTypePKCS12 || s.Protocol != "TLSv1.3" {
				t.Errorf("got %s", dump(s))
			}
			if ts := s.Truststore; ts == nil || string(ts.Secret.Value) != "AAECAwQ=" || ts.Secret.Encoding != EncodingBase64 {
				t.Errorf("truststore %s", dump(s))
			}
		}},
		{"dcos-spark flags need no spark.ssl.enabled", map[string]string{
			"--keystore-secret-path": "/spark/keystore", "--keystore-password": "changeit", "--private-key-password": "changeit",
		}, func(t *testing.T, s *Spec) {
			if s.Keystore.Secret.Name != "--keystore-secret-path" || s.Keystore.Secret.Ref.Path != "/spark/keystore" {
				t.Errorf("got %s", dump(s))
			}
		}},
		{"other settings are left alone", with("spark.executor.memory", "4g", "spark.ssl.port", "4440", "spark.ssl.ui.port", "4441",
			"spark.ssl.historyServer.enabled", "false", "spark.ssl.needClientAuth", "true", "--class", "App"), func(t *testing.T, s *Spec) {}},
		{"empty values count as not set", with("spark.ssl.trustStore", " ", "spark.ssl.protocol", ""), func(t *testing.T, s *Spec) {
			if s.Truststore != nil || s.Protocol != DefaultProtocol {
				t.Errorf("got %s", dump(s))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSpark(tt.props)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestParseSparkProblems(t *testing.T) {
	ok := map[string]string{
		"spark.ssl.enabled":          "true",
		"spark.ssl.keyStore":         "/spark/keystore",
		"spark.ssl.keyStorePassword": "pw",
	}
	with := func(kv ...string) map[string]string { return overlay(ok, kv...) }
	tests := []struct {
		name  string
		props map[string]string
		want  []problem
	}{
		{"enabled false", with("spark.ssl.enabled", "false"), []problem{{"spark.ssl.enabled", "", "TLS is not enabled: spark.ssl.enabled is false"}}},
		{"enabled missing", with("spark.ssl.enabled", "<unset>"), []problem{{"spark.ssl.enabled", "", "spark.ssl.enabled is missing"}}},
		{"enabled not a boolean", with("spark.ssl.enabled", "yes"), []problem{{"spark.ssl.enabled", "", "must be true or false"}}},
		{"no keystore", with("spark.ssl.keyStore", "<unset>"), []problem{{"spark.ssl.keyStore", "", "required (the keystore"}}},
		{"no keystore password", with("spark.ssl.keyStorePassword", "<unset>"), []problem{{"spark.ssl.keyStorePassword", "", "required"}}},
		{"two keystores", with("spark.ssl.keyStoreBase64", "AAAA"), []problem{{"spark.ssl.keyStoreBase64", "", "set together with spark.ssl.keyStore"}}},
		{"a setting and its flag", with("--keystore-password", "pw"), []problem{{"--keystore-password", "", "set together with spark.ssl.keyStorePassword"}}},
		{"--keystore-secret-path needs the key password", map[string]string{"--keystore-secret-path": "/ks", "--keystore-password": "p"},
			[]problem{{"--private-key-password", "", "as dcos-spark requires it"}}},
		{"truststore without password", with("spark.ssl.trustStore", "/ts"), []problem{{"spark.ssl.trustStorePassword", "", "required when a truststore is set"}}},
		{"truststore password without truststore", with("--truststore-password", "p"), []problem{{"--truststore-password", "", "set without a truststore"}}},
		{"bad ref", with("spark.ssl.keyStore", "vault:secret/x#"), []problem{{"spark.ssl.keyStore", "vault:secret/x#", `empty field after "#"`}}},
		{"bad explicit ref", with("spark.ssl.keyStorePassword", "${secret:/pw@}"), []problem{{"spark.ssl.keyStorePassword", "/pw@", `empty version`}}},
		{"env substitution", with("spark.ssl.keyStorePassword", "${env:KS_PASSWORD}"), []problem{{"spark.ssl.keyStorePassword", "", "cannot read a ${...} substitution"}}},
		{"bad base64", map[string]string{"spark.ssl.enabled": "true", "spark.ssl.keyStoreBase64": "not base64!", "spark.ssl.keyStorePassword": "p"},
			[]problem{{"spark.ssl.keyStoreBase64", "", "not valid base64"}}},
		{"protocol", with("spark.ssl.protocol", "TLSv1.1"), []problem{{"spark.ssl.protocol", "", "protocol is not accepted; use TLSv1.2 or TLSv1.3"}}},
		{"store type", with("spark.ssl.keyStoreType", "JCEKS"), []problem{{"spark.ssl.keyStoreType", "", "store type is not supported"}}},
		{"store types differ", with("spark.ssl.trustStoreType", "PKCS12"), []problem{{"spark.ssl.trustStoreType", "", "differs from the keystore type JKS"}}},
		{"unknown key", with("spark.ssl.keyStorePass", "x"), []problem{{"spark.ssl.keyStorePass", "", "unknown setting; known settings are spark.ssl.enabled"}}},
		{"wrong case", with("spark.ssl.keystore", "/x"), []problem{{"spark.ssl.keystore", "", "did you mean spark.ssl.keyStore?"}}},
		{"flag typo", with("--keystore-secretpath", "/x"), []problem{{"--keystore-secretpath", "", "did you mean --keystore-secret-path?"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSpark(tt.props)
			if s != nil {
				t.Fatalf("ParseSpark = %s with error %v", dump(s), err)
			}
			checkProblems(t, err, tt.want...)
		})
	}
}

func TestParseSparkReportsAllProblems(t *testing.T) {
	_, err := ParseSpark(map[string]string{
		"spark.ssl.enabled":            "true",
		"spark.ssl.keyStoreBase64":     "%%%",
		"spark.ssl.trustStorePassword": "p",
		"spark.ssl.protocol":           "SSLv3",
		"spark.ssl.colour":             "blue",
	})
	checkProblems(t, err,
		problem{"spark.ssl.keyStoreBase64", "", "not valid base64"},
		problem{"spark.ssl.keyStorePassword", "", "required"},
		problem{"spark.ssl.trustStorePassword", "", "set without a truststore"},
		problem{"spark.ssl.protocol", "", "not accepted"},
		problem{"spark.ssl.colour", "", "unknown setting"},
	)
}

func TestSparkOptionsName(t *testing.T) {
	_, err := Parse([]byte(`{"service":{"name":"spark"},"security":{"ssl":{"enabled":true,"keyStoreBase64":"AAAA","keyPassword":"x","keystorePassword":"x","protocol":["TLSv1.2"]}}}`), DialectSpark)
	checkProblems(t, err,
		problem{"security.ssl.protocol", "", "must be a string, number or boolean, got array"},
		problem{"security.ssl.keyStorePassword", "", "required"},
		problem{"security.ssl.keystorePassword", "", "did you mean security.ssl.keyStorePassword?"},
	)
	_, err = Parse([]byte(`{"security":{"ssl":{"keyStoreBase64":"AAAA","keyStorePassword":"x"}}}`), DialectSpark)
	checkProblems(t, err, problem{"security.ssl.enabled", "", "security.ssl.enabled is missing"})
	_, err = Parse([]byte(`{"security":{"ssl":[]}}`), DialectSpark)
	checkProblems(t, err, problem{"security.ssl", "", "must be an object"})
	if _, err = Parse([]byte(`{"security":`), DialectSpark); err == nil || !strings.Contains(err.Error(), "malformed DC/OS Spark options JSON at line 1") {
		t.Errorf("error %v", err)
	}
}

func TestReadSparkProperties(t *testing.T) {
	doc := "# comment\n" +
		"! also a comment \\\n" +
		"spark.a   one\n" +
		"spark.b=two\r\n" +
		"spark.c : three  \n" +
		"  spark.d\tfour\n" +
		"spark.e = a long \\\n" +
		"    value\n" +
		"spark\\ f=\\u0041\\tB\\=\n" +
		"spark.g\n" +
		"--conf spark.h=\"with space\" --conf=spark.i=x=y -c spark.j=1 -Dspark.k=2 --class Main app.jar --keystore-password 'p w'\n" +
		"--truststore-password=tp --keystore-secret-path /ks\n" +
		"spark.a one\n"
	got, err := ReadSparkProperties([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"spark.a": "one", "spark.b": "two", "spark.c": "three", "spark.d": "four", "spark.e": "a long value",
		"spark f": "A\tB=", "spark.g": "", "spark.h": "with space", "spark.i": "x=y", "spark.j": "1", "spark.k": "2",
		"--keystore-password": "p w", "--truststore-password": "tp", "--keystore-secret-path": "/ks",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}

	bad := "spark.a=1\n" +
		"--conf\n" +
		"--conf novalue\n" +
		"spark.a=2\n" +
		"--keystore-password 'open\n" +
		"=x\n" +
		"--truststore-pasword x\n"
	_, err = ReadSparkProperties([]byte(bad))
	checkProblems(t, err,
		problem{"line 2", "", "--conf needs a value"},
		problem{"line 3", "", "--conf needs KEY=VALUE"},
		problem{"spark.a", "", "set more than once, to different values (lines 1 and 4)"},
		problem{"line 5", "", "unterminated single quote"},
		problem{"line 6", "", "a properties line needs a key"},
		problem{"line 7", "", "did you mean --truststore-password?"},
	)
}

// overlay copies base and applies key, value pairs over it; the value
// "<unset>" deletes the key.
func overlay(base map[string]string, kv ...string) map[string]string {
	m := maps.Clone(base)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}
