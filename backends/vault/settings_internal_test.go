package vault

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/keyship/keyship/plugin"
)

func TestParseSettingsRefusesNamingTheSetting(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("t"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		config map[string]string
		says   string
	}{
		{map[string]string{"colour": "blue", "auth.token": "x"}, `unknown setting "colour"`},
		{map[string]string{"address": "127.0.0.1:8200", "auth.token": "x"}, "address"},
		{map[string]string{"auth.token": "x", "timeout": "soon"}, "timeout"},
		{map[string]string{"auth.token": "x", "timeout": "-1s"}, "timeout"},
		{map[string]string{"auth.token": "x", "max_retries": "99"}, "max_retries"},
		{map[string]string{"auth.token": "x", "tls_skip_verify": "maybe"}, "tls_skip_verify"},
		{map[string]string{"auth.token": "x", "client_cert": "c.pem"}, "client_cert and client_key"},
		{map[string]string{"auth.token": "x", "decode": "hex"}, "decode"},
		{map[string]string{"auth.token": "x", "kv_mounts": "secret"}, "kv_mounts"},
		{map[string]string{"auth.token": "x", "kv_mounts": "=2"}, "kv_mounts"},
		{map[string]string{"auth.token": "x", "default_field": ":base64"}, "default_field"},
		{map[string]string{}, "auth.method token needs"},
		{map[string]string{"auth.token": "x", "auth.token_file": tokenFile}, "alternatives"},
		{map[string]string{"auth.token_file": filepath.Join(dir, "none")}, "auth.token_file"},
		{map[string]string{"auth.token": "x", "auth.role": "r"}, `"auth.role" does not apply to auth.method token`},
		{map[string]string{"auth.method": "approle"}, "auth.role_id"},
		{map[string]string{"auth.method": "approle", "auth.role_id": "r", "auth.secret_id_wrapped": "true"}, "auth.secret_id_file"},
		{map[string]string{"auth.method": "approle", "auth.role_id": "r", "auth.secret_id_file": filepath.Join(dir, "none")}, "auth.secret_id_file"},
		{map[string]string{"auth.method": "jwt", "auth.role": "r"}, "auth.jwt_file"},
		{map[string]string{"auth.method": "jwt", "auth.jwt_file": tokenFile}, "auth.role"},
		{map[string]string{"auth.method": "kubernetes", "auth.role": "r", "auth.jwt_file": filepath.Join(dir, "none")}, "auth.jwt_file"},
		{map[string]string{"auth.method": "ldap"}, "auth.method"},
	}
	for _, c := range cases {
		_, err := parseSettings(c.config)
		if !errors.Is(err, plugin.ErrInvalidConfig) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%v: error %v, want ErrInvalidConfig saying %q", c.config, err, c.says)
		}
	}
	s, err := parseSettings(map[string]string{
		"auth.method": "kubernetes", "auth.role": "r", "auth.jwt_file": tokenFile, "kv_mounts": " secret/ = 2 , legacy=1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.auth.mount != "kubernetes" || s.kvMounts["secret/"] != 2 || s.kvMounts["legacy/"] != 1 || s.decode != DecodeNone {
		t.Errorf("settings %+v", s)
	}
	t.Setenv("VAULT_TOKEN", "from-env")
	if s, err := parseSettings(map[string]string{}); err != nil || s.auth.token != "from-env" {
		t.Errorf("VAULT_TOKEN not used: %v", err)
	}
}

func TestSplitField(t *testing.T) {
	cases := []struct{ field, def, name, decode string }{
		{"keystore", DecodeNone, "keystore", DecodeNone},
		{"keystore", DecodeBase64, "keystore", DecodeBase64},
		{"keystore:base64", DecodeNone, "keystore", DecodeBase64},
		{"keystore:raw", DecodeBase64, "keystore", DecodeNone},
		{"a:b", DecodeNone, "a:b", DecodeNone},
		{"x:base64:raw", DecodeNone, "x:base64", DecodeNone},
		{"x:raw:base64", DecodeNone, "x:raw", DecodeBase64},
		{"", DecodeBase64, "", DecodeBase64},
	}
	for _, c := range cases {
		name, decode, err := splitField(c.field, c.def)
		if err != nil || name != c.name || decode != c.decode {
			t.Errorf("splitField(%q, %q) = %q, %q, %v; want %q, %q", c.field, c.def, name, decode, err, c.name, c.decode)
		}
	}
	for _, bad := range []string{":base64", ":raw"} {
		if _, _, err := splitField(bad, DecodeNone); err == nil {
			t.Errorf("splitField(%q) accepted a suffix without a name", bad)
		}
	}
}

func TestFieldBytes(t *testing.T) {
	bin := []byte{0, 1, 2, 0xFE, 0xFF}
	cases := []struct {
		v      any
		decode string
		want   string
	}{
		{"text", DecodeNone, "text"},
		{base64.StdEncoding.EncodeToString(bin), DecodeBase64, string(bin)},
		{" AAEC\n/v8=\n", DecodeBase64, string(bin)},
		{json.Number("42"), DecodeNone, "42"},
		{true, DecodeNone, "true"},
		{nil, DecodeNone, "null"},
		{map[string]any{"k": "v"}, DecodeNone, `{"k":"v"}`},
	}
	for _, c := range cases {
		got, err := fieldBytes(c.v, c.decode)
		if err != nil || string(got) != c.want {
			t.Errorf("fieldBytes(%#v, %s) = %q, %v; want %q", c.v, c.decode, got, err, c.want)
		}
	}
	for _, v := range []any{"secret-value!", json.Number("42"), "AAE"} {
		_, err := fieldBytes(v, DecodeBase64)
		if err == nil {
			t.Errorf("fieldBytes(%#v, base64) decoded", v)
		} else if strings.Contains(err.Error(), "secret-value") {
			t.Errorf("error quotes the value: %v", err)
		}
	}
}

func TestIssuePath(t *testing.T) {
	for p, ok := range map[string]bool{
		"pki/issue/spark-node":        true,
		"/pki/issue/spark-node/":      true,
		"team/pki-int/issue/r":        true,
		"pki/issue/":                  false,
		"issue/r":                     false,
		"pki/sign/r":                  false,
		"pki/issue/a/b":               false,
		"pki/../issue/r":              false,
		"pki//issue/r":                false,
		"pki/issue/spark-node?x=1#fr": true, // the role name is Vault's to refuse
	} {
		_, err := issuePath(p)
		if (err == nil) != ok {
			t.Errorf("issuePath(%q): %v, want ok=%v", p, err, ok)
		}
		if err != nil && !errors.Is(err, plugin.ErrInvalidConfig) {
			t.Errorf("issuePath(%q): %v is not ErrInvalidConfig", p, err)
		}
	}
}

func TestIssuedFromGarbage(t *testing.T) {
	for _, data := range []map[string]any{
		nil,
		{"certificate": "%%%"},
		{"certificate": base64.StdEncoding.EncodeToString([]byte("not a cert"))},
	} {
		if _, err := issuedFrom(data); err == nil {
			t.Errorf("issuedFrom(%v) accepted garbage", data)
		}
	}
}

func TestRedactor(t *testing.T) {
	r := &redactor{secrets: func() []string { return []string{"s3cr3t-token", "", "abc"} }}
	if got := r.redact("denied for s3cr3t-token and abc"); got != "denied for [redacted] and abc" {
		t.Errorf("redact = %q (credentials under 4 bytes are left: they would redact ordinary words)", got)
	}
}

func FuzzSplitField(f *testing.F) {
	for _, s := range []string{"keystore", "keystore:base64", "x:base64:raw", ":raw", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, field string) {
		name, decode, err := splitField(field, DecodeNone)
		if err != nil {
			return
		}
		if decode != DecodeNone && decode != DecodeBase64 {
			t.Fatalf("decoder %q", decode)
		}
		if !strings.HasPrefix(field, name) {
			t.Fatalf("name %q is not a prefix of %q", name, field)
		}
	})
}

func FuzzFieldBytesNeverQuotesValue(f *testing.F) {
	f.Add("AAEC", true)
	f.Add("secret-value-not-base64!", true)
	f.Add("plain", false)
	f.Fuzz(func(t *testing.T, v string, b64 bool) {
		decode := DecodeNone
		if b64 {
			decode = DecodeBase64
		}
		out, err := fieldBytes(v, decode)
		if err == nil {
			if !b64 && string(out) != v {
				t.Fatal("decode none changed the value")
			}
			return
		}
		if len(v) >= 8 && strings.Contains(err.Error(), v) {
			t.Fatalf("error quotes the value: %v", err)
		}
	})
}

func FuzzParseKVMounts(f *testing.F) {
	f.Add("secret=2,legacy=1")
	f.Add("=,=")
	f.Fuzz(func(t *testing.T, v string) {
		m, err := parseKVMounts(v)
		if err != nil {
			return
		}
		for k, ver := range m {
			if !strings.HasSuffix(k, "/") || k == "/" || (ver != 1 && ver != 2) {
				t.Fatalf("parseKVMounts(%q) gave %q=%d", v, k, ver)
			}
		}
	})
}

// TestClientRetriesAreBounded: the api client's own retries multiply the
// host's attempts, so both the setting and VAULT_MAX_RETRIES are capped.
func TestClientRetriesAreBounded(t *testing.T) {
	cases := []struct {
		env, setting string
		want         int
		refused      string
	}{
		{"", "", 0, ""},
		{"", "2", 2, ""},
		{"1", "", 1, ""},
		{"10", "0", 0, ""}, // the setting wins over the environment
		{"10", "", 0, "VAULT_MAX_RETRIES"},
		{"", "3", 0, "max_retries"},
	}
	for _, c := range cases {
		t.Setenv("VAULT_MAX_RETRIES", c.env)
		cfg := map[string]string{"auth.token": "x"}
		if c.setting != "" {
			cfg["max_retries"] = c.setting
		}
		s, err := parseSettings(cfg)
		var got int
		if err == nil {
			var client *api.Client
			if client, _, err = newClient(s); err == nil {
				got = client.MaxRetries()
			}
		}
		if c.refused != "" {
			if !errors.Is(err, plugin.ErrInvalidConfig) || !strings.Contains(err.Error(), c.refused) {
				t.Errorf("env %q setting %q: error %v (client retries %d), want ErrInvalidConfig naming %s", c.env, c.setting, err, got, c.refused)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("env %q setting %q: client retries %d, error %v; want %d", c.env, c.setting, got, err, c.want)
		}
	}
}
