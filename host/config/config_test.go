package config

import (
	"strings"
	"testing"
)

func TestParseFlattensNestedSettings(t *testing.T) {
	c, err := Parse([]byte(`
default_backend: vault
backends:
  vault:
    plugin: keyship-backend-vault
    config:
      address: https://127.0.0.1:8200
      tls_skip_verify: false
      timeout: 5
      auth:
        method: approle
        approle: {role_id: r1, mount: approle}
  file:
    config:
      root: ./secrets
`))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Backends["vault"].Config
	want := map[string]string{"address": "https://127.0.0.1:8200", "tls_skip_verify": "false", "timeout": "5",
		"auth.method": "approle", "auth.approle.role_id": "r1", "auth.approle.mount": "approle"}
	if len(got) != len(want) {
		t.Fatalf("settings = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if c.PluginPath("file") != "" || c.PluginPath("vault") != "keyship-backend-vault" {
		t.Errorf("plugin paths: %q %q", c.PluginPath("file"), c.PluginPath("vault"))
	}
}

func TestParseErrors(t *testing.T) {
	for doc, want := range map[string]string{
		"backends: {x: {config: {a: [1, 2]}}}":                     "not a list",
		"backends: {x: {config: {a.b: 1, a: {b: 2}}}}":             "given twice",
		"default_backend: vault\nbackends: {file: {}}":             "default_backend",
		"backends: {File: {}}":                                     "backend names",
		"backends: {x: {sha256: abc, plugin: p}}":                  "64 hex digits",
		"backends: {x: {sha256: " + strings.Repeat("a", 64) + "}}": "needs a plugin binary",
		"colour: blue": "colour",
		"backends: {x: {plugin: p, config: {a: 1}, extra: true}}": "extra",
	} {
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", doc, err, want)
		}
	}
	if c, err := Parse(nil); err != nil || len(c.Backends) != 0 {
		t.Errorf("empty config: %v %v", c, err)
	}
}

func TestParseEnvPassThrough(t *testing.T) {
	c, err := Parse([]byte("backends:\n  vault:\n    plugin: keyship-backend-vault\n    env: [VAULT_ADDR, \"VAULT_*\", DCOS_SA]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Backends["vault"].Env; len(got) != 3 || got[1] != "VAULT_*" {
		t.Errorf("Env = %v", got)
	}
	for _, bad := range []string{"\"VAULT ADDR\"", "\"*\"", "\"A*B\"", "\"1X\""} {
		_, err := Parse([]byte("backends:\n  vault:\n    env: [" + bad + "]\n"))
		if err == nil || !strings.Contains(err.Error(), "backends.vault.env[0]") {
			t.Errorf("env %s: error %v, want one naming backends.vault.env[0]", bad, err)
		}
	}
}
