package spec

import (
	"reflect"
	"testing"
)

func TestParseLibprocessSwitches(t *testing.T) {
	env, err := ReadEnv([]byte(`LIBPROCESS_SSL_ENABLED=true
LIBPROCESS_SSL_KEY_FILE=vault:secret/mesos/tls#key
LIBPROCESS_SSL_CERT_FILE=${secret:vault:secret/mesos/tls#cert}
LIBPROCESS_SSL_CA_FILE=/mesos/ca.pem
LIBPROCESS_SSL_CA_DIR=/etc/ssl/certs
LIBPROCESS_SSL_VERIFY_CERT=0
LIBPROCESS_SSL_VERIFY_SERVER_CERT=1
LIBPROCESS_SSL_REQUIRE_CERT=FALSE
LIBPROCESS_SSL_VERIFY_IPADD=true
LIBPROCESS_SSL_VERIFY_DEPTH=6
LIBPROCESS_SSL_ENABLE_TLS_V1_3=true
LIBPROCESS_SSL_ENABLE_TLS_V1_0=false
LIBPROCESS_SSL_SUPPORT_DOWNGRADE=false
LIBPROCESS_SSL_CIPHERS=ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384
LIBPROCESS_SSL_ECDH_CURVE=auto
LIBPROCESS_SSL_HOSTNAME_VALIDATION_SCHEME=openssl
SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
PATH=/usr/bin
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseLibprocess(env)
	if err != nil {
		t.Fatal(err)
	}
	want := &Libprocess{
		SupportDowngrade: new(false), VerifyCert: new(true), RequireCert: new(false), VerifyIPAdd: new(true),
		VerificationDepth: new(6), CADir: "/etc/ssl/certs", Ciphers: "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384",
		ECDHCurves: "auto", HostnameValidationScheme: "openssl", EnableTLS10: new(false), EnableTLS13: new(true),
	}
	if !reflect.DeepEqual(s.Libprocess, want) {
		t.Errorf("switches\n%+v\nwant\n%+v", s.Libprocess, want)
	}
	if s.Protocol != "TLSv1.3" {
		t.Errorf("protocol %q", s.Protocol)
	}
	// LIBPROCESS_SSL_CERT_FILE wins over OpenSSL's SSL_CERT_FILE.
	if s.Keystore.Certificate.Name != "LIBPROCESS_SSL_CERT_FILE" || s.Keystore.Certificate.Ref != (Ref{Backend: "vault", Path: "secret/mesos/tls", Field: "cert"}) {
		t.Errorf("certificate %s", dump(s))
	}
	if s.Truststore == nil || s.Truststore.Secret.Ref.Path != "/mesos/ca.pem" || s.Truststore.Password.IsSet() {
		t.Errorf("CA file %s", dump(s))
	}
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.Name)
	}
	if !reflect.DeepEqual(names, []string{"LIBPROCESS_SSL_KEY_FILE", "LIBPROCESS_SSL_CERT_FILE", "LIBPROCESS_SSL_CA_FILE"}) {
		t.Errorf("Fields() = %v", names)
	}
}

func TestParseLibprocessProblems(t *testing.T) {
	ok := map[string]string{
		"LIBPROCESS_SSL_ENABLED":   "true",
		"LIBPROCESS_SSL_KEY_FILE":  "/key.pem",
		"LIBPROCESS_SSL_CERT_FILE": "/cert.pem",
	}
	with := func(kv ...string) map[string]string { return overlay(ok, kv...) }
	tests := []struct {
		name string
		env  map[string]string
		want []problem
	}{
		{"not enabled", with("LIBPROCESS_SSL_ENABLED", "<unset>"), []problem{{"LIBPROCESS_SSL_ENABLED", "", "LIBPROCESS_SSL_ENABLED is missing"}}},
		{"legacy disabled", with("LIBPROCESS_SSL_ENABLED", "<unset>", "SSL_ENABLED", "0"), []problem{{"SSL_ENABLED", "", "SSL_ENABLED is false"}}},
		{"no key", with("LIBPROCESS_SSL_KEY_FILE", "<unset>"), []problem{{"LIBPROCESS_SSL_KEY_FILE", "", "required when TLS is enabled"}}},
		{"not a boolean", with("LIBPROCESS_SSL_VERIFY_CERT", "yes"), []problem{{"LIBPROCESS_SSL_VERIFY_CERT", "", "must be true, false, 1 or 0"}}},
		{"depth", with("SSL_VERIFY_DEPTH", "-1"), []problem{{"SSL_VERIFY_DEPTH", "", "must be a number"}}},
		{"old protocol", with("LIBPROCESS_SSL_ENABLE_TLS_V1_1", "true"), []problem{{"LIBPROCESS_SSL_ENABLE_TLS_V1_1", "", "TLSv1.1 is not accepted"}}},
		{"no protocol", with("LIBPROCESS_SSL_ENABLE_TLS_V1_2", "false"), []problem{{"LIBPROCESS_SSL_ENABLE_TLS_V1_2", "", "no accepted protocol is enabled"}}},
		{"scheme", with("LIBPROCESS_SSL_HOSTNAME_VALIDATION_SCHEME", "strict"), []problem{{"LIBPROCESS_SSL_HOSTNAME_VALIDATION_SCHEME", "", "legacy or openssl"}}},
		{"bad ref", with("LIBPROCESS_SSL_CA_FILE", "file:../ca.pem"), []problem{{"LIBPROCESS_SSL_CA_FILE", "file:../ca.pem", `".." segment`}}},
		{"unknown", with("LIBPROCESS_SSL_VERIFY_CERTS", "1"), []problem{{"LIBPROCESS_SSL_VERIFY_CERTS", "", "did you mean LIBPROCESS_SSL_VERIFY_CERT?"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseLibprocess(tt.env)
			if s != nil {
				t.Fatalf("ParseLibprocess = %s", dump(s))
			}
			checkProblems(t, err, tt.want...)
		})
	}
}

func TestReadEnv(t *testing.T) {
	got, err := ReadEnv([]byte(`# comment
export A=1 B="two words" C='$HOME' D=x\ y
env E=5 /usr/bin/mesos-agent --flag=F=6
G=7 \
  H=8
// not an assignment I=9
J="a\"b" K=
A=1
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "two words", "C": "$HOME", "D": "x y", "E": "5", "G": "7", "H": "8", "J": `a"b`, "K": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	_, err = ReadEnv([]byte("A=1\nA=2\nB='x\n"))
	checkProblems(t, err,
		problem{"A", "", "set more than once, to different values (lines 1 and 2)"},
		problem{"line 3", "", "unterminated single quote"})
}
