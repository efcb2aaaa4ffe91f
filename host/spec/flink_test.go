package spec

import (
	"strings"
	"testing"
)

func TestParseFlinkValid(t *testing.T) {
	internal := `security.ssl.internal.enabled: true
security.ssl.internal.keystore: /flink/internal.keystore
security.ssl.internal.keystore-password: ${secret:/flink/ks_pw}
security.ssl.internal.key-password: ${secret:/flink/key_pw}
security.ssl.internal.truststore: /flink/internal.truststore
security.ssl.internal.truststore-password: ${secret:/flink/ts_pw}
`
	tests := []struct {
		name  string
		doc   string
		check func(t *testing.T, s *Spec)
	}{
		{"internal only", internal, func(t *testing.T, s *Spec) {
			if s.Endpoints == nil || !s.Endpoints.Internal || s.Endpoints.REST {
				t.Errorf("endpoints %+v", s.Endpoints)
			}
			if s.Keystore.Secret.Name != "security.ssl.internal.keystore" || s.Keystore.Password.Ref.Path != "/flink/ks_pw" {
				t.Errorf("got %s", dump(s))
			}
		}},
		{"rest only, without truststore", `security.ssl.rest.enabled: true
security.ssl.rest.keystore: /flink/rest.keystore
security.ssl.rest.keystore-password: pw
security.ssl.rest.key-password: pw
security.ssl.rest.keystore-type: PKCS12
`, func(t *testing.T, s *Spec) {
			if s.Endpoints == nil || s.Endpoints.Internal || !s.Endpoints.REST || s.Truststore != nil || s.StoreType != StoreTypePKCS12 {
				t.Errorf("got %s", dump(s))
			}
		}},
		{"legacy enabled turns both on; the endpoint's own setting wins", seed002Standalone + "security.ssl.rest.enabled: false\n", func(t *testing.T, s *Spec) {
			if s.Endpoints == nil || !s.Endpoints.Internal || s.Endpoints.REST {
				t.Errorf("endpoints %+v", s.Endpoints)
			}
		}},
		{"both on, rest falls back to the older keys", strings.ReplaceAll(seed002Standalone, "security.ssl.truststore", "security.ssl.internal.truststore"), func(t *testing.T, s *Spec) {
			if s.Endpoints != nil || s.Truststore == nil || s.Truststore.Secret.Name != "security.ssl.internal.truststore" {
				t.Errorf("got %s", dump(s))
			}
		}},
		{"verify-hostname, protocol, pass-through and other keys", seed002Standalone + `security.ssl.verify-hostname: false
security.ssl.protocol: TLSv1.3
security.ssl.algorithms: TLS_AES_128_GCM_SHA256
security.ssl.internal.session-cache-size: 100
taskmanager.data.ssl.enabled: false
jobmanager.rpc.address: localhost # a comment
`, func(t *testing.T, s *Spec) {
			if s.VerifyHostname == nil || *s.VerifyHostname || s.Protocol != "TLSv1.3" {
				t.Errorf("got %s", dump(s))
			}
		}},
		{"numbers and quotes are text", `security.ssl.enabled: "true"
security.ssl.keystore: /ks
security.ssl.keystore-password: 0123
security.ssl.key-password: 'pass #1'
security.ssl.truststore: /ts
security.ssl.truststore-password: 1e3
`, func(t *testing.T, s *Spec) {
			if string(s.Keystore.Password.Value) != "0123" || string(s.Keystore.KeyPassword.Value) != "pass #1" || string(s.Truststore.Password.Value) != "1e3" {
				t.Errorf("got %s", dump(s))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseFlink([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestParseFlinkProblems(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []problem
	}{
		{"not enabled", "security.ssl.keystore: /ks\n", []problem{{"security.ssl.internal.enabled", "", "TLS is not enabled"}}},
		{"enabled false", strings.Replace(seed002Standalone, "enabled: true", "enabled: false", 1), []problem{{"security.ssl.internal.enabled", "", "TLS is not enabled"}}},
		{"enabled not a boolean", strings.Replace(seed002Standalone, "enabled: true", "enabled: sure", 1), []problem{{"security.ssl.enabled", "", "must be true or false"}}},
		{"internal needs a truststore", strings.Split(seed002Standalone, "security.ssl.truststore:")[0], []problem{
			{"security.ssl.internal.truststore", "", "required for internal TLS (the secret ref of the truststore; or the older security.ssl.truststore)"}}},
		{"missing passwords", "security.ssl.internal.enabled: true\nsecurity.ssl.internal.keystore: /ks\nsecurity.ssl.internal.truststore: /ts\n", []problem{
			{"security.ssl.internal.keystore-password", "", "required for internal TLS"},
			{"security.ssl.internal.key-password", "", "required for internal TLS"},
			{"security.ssl.internal.truststore-password", "", "required"}}},
		{"rest with mutual auth needs a truststore", "security.ssl.rest.enabled: true\nsecurity.ssl.rest.authentication-enabled: true\n" +
			"security.ssl.rest.keystore: /ks\nsecurity.ssl.rest.keystore-password: p\nsecurity.ssl.rest.key-password: p\n", []problem{
			{"security.ssl.rest.truststore", "", "required for TLS on the REST endpoint"}}},
		{"endpoints with different keystores", seed002Standalone + "security.ssl.rest.keystore: /rest.keystore\n", []problem{
			{"security.ssl.rest.keystore", "", "the REST endpoint's keystore differs from the internal one (security.ssl.keystore); keyship ships one keystore per job"}}},
		{"endpoints with different passwords", seed002Standalone + "security.ssl.rest.key-password: other\n", []problem{
			{"security.ssl.rest.key-password", "", "key password differs"}}},
		{"bad ref", strings.Replace(seed002Standalone, "/etc/node.keystore", "/etc/../node.keystore", 1), []problem{
			{"security.ssl.keystore", "/etc/../node.keystore", `".." segment`}}},
		{"a list", seed002Standalone + "security.ssl.protocol: [TLSv1.2]\n", []problem{{"security.ssl.protocol", "", "must be a single value, got a list"}}},
		{"protocol per endpoint", seed002Standalone + "security.ssl.internal.protocol: TLSv1.2\n", []problem{
			{"security.ssl.internal.protocol", "", "did you mean security.ssl.protocol (Flink has one protocol for every endpoint)?"}}},
		{"duplicate flat and nested", seed002Standalone + "security:\n  ssl:\n    keystore: /other\n", []problem{
			{"security.ssl.keystore", "", "set more than once (lines 2 and 9)"}}},
		{"typo", seed002Standalone + "security.ssl.verify-hostnme: false\n", []problem{{"security.ssl.verify-hostnme", "", "did you mean security.ssl.verify-hostname?"}}},
		{"store types", seed002Standalone + "security.ssl.internal.keystore-type: jks\nsecurity.ssl.internal.truststore-type: pkcs12\n", []problem{
			{"security.ssl.internal.truststore-type", "", `truststore type "PKCS12" differs from the keystore type "JKS"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseFlink([]byte(tt.doc))
			if s != nil {
				t.Fatalf("ParseFlink = %s", dump(s))
			}
			checkProblems(t, err, tt.want...)
		})
	}
}

func TestParseFlinkBadDocuments(t *testing.T) {
	for _, tt := range []struct{ doc, want string }{
		{"", "empty Flink configuration"},
		{"  \n# only a comment\n", "TLS is not enabled"},
		{"- a\n- b\n", "must be a YAML mapping of settings (key: value), got a list"},
		{"security.ssl.enabled: [\n", "malformed Flink configuration YAML: line 1"},
		{"a: b: c\n", "malformed Flink configuration YAML: mapping values are not allowed"},
	} {
		_, err := ParseFlink([]byte(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseFlink(%q) = %v, want an error containing %q", tt.doc, err, tt.want)
		}
	}
}
