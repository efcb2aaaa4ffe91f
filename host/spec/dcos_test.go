package spec

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// seed000 is the security.tls example of the DC/OS Data Science Engine SSL
// page (seeds/000), with {{ model.packageName }} replaced by spark.
const seed000 = ExampleDCOS

func TestParseDCOSSeed000(t *testing.T) {
	got, err := ParseDCOS([]byte(seed000))
	if err != nil {
		t.Fatal(err)
	}
	f := func(name, path string) Field {
		return Field{Name: "security.tls." + name, Ref: Ref{Path: path}}
	}
	want := &Spec{
		Keystore: Store{
			Secret:      f("keystore_secret", "/spark/keystore"),
			Password:    f("keystore_password", "/spark/keystore_password"),
			KeyPassword: new(f("key_password", "/spark/key_password")),
		},
		Truststore: &Store{
			Secret:   f("truststore_secret", "/spark/truststore"),
			Password: f("truststore_password", "/spark/truststore_password"),
		},
		CABundle:        new(f("ca_bundle_secret", "/spark/ca_bundle_truststore")),
		Protocol:        "TLSv1.2",
		ProtocolSetting: "security.tls.protocol",
		StoreType:       "jks",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseDCOS(seed 000) =\n%#v\nwant\n%#v", got, want)
	}
	var names []string
	for _, fl := range got.Fields() {
		names = append(names, fl.Name)
	}
	wantNames := "security.tls.keystore_secret security.tls.keystore_password security.tls.key_password " +
		"security.tls.truststore_secret security.tls.truststore_password security.tls.ca_bundle_secret"
	if strings.Join(names, " ") != wantNames {
		t.Errorf("Fields() names = %v", names)
	}
}

// tlsJSON builds a {"security":{"tls":...}} document from settings; a nil
// value leaves the setting out.
func tlsJSON(t *testing.T, settings map[string]any) []byte {
	t.Helper()
	tls := map[string]any{}
	for k, v := range settings {
		if v != nil {
			tls[k] = v
		}
	}
	b, err := json.Marshal(map[string]any{"security": map[string]any{"tls": tls}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// minimal returns the required settings plus overrides (nil removes one).
func minimal(overrides map[string]any) map[string]any {
	m := map[string]any{
		"enabled":           true,
		"keystore_secret":   "/spark/keystore",
		"keystore_password": "/spark/keystore_password",
		"key_password":      "/spark/key_password",
	}
	for k, v := range overrides {
		m[k] = v
	}
	return m
}

func TestParseDCOSValid(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		check    func(t *testing.T, s *Spec)
	}{
		{"minimal", minimal(nil), func(t *testing.T, s *Spec) {
			if s.Truststore != nil || s.CABundle != nil {
				t.Errorf("truststore %+v, CA bundle %+v; want none", s.Truststore, s.CABundle)
			}
			if s.Protocol != DefaultProtocol || s.StoreType != StoreTypeJKS {
				t.Errorf("protocol %q, store type %q; want defaults", s.Protocol, s.StoreType)
			}
			if len(s.Fields()) != 3 {
				t.Errorf("Fields() = %v, want 3", s.Fields())
			}
		}},
		{"empty strings and null count as not set", minimal(map[string]any{
			"truststore_secret": "", "truststore_password": "", "ca_bundle_secret": json.RawMessage("null"),
			"protocol": "", "store_type": "",
		}), func(t *testing.T, s *Spec) {
			if s.Truststore != nil || s.Protocol != DefaultProtocol || s.StoreType != StoreTypeJKS {
				t.Errorf("got %+v", s)
			}
		}},
		{"TLSv1.3 and PKCS12", minimal(map[string]any{"protocol": "TLSv1.3", "store_type": "PKCS12"}), func(t *testing.T, s *Spec) {
			if s.Protocol != "TLSv1.3" || s.StoreType != StoreTypePKCS12 {
				t.Errorf("protocol %q, store type %q", s.Protocol, s.StoreType)
			}
		}},
		{"backends, fields and versions", minimal(map[string]any{
			"keystore_secret":   "vault:secret/spark/tls#keystore@3",
			"keystore_password": "file:spark/keystore_password",
		}), func(t *testing.T, s *Spec) {
			want := Ref{Backend: "vault", Path: "secret/spark/tls", Field: "keystore", Version: "3"}
			if s.Keystore.Secret.Ref != want {
				t.Errorf("keystore ref = %+v, want %+v", s.Keystore.Secret.Ref, want)
			}
			if s.Keystore.Password.Ref.Backend != "file" {
				t.Errorf("keystore password ref = %+v", s.Keystore.Password.Ref)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseDCOS(tlsJSON(t, tt.settings))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}

	t.Run("other keys outside security.tls are ignored", func(t *testing.T) {
		doc := `{"service":{"name":"spark"},"security":{"kerberos":{"enabled":false},"tls":` +
			string(tlsJSON(t, minimal(nil))[len(`{"security":{"tls":`):])
		if _, err := ParseDCOS([]byte(doc)); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
	})
}

// fieldErrors returns the FieldErrors of err, failing when it is not *Errors.
func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v (%T) is not *Errors", err, err)
	}
	return errs.List
}

func TestParseDCOSRules(t *testing.T) {
	ts := map[string]any{
		"truststore_secret":   "/spark/truststore",
		"truststore_password": "/spark/truststore_password",
		"ca_bundle_secret":    "/spark/ca_bundle_truststore",
	}
	with := func(base map[string]any, o map[string]any) map[string]any {
		m := minimal(nil)
		for k, v := range base {
			m[k] = v
		}
		for k, v := range o {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name     string
		settings map[string]any
		field    string // the one field the error must name
		ref      string
		reason   string // part of the reason
	}{
		{"enabled false", minimal(map[string]any{"enabled": false}), "security.tls.enabled", "", "TLS is not enabled"},
		{"enabled missing", minimal(map[string]any{"enabled": nil}), "security.tls.enabled", "", "TLS is not enabled"},
		{"enabled not a boolean", minimal(map[string]any{"enabled": "true"}), "security.tls.enabled", "", "must be true or false, got string"},
		{"keystore_secret missing", minimal(map[string]any{"keystore_secret": nil}), "security.tls.keystore_secret", "", "required (the secret ref of the keystore)"},
		{"keystore_password missing", minimal(map[string]any{"keystore_password": nil}), "security.tls.keystore_password", "", "required (the secret ref of the keystore password)"},
		{"key_password empty", minimal(map[string]any{"key_password": ""}), "security.tls.key_password", "", "required (the secret ref of the private key password)"},
		{"truststore_password missing", with(ts, map[string]any{"truststore_password": nil}), "security.tls.truststore_password", "", "required when security.tls.truststore_secret is set"},
		{"ca_bundle_secret missing", with(ts, map[string]any{"ca_bundle_secret": nil}), "security.tls.ca_bundle_secret", "", "required when security.tls.truststore_secret is set"},
		{"truststore_password without truststore", minimal(map[string]any{"truststore_password": "/p"}), "security.tls.truststore_password", "/p", "set without security.tls.truststore_secret"},
		{"ca_bundle_secret without truststore", minimal(map[string]any{"ca_bundle_secret": "/ca"}), "security.tls.ca_bundle_secret", "/ca", "set without security.tls.truststore_secret"},
		{"protocol TLSv1.1", minimal(map[string]any{"protocol": "TLSv1.1"}), "security.tls.protocol", "", `protocol "TLSv1.1" is not accepted; use TLSv1.2 or TLSv1.3`},
		{"protocol lower case", minimal(map[string]any{"protocol": "tlsv1.2"}), "security.tls.protocol", "", "not accepted"},
		{"protocol not a string", minimal(map[string]any{"protocol": 1.2}), "security.tls.protocol", "", "must be a string"},
		{"store_type", minimal(map[string]any{"store_type": "jceks"}), "security.tls.store_type", "", `store type "jceks" is not supported`},
		{"unknown key", minimal(map[string]any{"keystore_base64": "x"}), "security.tls.keystore_base64", "", "unknown setting; known settings are enabled, keystore_secret"},
		{"unknown key in other case", minimal(map[string]any{"Store-Type": "jks"}), "security.tls.Store-Type", "", "did you mean security.tls.store_type?"},
		{"secret not a string", minimal(map[string]any{"keystore_secret": map[string]any{"path": "/x"}}), "security.tls.keystore_secret", "", "must be a string (a secret ref), got object"},
		{"bad ref", minimal(map[string]any{"keystore_password": "/spark/pw@"}), "security.tls.keystore_password", "/spark/pw@", `empty version after "@"`},
		{"ref with ..", minimal(map[string]any{"keystore_secret": "file:../../etc/shadow"}), "security.tls.keystore_secret", "file:../../etc/shadow", `".." segment`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseDCOS(tlsJSON(t, tt.settings))
			if err == nil {
				t.Fatalf("ParseDCOS = %+v, want an error naming %s", s, tt.field)
			}
			if s != nil {
				t.Errorf("ParseDCOS returned a Spec with its error")
			}
			list := fieldErrors(t, err)
			if len(list) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(list), err)
			}
			fe := list[0]
			if fe.Field != tt.field || fe.Ref != tt.ref || !strings.Contains(fe.Reason, tt.reason) {
				t.Errorf("got %#v\nwant field %q, ref %q, reason containing %q", fe, tt.field, tt.ref, tt.reason)
			}
			if !strings.HasPrefix(err.Error(), tt.field) {
				t.Errorf("message %q does not start with %s", err, tt.field)
			}
			var first *FieldError
			if !errors.As(err, &first) || first != fe {
				t.Errorf("errors.As(*FieldError) = %v", first)
			}
		})
	}
}

func TestParseDCOSReportsAllProblems(t *testing.T) {
	doc := `{"security":{"tls":{
		"enabled": true,
		"keystore_secret": "/spark/keystore",
		"key_password": "/spark/key_password@",
		"protocol": "SSLv3",
		"colour": "blue"
	}}}`
	_, err := ParseDCOS([]byte(doc))
	list := fieldErrors(t, err)
	want := []string{
		"security.tls.keystore_password",
		"security.tls.key_password",
		"security.tls.protocol",
		"security.tls.colour",
	}
	var got []string
	for _, fe := range list {
		got = append(got, fe.Field)
	}
	// key_password is reported where it is parsed, before the required checks.
	wantOrder := []string{want[1], want[0], want[2], want[3]}
	if !reflect.DeepEqual(got, wantOrder) {
		t.Fatalf("fields = %v, want %v\n%v", got, wantOrder, err)
	}
	wantMsg := `security.tls.key_password (/spark/key_password@): empty version after "@"
security.tls.keystore_password: required (the secret ref of the keystore password)
security.tls.protocol: protocol "SSLv3" is not accepted; use TLSv1.2 or TLSv1.3
security.tls.colour: unknown setting; known settings are enabled, keystore_secret, keystore_password, key_password, truststore_secret, truststore_password, ca_bundle_secret, protocol, store_type, keystore_issue, keystore_issue_ttl, passthrough`
	if err.Error() != wantMsg {
		t.Errorf("message:\n%s\nwant:\n%s", err, wantMsg)
	}
}

func TestParseDCOSThreeProblems(t *testing.T) {
	doc := tlsJSON(t, minimal(map[string]any{
		"keystore_secret":     nil,
		"truststore_password": "/spark/truststore_password",
		"protocol":            "TLSv1",
	}))
	list := fieldErrors(t, func() error { _, err := ParseDCOS(doc); return err }())
	if len(list) != 3 {
		t.Fatalf("got %d problems, want 3: %v", len(list), list)
	}
	for i, f := range []string{"security.tls.keystore_secret", "security.tls.truststore_password", "security.tls.protocol"} {
		if list[i].Field != f {
			t.Errorf("problem %d names %s, want %s", i, list[i].Field, f)
		}
	}
}

func TestParseDCOSBadDocuments(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		field string // "" when the error is not *Errors
		want  string
	}{
		{"nil", nil, "", "empty security.tls JSON"},
		{"empty", []byte{}, "", "empty security.tls JSON"},
		{"spaces", []byte(" \n\t"), "", "empty security.tls JSON"},
		{"garbage", []byte("\x00\xff garbage"), "", "malformed security.tls JSON at line 1, column 1"},
		{"truncated", []byte(seed000[:60]), "", "malformed security.tls JSON at line 5, column 7: unexpected end"},
		{"bad token on line 3", []byte("{\n \"security\": {\n  \"tls\": nope}}"), "", "line 3, column 11: invalid character 'o'"},
		{"trailing data", []byte(`{} {}`), "", "malformed security.tls JSON at line 1, column 4"},
		{"array", []byte(`[1]`), "", "must be an object"},
		{"null", []byte(`null`), "", "must be an object"},
		{"string", []byte(`"/spark/keystore"`), "", "got string"},
		{"no security", []byte(`{}`), "security.tls.enabled", "TLS is not enabled: there is no security object"},
		{"security null", []byte(`{"security":null}`), "security.tls.enabled", "TLS is not enabled"},
		{"no tls", []byte(`{"security":{}}`), "security.tls.enabled", "TLS is not enabled: there is no security.tls object"},
		{"security not an object", []byte(`{"security":true}`), "security", "must be a JSON object, got boolean"},
		{"tls not an object", []byte(`{"security":{"tls":[]}}`), "security.tls", "must be a JSON object, got array"},
		{"empty tls", []byte(`{"security":{"tls":{}}}`), "security.tls.enabled", "security.tls.enabled is missing"},
		{"duplicate key", []byte(`{"security":{"tls":{"enabled":true,"keystore_secret":"/a","keystore_secret":"/b","keystore_password":"/p","key_password":"/k"}}}`),
			"security.tls.keystore_secret", "set more than once"},
		{"duplicate tls", []byte(`{"security":{"tls":{},"tls":{}}}`), "security.tls", "set more than once"},
		{"odd unknown key", []byte(`{"security":{"tls":{"enabled":true,"a\nb":1,"keystore_secret":"/a","keystore_password":"/p","key_password":"/k"}}}`),
			`security.tls."a\nb"`, "unknown setting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseDCOS(tt.in)
			if err == nil {
				t.Fatalf("ParseDCOS = %+v, want error", s)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			var errs *Errors
			isList := errors.As(err, &errs)
			if tt.field == "" {
				if isList {
					t.Errorf("got *Errors %v, want a document error", err)
				}
				return
			}
			if !isList || errs.List[0].Field != tt.field {
				t.Errorf("error %v, want *Errors naming %s first", err, tt.field)
			}
		})
	}

	t.Run("syntax error is wrapped", func(t *testing.T) {
		_, err := ParseDCOS([]byte(`{"security":`))
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("error %v does not wrap *json.SyntaxError", err)
		}
	})
}

func TestParseDCOSErrorsHoldNoValues(t *testing.T) {
	// A password written in place of its ref, in a setting that does not take
	// a ref or with the wrong type, must not be echoed back.
	const canary = "CANARY-s3cr3t"
	doc := `{"security":{"tls":{"enabled":true,"keystore_secret":"/ks","keystore_password":"/p","key_password":"/k",
		"keystore_pass":"` + canary + `","key_password_value":["` + canary + `"]}}}`
	_, err := ParseDCOS([]byte(doc))
	if err == nil || strings.Contains(err.Error(), canary) {
		t.Fatalf("error %v", err)
	}
	doc = `{"security":{"tls":{"enabled":true,"keystore_secret":"/ks","keystore_password":{"v":"` + canary + `"},"key_password":"/k"}}}`
	_, err = ParseDCOS([]byte(doc))
	if err == nil || strings.Contains(err.Error(), canary) {
		t.Fatalf("error %v", err)
	}
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		fe   FieldError
		want string
	}{
		{FieldError{Field: "security.tls.keystore_secret", Ref: "/spark/keystore", Reason: "keystore was tampered with, or password was incorrect"},
			"security.tls.keystore_secret (/spark/keystore): keystore was tampered with, or password was incorrect"},
		{FieldError{Field: "security.tls.keystore_password", Reason: "required"}, "security.tls.keystore_password: required"},
		{FieldError{Field: "f", Ref: "a\nb", Reason: "r"}, `f ("a\nb"): r`},
		{FieldError{Field: "f", Ref: "a b", Reason: "r"}, `f ("a b"): r`},
		{FieldError{Reason: "r"}, "r"},
		{FieldError{Ref: "/x", Reason: "r"}, "(/x): r"},
	}
	for _, tt := range tests {
		if got := tt.fe.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.fe, got, tt.want)
		}
	}
	var errs Errors
	if errs.Error() != "" || len(errs.Unwrap()) != 0 {
		t.Errorf("empty Errors: %q", errs.Error())
	}
}

func FuzzParseDCOS(f *testing.F) {
	f.Add([]byte(seed000))
	f.Add([]byte(`{"security":{"tls":{"enabled":true,"keystore_secret":"vault:s/x#k@3","keystore_password":"/p","key_password":"/k","store_type":"pkcs12"}}}`))
	f.Add([]byte(`{"security":{"tls":{"enabled":false,"protocol":1,"x":null,"x":2}}}`))
	f.Add([]byte(`{"security":{"tls":{"truststore_password":"/p@"}},"security":null}`))
	f.Add([]byte(`{"security":[]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"a":`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseDCOS(data)
		if err != nil {
			if s != nil {
				t.Fatalf("Spec and error both returned")
			}
			var errs *Errors
			if errors.As(err, &errs) && len(errs.List) == 0 {
				t.Fatalf("empty *Errors")
			}
			return
		}
		if s.Protocol == "" || s.StoreType == "" || s.Keystore.KeyPassword == nil {
			t.Fatalf("incomplete Spec %+v", s)
		}
		if (s.Truststore == nil) != (s.CABundle == nil) {
			t.Fatalf("truststore %v without CA bundle %v", s.Truststore, s.CABundle)
		}
		for _, fl := range s.Fields() {
			if !strings.HasPrefix(fl.Name, "security.tls.") {
				t.Fatalf("field name %q", fl.Name)
			}
			back, err := ParseRef(fl.Ref.String())
			if err != nil || back != fl.Ref {
				t.Fatalf("%s: ref %+v does not round-trip: %+v, %v", fl.Name, fl.Ref, back, err)
			}
		}
	})
}

func TestParseDCOSKeystoreIssue(t *testing.T) {
	s, err := ParseDCOS([]byte(`{"security": {"tls": {"enabled": true,
		"keystore_issue": "vault:pki/issue/spark-node", "keystore_issue_ttl": "72h"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	is := s.Keystore.Issue
	if is == nil || is.Field.Name != "security.tls.keystore_issue" || is.Field.Ref.Backend != "vault" || is.Field.Ref.Path != "pki/issue/spark-node" || is.TTL != 72*time.Hour {
		t.Fatalf("Issue = %+v", is)
	}
	if s.Keystore.Secret.IsSet() || s.Keystore.Password.IsSet() || s.Keystore.KeyPassword != nil || len(s.Fields()) != 0 {
		t.Fatalf("an issued keystore reads no secrets unless asked: %+v", s.Keystore)
	}
	for doc, want := range map[string]string{
		`"keystore_issue": "dcos:ca", "keystore_secret": "/spark/keystore"`:                                    "not both",
		`"keystore_issue": "vault:pki/issue/r#f"`:                                                              "without #field",
		`"keystore_issue": "dcos:ca", "keystore_issue_ttl": "soon"`:                                            "positive duration",
		`"keystore_issue_ttl": "1h", "keystore_secret": "/k", "keystore_password": "/p", "key_password": "/q"`: "only goes with",
	} {
		_, err := ParseDCOS([]byte(`{"security": {"tls": {"enabled": true, ` + doc + `}}}`))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", doc, err, want)
		}
	}
}
