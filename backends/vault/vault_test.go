package vault_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"

	"github.com/keyship/keyship/backends/vault"
	"github.com/keyship/keyship/backends/vault/vaulttest"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
	"github.com/keyship/keyship/plugin/plugintest"
)

// pluginBin is the real keyship-backend-vault, built by TestMain.
var pluginBin string

// shared is one dev server for the tests that do not seal it; each test
// works under its own paths and mounts.
var shared struct {
	once sync.Once
	srv  *vaulttest.Server
	err  error
}

func TestMain(m *testing.M) {
	dir, cleanup := plugintest.Build("github.com/keyship/keyship/cmd/keyship-backend-vault")
	pluginBin = filepath.Join(dir, "keyship-backend-vault")
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Close()
	}
	cleanup()
	os.Exit(code)
}

// sharedServer returns the shared dev server (KV v2 at secret/, KV v1 at
// kv1/), starting it on first use; it skips t when there is no vault binary.
func sharedServer(t *testing.T) *vaulttest.Server {
	t.Helper()
	bin := vaulttest.Binary(t)
	shared.once.Do(func() {
		shared.srv, shared.err = vaulttest.New(bin, vaulttest.Options{})
		if shared.err == nil {
			c, err := shared.srv.NewClient()
			if err == nil {
				err = c.Sys().Mount("kv1", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}})
			}
			shared.err = err
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// secretFile writes content to a fresh 0600 file and returns its path.
func secretFile(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cred")
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// captureLogger logs everything, down to trace, into a buffer.
func captureLogger() (hclog.Logger, *plugintest.LogBuffer) {
	buf := &plugintest.LogBuffer{}
	return hclog.New(&hclog.LoggerOptions{Name: "vault", Output: buf, Level: hclog.Trace}), buf
}

// rootConfig is a backend configuration using s's root token from a file.
func rootConfig(t testing.TB, s *vaulttest.Server) map[string]string {
	cfg := map[string]string{"address": s.Addr, "auth.token_file": secretFile(t, s.RootToken)}
	if s.CACert != "" {
		cfg["ca_file"] = s.CACert
	}
	return cfg
}

// configured returns a configured in-process backend, closed when t ends.
func configured(t testing.TB, cfg map[string]string) *vault.Backend {
	t.Helper()
	b := vault.NewWithLogger(hclog.NewNullLogger())
	if err := b.Configure(context.Background(), cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// get reads one ref; the batch itself must not fail.
func get(t testing.TB, b plugin.Backend, ref plugin.Ref) plugin.Result {
	t.Helper()
	res, err := b.Get(context.Background(), []plugin.Ref{ref})
	if err != nil {
		t.Fatalf("Get %v: batch error %v", ref, err)
	}
	return res[0]
}

func putKV2(t testing.TB, c *api.Client, mount, path string, data map[string]any) {
	t.Helper()
	if _, err := c.KVv2(mount).Put(context.Background(), path, data); err != nil {
		t.Fatalf("put %s/%s: %v", mount, path, err)
	}
}

func putKV1(t testing.TB, c *api.Client, mount, path string, data map[string]any) {
	t.Helper()
	if err := c.KVv1(mount).Put(context.Background(), path, data); err != nil {
		t.Fatalf("put %s/%s: %v", mount, path, err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func badConfigs(addr string) []map[string]string {
	return []map[string]string{
		{"colour": "blue"},
		{"address": "ftp://127.0.0.1:1", "auth.token": "x"},
		{"address": addr, "auth.method": "magic"},
		{"address": addr, "auth.method": "approle"},
		{"address": addr, "auth.token": "x", "decode": "rot13"},
		{"address": addr, "auth.token": "x", "kv_mounts": "secret=3"},
		{"address": addr, "auth.method": "jwt", "auth.role": "r"},
		{"address": addr, "auth.token_file": "/nonexistent/token"},
	}
}

func TestConformanceKV2InProcess(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	plugintest.Run(t, plugintest.Config{
		New:        func() plugin.Backend { return vault.NewWithLogger(hclog.NewNullLogger()) },
		Config:     rootConfig(t, s),
		BadConfigs: badConfigs(s.Addr),
		Ref: func(name string) plugin.Ref {
			return plugin.Ref{Path: "secret/kit-inproc/" + name, Field: "value:base64"}
		},
		Put: func(t testing.TB, ref plugin.Ref, data []byte) {
			putKV2(t, root, "secret", strings.TrimPrefix(ref.Path, "secret/"), map[string]any{"value": b64(data)})
		},
		Binary: true,
	})
}

func TestConformanceKV1Subprocess(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	cfg := rootConfig(t, s)
	cfg["decode"] = vault.DecodeBase64
	plugintest.Run(t, plugintest.Config{
		Connect: func(t testing.TB) plugin.Backend {
			sub, err := launch.Start(context.Background(), "vault", pluginBin, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Close() })
			return sub
		},
		Config:     cfg,
		BadConfigs: badConfigs(s.Addr),
		Ref:        func(name string) plugin.Ref { return plugin.Ref{Path: "kv1/kit-sub/" + name, Field: "value"} },
		Put: func(t testing.TB, ref plugin.Ref, data []byte) {
			putKV1(t, root, "kv1", strings.TrimPrefix(ref.Path, "kv1/"), map[string]any{"value": b64(data)})
		},
		Binary: true,
	})
}

// allBytes is every byte value, twice, and bytes a text path would mangle.
func allBytes() []byte {
	out := []byte{0x00, 0xFE, 0xFF, '\r', '\n'}
	for i := range 512 {
		out = append(out, byte(i))
	}
	return out
}

func TestRoundTripsAreByteExact(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	bin := allBytes()
	pem := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	wrapped := base64.StdEncoding.EncodeToString(bin)
	var lines []string // `base64` wraps at 76 columns; decoding must accept it
	for len(wrapped) > 76 {
		lines, wrapped = append(lines, wrapped[:76]), wrapped[76:]
	}
	lines = append(lines, wrapped)
	fields := map[string]any{
		"keystore":      b64(bin),
		"wrapped":       strings.Join(lines, "\n") + "\n",
		"cert":          pem,
		"password":      "changeit",
		"odd:base64":    "literal-field-name",
		"json-number":   12345,
		"empty":         "",
		"not-base64":    "%%%not base64%%%",
		"nested-object": map[string]any{"a": "b"},
	}
	putKV2(t, root, "secret", "roundtrip/tls", fields)
	putKV1(t, root, "kv1", "roundtrip/tls", fields)
	for _, mount := range []string{"secret", "kv1"} {
		b := configured(t, rootConfig(t, s))
		path := mount + "/roundtrip/tls"
		cases := []struct {
			field string
			want  []byte
		}{
			{"keystore:base64", bin},
			{"wrapped:base64", bin},
			{"keystore", []byte(b64(bin))}, // no suffix, decode none: the text as stored
			{"cert", []byte(pem)},
			{"cert:raw", []byte(pem)},
			{"password", []byte("changeit")},
			{"odd:base64:raw", []byte("literal-field-name")},
			{"json-number", []byte("12345")},
			{"empty", []byte{}},
			{"nested-object", []byte(`{"a":"b"}`)},
		}
		for _, c := range cases {
			r := get(t, b, plugin.Ref{Path: path, Field: c.field})
			if r.Err != nil {
				t.Errorf("%s#%s: %v", path, c.field, r.Err)
				continue
			}
			if !bytes.Equal(r.Secret.Data, c.want) {
				t.Errorf("%s#%s: %d bytes back, not byte-exact with the %d written", path, c.field, len(r.Secret.Data), len(c.want))
			}
		}
		r := get(t, b, plugin.Ref{Path: path, Field: "not-base64:base64"})
		if !errors.Is(r.Err, plugin.ErrInvalidConfig) || !strings.Contains(r.Err.Error(), "not standard base64") || strings.Contains(r.Err.Error(), "not base64%") {
			t.Errorf("%s#not-base64:base64: error %v, want ErrInvalidConfig naming base64 without quoting the value", path, r.Err)
		}
		// decode: base64 as a backend setting.
		cfg := rootConfig(t, s)
		cfg["decode"] = "base64"
		bd := configured(t, cfg)
		if r := get(t, bd, plugin.Ref{Path: path, Field: "keystore"}); r.Err != nil || !bytes.Equal(r.Secret.Data, bin) {
			t.Errorf("%s#keystore with decode=base64: %v, byte-exact %v", path, r.Err, bytes.Equal(r.Secret.Data, bin))
		}
		if r := get(t, bd, plugin.Ref{Path: path, Field: "password:raw"}); r.Err != nil || string(r.Secret.Data) != "changeit" {
			t.Errorf("%s#password:raw with decode=base64: %v", path, r.Err)
		}
		// default_field
		cfg = rootConfig(t, s)
		cfg["default_field"] = "keystore:base64"
		if r := get(t, configured(t, cfg), plugin.Ref{Path: "/" + path}); r.Err != nil || !bytes.Equal(r.Secret.Data, bin) {
			t.Errorf("/%s with default_field: %v", path, r.Err)
		}
		r = get(t, b, plugin.Ref{Path: path})
		if !errors.Is(r.Err, plugin.ErrInvalidConfig) || !strings.Contains(r.Err.Error(), `"keystore"`) {
			t.Errorf("%s without a field or default_field: %v, want ErrInvalidConfig listing the fields", path, r.Err)
		}
	}
}

func TestBatchOfFieldsReadsTheSecretOnce(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	putKV2(t, s.Client(t), "secret", "batch/tls", map[string]any{"a": "1", "b": "2"})
	b := configured(t, rootConfig(t, s))
	res, err := b.Get(context.Background(), []plugin.Ref{
		{Path: "secret/batch/tls", Field: "a"}, {Path: "secret/batch/tls", Field: "b"}, {Path: "secret/batch/tls", Field: "c"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(res[0].Secret.Data) != "1" || string(res[1].Secret.Data) != "2" || !errors.Is(res[2].Err, plugin.ErrNotFound) {
		t.Errorf("results: %q %q %v", res[0].Secret.Data, res[1].Secret.Data, res[2].Err)
	}
	if res[0].Secret.Version != res[1].Secret.Version {
		t.Errorf("two fields of one KV v2 version have versions %q and %q", res[0].Secret.Version, res[1].Secret.Version)
	}
}

func TestKV2Versions(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	for _, v := range []string{"one", "two", "three"} {
		putKV2(t, root, "secret", "versions/tls", map[string]any{"password": v})
	}
	b := configured(t, rootConfig(t, s))
	for i, want := range []string{"one", "two", "three"} {
		n := string(rune('1' + i))
		r := get(t, b, plugin.Ref{Path: "secret/versions/tls", Field: "password", Version: n})
		if r.Err != nil || string(r.Secret.Data) != want {
			t.Errorf("@%s: %q, %v; want %q", n, r.Secret.Data, r.Err, want)
		}
		if r.Secret.Version != "secret/versions/tls@"+n || r.Secret.Metadata["version"] != n || r.Secret.Metadata["kv_version"] != "2" {
			t.Errorf("@%s: Version %q Metadata %v", n, r.Secret.Version, r.Secret.Metadata)
		}
	}
	latest := get(t, b, plugin.Ref{Path: "secret/versions/tls", Field: "password"})
	if latest.Err != nil || string(latest.Secret.Data) != "three" || latest.Secret.Version != "secret/versions/tls@3" {
		t.Errorf("latest: %q %q %v", latest.Secret.Data, latest.Secret.Version, latest.Err)
	}
	for _, bad := range []string{"0", "-1", "v2", "1.5"} {
		r := get(t, b, plugin.Ref{Path: "secret/versions/tls", Field: "password", Version: bad})
		if !errors.Is(r.Err, plugin.ErrInvalidConfig) {
			t.Errorf("@%s: %v, want ErrInvalidConfig", bad, r.Err)
		}
	}
	// KV v1 has no versions: @N is refused; its Version is a keyed HMAC
	// that follows the content and does not reveal it.
	putKV1(t, root, "kv1", "versions/tls", map[string]any{"password": "hunter2-v1"})
	r := get(t, b, plugin.Ref{Path: "kv1/versions/tls", Field: "password", Version: "1"})
	if !errors.Is(r.Err, plugin.ErrInvalidConfig) || !strings.Contains(r.Err.Error(), "keeps no versions") {
		t.Errorf("KV v1 @1: %v", r.Err)
	}
	v1 := get(t, b, plugin.Ref{Path: "kv1/versions/tls", Field: "password"})
	if !strings.HasPrefix(v1.Secret.Version, "h1:") || strings.Contains(v1.Secret.Version, "hunter2") {
		t.Errorf("KV v1 Version %q", v1.Secret.Version)
	}
	other := configured(t, rootConfig(t, s)) // another random key: another HMAC
	if v := get(t, other, plugin.Ref{Path: "kv1/versions/tls", Field: "password"}).Secret.Version; v == v1.Secret.Version {
		t.Error("two backends with random version keys gave the same KV v1 version: not keyed")
	}
	cfg := rootConfig(t, s)
	cfg["version_key_file"] = secretFile(t, "0123456789abcdef0123")
	k1 := get(t, configured(t, cfg), plugin.Ref{Path: "kv1/versions/tls", Field: "password"}).Secret.Version
	k2 := get(t, configured(t, cfg), plugin.Ref{Path: "kv1/versions/tls", Field: "password"}).Secret.Version
	if k1 != k2 || k1 == "" {
		t.Errorf("one version_key_file, two backends: versions %q and %q", k1, k2)
	}
}

func TestNotFoundSaysWhich(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	putKV2(t, root, "secret", "gone/tls", map[string]any{"password": "v1"})
	putKV2(t, root, "secret", "gone/tls", map[string]any{"password": "v2"})
	if err := root.KVv2("secret").Delete(context.Background(), "gone/tls"); err != nil { // soft-deletes version 2
		t.Fatal(err)
	}
	putKV2(t, root, "secret", "destroyed/tls", map[string]any{"password": "x"})
	if err := root.KVv2("secret").Destroy(context.Background(), "destroyed/tls", []int{1}); err != nil {
		t.Fatal(err)
	}
	putKV2(t, root, "secret", "present/tls", map[string]any{"keystore": "x", "password": "y"})
	b := configured(t, rootConfig(t, s))
	cases := []struct {
		ref  plugin.Ref
		want []string
	}{
		{plugin.Ref{Path: "secret/absent/tls", Field: "keystore"}, []string{`no secret at "secret/absent/tls"`, "KV v2"}},
		{plugin.Ref{Path: "kv1/absent/tls", Field: "keystore"}, []string{`no secret at "kv1/absent/tls"`, "KV v1"}},
		{plugin.Ref{Path: "secret/present/tls", Field: "truststore"}, []string{`has no field "truststore"`, `"keystore", "password"`}},
		{plugin.Ref{Path: "secret/gone/tls", Field: "password"}, []string{"version 2", "was deleted at", "soft delete", "undelete"}},
		{plugin.Ref{Path: "secret/destroyed/tls", Field: "password"}, []string{"version 1", "was destroyed"}},
		{plugin.Ref{Path: "secret/present/tls", Field: "password", Version: "9"}, []string{"no version 9"}},
		{plugin.Ref{Path: "nomount/tls", Field: "password"}, []string{"no secrets engine is mounted"}},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		r := get(t, b, c.ref)
		if !errors.Is(r.Err, plugin.ErrNotFound) {
			t.Errorf("%v: error %v, want ErrNotFound", c.ref, r.Err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(r.Err.Error(), w) {
				t.Errorf("%v: error %q does not say %q", c.ref, r.Err, w)
			}
		}
		if !strings.Contains(r.Err.Error(), c.ref.String()) {
			t.Errorf("%v: error %q does not name the ref", c.ref, r.Err)
		}
		seen[r.Err.Error()] = true
	}
	if len(seen) != len(cases) {
		t.Errorf("%d distinct messages for %d cases", len(seen), len(cases))
	}
	// The older version is still readable.
	if r := get(t, b, plugin.Ref{Path: "secret/gone/tls", Field: "password", Version: "1"}); r.Err != nil || string(r.Secret.Data) != "v1" {
		t.Errorf("@1 of a secret whose latest version is deleted: %v", r.Err)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	putKV2(t, root, "secret", "listing/spark/tls", map[string]any{"a": "1"})
	putKV2(t, root, "secret", "listing/flink", map[string]any{"a": "1"})
	putKV1(t, root, "kv1", "listing/spark/tls", map[string]any{"a": "1"})
	b := configured(t, rootConfig(t, s))
	cases := map[string][]string{
		"":                  {"kv1/", "secret/"},
		"secret/listing":    {"secret/listing/flink", "secret/listing/spark/"},
		"/secret/listing/":  {"secret/listing/flink", "secret/listing/spark/"},
		"kv1/listing/spark": {"kv1/listing/spark/tls"},
	}
	for prefix, want := range cases {
		got, err := b.List(context.Background(), prefix)
		if err != nil {
			t.Errorf("List(%q): %v", prefix, err)
			continue
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("List(%q) = %v, want %v", prefix, got, want)
		}
	}
	if _, err := b.List(context.Background(), "secret/listing/none"); !errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("List of an empty prefix: %v, want ErrNotFound", err)
	}
}

func TestKVMountsOverrideDetection(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	putKV2(t, root, "secret", "override/tls", map[string]any{"password": "v2-pw"})
	putKV1(t, root, "kv1", "override/tls", map[string]any{"password": "v1-pw"})
	cfg := rootConfig(t, s)
	cfg["kv_mounts"] = "secret=2,kv1=1"
	b := configured(t, cfg)
	for path, want := range map[string]string{"secret/override/tls": "v2-pw", "kv1/override/tls": "v1-pw"} {
		if r := get(t, b, plugin.Ref{Path: path, Field: "password"}); r.Err != nil || string(r.Secret.Data) != want {
			t.Errorf("%s with kv_mounts: %v", path, r.Err)
		}
	}
	// A wrong override is obeyed, not second-guessed: KV v2 read the KV v1
	// way finds no secret there.
	cfg = rootConfig(t, s)
	cfg["kv_mounts"] = "secret=1"
	r := get(t, configured(t, cfg), plugin.Ref{Path: "secret/override/tls", Field: "password"})
	if r.Err == nil {
		t.Error("kv_mounts secret=1 read a KV v2 secret: the override was not used")
	}
}
