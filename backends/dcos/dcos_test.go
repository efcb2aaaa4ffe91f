package dcos_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/backends/dcos"
	"github.com/keyship/keyship/backends/dcos/dcostest"
	"github.com/keyship/keyship/host/resolve"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/plugintest"
)

// uid is the service account the fixtures log in as.
const uid = "keyship"

// fixture is a test server with a superuser service account and a backend
// configuration that logs in as it and verifies the server with ca_file.
type fixture struct {
	srv  *dcostest.Server
	cfg  map[string]string
	logs *plugintest.LogBuffer
}

func newFixture(t *testing.T, opts ...dcostest.Option) *fixture {
	t.Helper()
	srv := dcostest.New(t, opts...)
	sa := writeFile(t, "sa.json", srv.NewServiceAccount(t, uid))
	srv.Grant(uid, "dcos:superuser", "full")
	return &fixture{
		srv: srv,
		cfg: map[string]string{
			"url":                       srv.URL,
			"ca_file":                   srv.WriteCAFile(t),
			"auth.method":               "service_account",
			"auth.service_account_file": sa,
		},
		logs: &plugintest.LogBuffer{},
	}
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// logger logs every level as JSON into f.logs.
func (f *fixture) logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: f.logs, Level: hclog.Trace, JSONFormat: true})
}

// backend returns an in-process backend configured with f.cfg plus extra
// settings ("" values delete a setting).
func (f *fixture) backend(t *testing.T, extra ...string) *dcos.Backend {
	t.Helper()
	b, err := f.try(extra...)
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return b
}

func (f *fixture) try(extra ...string) (*dcos.Backend, error) {
	cfg := map[string]string{}
	for k, v := range f.cfg {
		cfg[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(cfg, extra[i])
		} else {
			cfg[extra[i]] = extra[i+1]
		}
	}
	b := dcos.NewWithLogger(f.logger())
	return b, b.Configure(context.Background(), cfg)
}

func get(t *testing.T, b plugin.Backend, refs ...plugin.Ref) []plugin.Result {
	t.Helper()
	res, err := b.Get(context.Background(), refs)
	if err != nil {
		t.Fatalf("Get %v: batch error %v", refs, err)
	}
	return res
}

// firstErr reads one ref and returns the batch's error or the ref's.
func firstErr(b plugin.Backend, path string) error {
	res, err := b.Get(context.Background(), []plugin.Ref{{Path: path}})
	if err != nil {
		return err
	}
	return res[0].Err
}

func TestConformance(t *testing.T) {
	f := newFixture(t)
	plugintest.Run(t, kitConfig(f, dcos.New, nil))
}

// kitConfig is the conformance-kit configuration for f's server; connect, if
// not nil, reaches the backend some other way than in-process.
func kitConfig(f *fixture, newBackend func() plugin.Backend, connect func(testing.TB) plugin.Backend) plugintest.Config {
	cfg := plugintest.Config{
		Config: f.cfg,
		BadConfigs: []map[string]string{
			{},
			with(f.cfg, "url", "http://"+strings.TrimPrefix(f.srv.URL, "https://")),
			with(f.cfg, "colour", "blue"),
			with(f.cfg, "auth.method", ""),
			with(f.cfg, "auth.method", "kerberos"),
			with(f.cfg, "auth.password_file", "/etc/hostname"),
			with(f.cfg, "ca_sha256", "abcd"),
			with(f.cfg, "ca_sha256", f.srv.CASHA256()),
			with(f.cfg, "auth.service_account_file", filepath.Join(filepath.Dir(f.cfg["ca_file"]), "missing.json")),
			with(f.cfg, "tls_skip_verify", "perhaps"),
			with(f.cfg, "timeout", "-1s"),
			with(f.cfg, "issue.key_type", "dsa"),
			with(f.cfg, "store", "../x"),
		},
		Ref: func(name string) plugin.Ref { return plugin.Ref{Path: "/kit/" + name} },
		Put: func(_ testing.TB, ref plugin.Ref, data []byte) { f.srv.PutBinary(ref.Path, data) },
		Deny: func(_ testing.TB, ref plugin.Ref) {
			f.srv.Deny(uid, "dcos:secrets:default:"+ref.Path)
		},
		Unavailable: func(testing.TB) func() {
			f.srv.SetUnavailable(true)
			return func() { f.srv.SetUnavailable(false) }
		},
		// DC/OS 1.11+ stores binary secrets.
		Binary: true,
	}
	if connect != nil {
		cfg.Connect = connect
	} else {
		cfg.New = newBackend
	}
	return cfg
}

func with(cfg map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for kk, vv := range cfg {
		out[kk] = vv
	}
	if v == "" {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func TestServiceAccountLogin(t *testing.T) {
	f := newFixture(t)
	f.srv.PutText("/spark/keystore_password", "changeit")
	b := f.backend(t)
	if f.srv.Logins(uid) != 0 {
		t.Fatal("Configure contacted the cluster")
	}
	for range 3 {
		r := get(t, b, plugin.Ref{Path: "/spark/keystore_password"}, plugin.Ref{Path: "spark/keystore_password"})
		for i, res := range r {
			if res.Err != nil || string(res.Secret.Data) != "changeit" {
				t.Fatalf("result %d: %v", i, res.Err)
			}
			if res.Secret.Metadata["type"] != "text" {
				t.Errorf("metadata %v, want type text", res.Secret.Metadata)
			}
		}
	}
	if n := f.srv.Logins(uid); n != 1 {
		t.Errorf("%d logins for 6 reads with a valid token, want 1", n)
	}
	if !strings.Contains(f.logs.String(), "logged in to DC/OS") {
		t.Errorf("no login log line:\n%s", f.logs)
	}
}

func TestExpiredTokenRefreshedBeforeUse(t *testing.T) {
	f := newFixture(t, dcostest.WithTokenLifetime(2*time.Second))
	f.srv.PutText("/spark/pw", "changeit")
	b := f.backend(t)
	if r := get(t, b, plugin.Ref{Path: "/spark/pw"})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	time.Sleep(2100 * time.Millisecond) // the auth token has expired
	if r := get(t, b, plugin.Ref{Path: "/spark/pw"})[0]; r.Err != nil || string(r.Secret.Data) != "changeit" {
		t.Fatalf("Get after the auth token expired: %v", r.Err)
	}
	if n := f.srv.Logins(uid); n != 2 {
		t.Errorf("%d logins, want 2 (one more when the token expired)", n)
	}
	// Refreshed before use: the cluster never had to refuse the old token.
	if n := f.srv.Requests("GET /secrets/v1/secret/default/spark/pw"); n != 2 {
		t.Errorf("%d secret requests, want 2 (no 401 and retry)", n)
	}
}

func TestRefusedTokenLogsInOnceAndRetriesOnce(t *testing.T) {
	f := newFixture(t)
	f.srv.PutText("/spark/pw", "changeit")
	b := f.backend(t)
	if r := get(t, b, plugin.Ref{Path: "/spark/pw"})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	f.srv.RevokeTokens()
	if r := get(t, b, plugin.Ref{Path: "/spark/pw"})[0]; r.Err != nil || string(r.Secret.Data) != "changeit" {
		t.Fatalf("Get after the token was revoked: %v (a 401 must be answered by logging in again)", r.Err)
	}
	if n := f.srv.Logins(uid); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
	if n := f.srv.Requests("GET /secrets/v1/secret/default/spark/pw"); n != 3 {
		t.Errorf("%d secret requests, want 3 (one 401, one retry)", n)
	}
}

func TestRefusedFreshTokenIsNoLoop(t *testing.T) {
	f := newFixture(t)
	f.srv.PutText("/spark/pw", "changeit")
	f.srv.PutText("/spark/ks", "ks")
	f.srv.RejectAllTokens(true)
	b := f.backend(t)
	_, err := b.Get(context.Background(), []plugin.Ref{{Path: "/spark/pw"}, {Path: "/spark/ks"}})
	if !errors.Is(err, plugin.ErrPermissionDenied) {
		t.Fatalf("Get with every token refused: %v, want a batch ErrPermissionDenied", err)
	}
	for _, want := range []string{`uid "keyship"`, "401"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := f.srv.Logins(uid); n != 2 {
		t.Errorf("%d logins for one batch, want 2 (the first, and one after the 401)", n)
	}
	if n := f.srv.Requests("GET /secrets/v1/secret/default/spark/ks"); n != 0 {
		t.Errorf("the second ref was requested %d times after authentication failed", n)
	}
}

func TestLoginRefusedNamesUID(t *testing.T) {
	f := newFixture(t)
	f.srv.PutText("/spark/pw", "changeit")
	// The account has no public key any more: the backend's login JWT does not verify.
	f.srv.AddServiceAccount(uid, nil)
	b := f.backend(t)
	_, err := b.Get(context.Background(), []plugin.Ref{{Path: "/spark/pw"}, {Path: "/spark/pw2"}})
	if !errors.Is(err, plugin.ErrPermissionDenied) || !strings.Contains(err.Error(), `uid "keyship"`) {
		t.Fatalf("refused login: %v, want ErrPermissionDenied naming the uid", err)
	}
	if n := f.srv.Logins(uid); n != 1 {
		t.Errorf("%d login attempts for one batch with refused credentials, want 1", n)
	}
}

func TestForbiddenNamesPermission(t *testing.T) {
	f := newFixture(t)
	sa := writeFile(t, "reader.json", f.srv.NewServiceAccount(t, "reader"))
	f.srv.Grant("reader", "dcos:secrets:default:/spark/keystore_password", "read")
	f.srv.PutText("/spark/keystore_password", "changeit")
	f.srv.PutBinary("/spark/keystore", []byte("jks"))
	b := f.backend(t, "auth.service_account_file", sa)
	res := get(t, b, plugin.Ref{Path: "/spark/keystore"}, plugin.Ref{Path: "/spark/keystore_password"})
	if !errors.Is(res[0].Err, plugin.ErrPermissionDenied) {
		t.Fatalf("403: %v, want ErrPermissionDenied", res[0].Err)
	}
	for _, want := range []string{"dcos:secrets:default:/spark/keystore read", `uid "reader"`} {
		if !strings.Contains(res[0].Err.Error(), want) {
			t.Errorf("403 error %q does not name %q", res[0].Err, want)
		}
	}
	if res[1].Err != nil || string(res[1].Secret.Data) != "changeit" {
		t.Errorf("the permitted ref failed with the forbidden one: %v", res[1].Err)
	}
	_, err := b.List(context.Background(), "/spark")
	if !errors.Is(err, plugin.ErrPermissionDenied) || !strings.Contains(err.Error(), "dcos:secrets:list:default:/spark read") {
		t.Errorf("forbidden list: %v", err)
	}
}

func TestBinaryAndBase64SecretsByteExact(t *testing.T) {
	f := newFixture(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	// A base64 text secret as GNU base64 writes it: wrapped at 76 columns.
	long := bytes.Repeat(all, 4)
	enc := base64.StdEncoding.EncodeToString(long)
	var wrapped strings.Builder
	for i := 0; i < len(enc); i += 76 {
		wrapped.WriteString(enc[i:min(i+76, len(enc))] + "\n")
	}
	f.srv.PutBinary("/spark/keystore", all)
	f.srv.PutText("/spark/__dcos_base64__truststore", wrapped.String())
	f.srv.PutBinary("/spark/__dcos_base64__keytab", []byte(base64.RawStdEncoding.EncodeToString(all[:100])))
	f.srv.PutText("/spark/__dcos_base64__bad", "not base64 at all!")
	f.srv.PutText("/spark/pw", "pässwörd")
	b := f.backend(t)
	res := get(t, b,
		plugin.Ref{Path: "/spark/keystore"},
		plugin.Ref{Path: "/spark/__dcos_base64__truststore"},
		plugin.Ref{Path: "spark/__dcos_base64__keytab"},
		plugin.Ref{Path: "/spark/pw"},
		plugin.Ref{Path: "/spark/__dcos_base64__bad"},
	)
	want := [][]byte{all, long, all[:100], []byte("pässwörd")}
	for i, w := range want {
		if res[i].Err != nil {
			t.Errorf("result %d: %v", i, res[i].Err)
		} else if !bytes.Equal(res[i].Secret.Data, w) {
			t.Errorf("result %d: %d bytes, not byte-exact with the %d stored", i, len(res[i].Secret.Data), len(w))
		}
	}
	if res[0].Secret.Metadata["type"] != "binary" || res[1].Secret.Metadata["decoded"] != "base64" {
		t.Errorf("metadata %v / %v", res[0].Secret.Metadata, res[1].Secret.Metadata)
	}
	if !errors.Is(res[4].Err, plugin.ErrInvalidConfig) || !strings.Contains(res[4].Err.Error(), "not base64") {
		t.Errorf("__dcos_base64__ secret with invalid base64: %v", res[4].Err)
	}
	if strings.Contains(res[4].Err.Error(), "not base64 at all") {
		t.Error("the error quotes the secret")
	}
}

func TestFieldsAndRefForms(t *testing.T) {
	f := newFixture(t)
	f.srv.PutText("/svc/sa", `{"uid":"svc","private_key":"PEM","n":1}`)
	b := f.backend(t)
	res := get(t, b,
		plugin.Ref{Path: "/svc/sa", Field: "uid"},
		plugin.Ref{Path: "/svc/sa", Field: "missing"},
		plugin.Ref{Path: "/svc/sa", Field: "n"},
		plugin.Ref{Path: "/svc/sa", Version: "2"},
		plugin.Ref{Path: "/svc/../etc"},
		plugin.Ref{Path: "/svc//sa"},
		plugin.Ref{Path: "/"},
	)
	if res[0].Err != nil || string(res[0].Secret.Data) != "svc" {
		t.Errorf("#uid: %v %q", res[0].Err, res[0].Secret.Data)
	}
	if !errors.Is(res[1].Err, plugin.ErrNotFound) {
		t.Errorf("#missing: %v, want ErrNotFound", res[1].Err)
	}
	for i := 2; i < len(res); i++ {
		if !errors.Is(res[i].Err, plugin.ErrInvalidConfig) {
			t.Errorf("result %d: %v, want ErrInvalidConfig", i, res[i].Err)
		}
	}
}

func TestList(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/spark/keystore", "/spark/tls/ca", "/spark/tls/key", "/flink/pw"} {
		f.srv.PutText(p, "x")
	}
	b := f.backend(t)
	for prefix, want := range map[string]string{
		"":        "/flink/ /spark/",
		"/":       "/flink/ /spark/",
		"/spark":  "/spark/keystore /spark/tls/",
		"spark/":  "/spark/keystore /spark/tls/",
		"/nobody": "",
	} {
		got, err := b.List(context.Background(), prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("List(%q) = %v, want %s", prefix, got, want)
		}
	}
}

func TestCAPin(t *testing.T) {
	f := newFixture(t)
	f.srv.PutText("/spark/pw", "changeit")
	b := f.backend(t, "ca_file", "", "ca_sha256", f.srv.CASHA256())
	if r := get(t, b, plugin.Ref{Path: "/spark/pw"})[0]; r.Err != nil || string(r.Secret.Data) != "changeit" {
		t.Fatalf("with the right pin: %v", r.Err)
	}
	// Colons and upper case are how openssl prints fingerprints.
	var colon []string
	for i := 0; i < 64; i += 2 {
		colon = append(colon, strings.ToUpper(f.srv.CASHA256()[i:i+2]))
	}
	b = f.backend(t, "ca_file", "", "ca_sha256", strings.Join(colon, ":"))
	if r := get(t, b, plugin.Ref{Path: "/spark/pw"})[0]; r.Err != nil {
		t.Fatalf("with the right pin in openssl's form: %v", r.Err)
	}

	wrong := dcostest.New(t).CASHA256()
	b = f.backend(t, "ca_file", "", "ca_sha256", wrong)
	err := firstErr(b, "/spark/pw")
	if !errors.Is(err, plugin.ErrInvalidConfig) || !strings.Contains(err.Error(), "pin mismatch") || !strings.Contains(err.Error(), wrong) {
		t.Fatalf("wrong pin: %v, want ErrInvalidConfig saying pin mismatch", err)
	}
	if f.srv.Requests("GET /secrets/v1/secret/default/spark/pw") != 2 || f.srv.Logins(uid) != 2 {
		t.Errorf("with a wrong pin the backend still talked to the cluster: %d reads, %d logins",
			f.srv.Requests("GET /secrets/v1/secret/default/spark/pw"), f.srv.Logins(uid))
	}
}

func TestUntrustedClusterRefused(t *testing.T) {
	f := newFixture(t)
	f.srv.PutText("/spark/pw", "changeit")
	other := dcostest.New(t)
	for name, extra := range map[string][]string{
		"another CA in ca_file": {"ca_file", other.WriteCAFile(t)},
		"system roots":          {"ca_file", ""},
	} {
		err := firstErr(f.backend(t, extra...), "/spark/pw")
		if !errors.Is(err, plugin.ErrInvalidConfig) || !strings.Contains(err.Error(), "TLS verification") {
			t.Errorf("%s: %v, want ErrInvalidConfig on TLS verification", name, err)
		}
	}
	if n := f.srv.Logins(uid); n != 0 {
		t.Errorf("credentials were sent to an unverified cluster: %d logins", n)
	}
}

func TestSkipVerifyIsExplicitAndLoud(t *testing.T) {
	f := newFixture(t)
	f.srv.PutText("/spark/pw", "changeit")
	if _, err := f.try("tls_skip_verify", "true"); err == nil {
		t.Fatal("tls_skip_verify together with ca_file was accepted")
	}
	b := f.backend(t, "ca_file", "", "tls_skip_verify", "true")
	if r := get(t, b, plugin.Ref{Path: "/spark/pw"})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	var warned bool
	for line := range strings.SplitSeq(f.logs.String(), "\n") {
		if strings.Contains(line, `"@level":"warn"`) && strings.Contains(line, "tls_skip_verify=true") && strings.Contains(line, "VERIFICATION") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("skipping TLS verification logged no warning:\n%s", f.logs)
	}
}

func TestUnavailable(t *testing.T) {
	f := newFixture(t)
	f.srv.PutText("/spark/pw", "changeit")
	b := f.backend(t)
	f.srv.FailNext(1, http.StatusServiceUnavailable)
	if r := get(t, b, plugin.Ref{Path: "/spark/pw"})[0]; !errors.Is(r.Err, plugin.ErrUnavailable) {
		t.Errorf("503: %v, want ErrUnavailable", r.Err)
	}
	// A port nothing listens on: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	b = f.backend(t, "url", "https://"+addr)
	if err := firstErr(b, "/spark/pw"); !errors.Is(err, plugin.ErrUnavailable) {
		t.Errorf("connection refused: %v, want ErrUnavailable", err)
	}
}

// backends is the resolver's view of the configured backends: one, the default.
type backends map[string]plugin.Backend

func (bs backends) Backend(_ context.Context, name string) (plugin.Backend, error) {
	if name == "" {
		name = "dcos"
	}
	b, ok := bs[name]
	if !ok {
		return nil, plugin.ErrInvalidConfig
	}
	return b, nil
}

func (bs backends) DefaultBackend() string { return "dcos" }

func TestHostRetriesUnavailable(t *testing.T) {
	f := newFixture(t)
	f.srv.PutText("/spark/keystore_password", "changeit")
	b := f.backend(t)
	ref, err := spec.ParseRef("/spark/keystore_password")
	if err != nil {
		t.Fatal(err)
	}
	f.srv.FailNext(2, http.StatusServiceUnavailable)
	r := resolve.New(backends{"dcos": b}, resolve.WithRetry(4, time.Millisecond))
	got, err := r.Resolve(context.Background(), []spec.Field{{Name: "security.tls.keystore_password", Ref: ref}})
	if err != nil {
		t.Fatalf("503 twice then 200: %v", err)
	}
	if string(got[ref].Data) != "changeit" {
		t.Error("wrong secret after retries")
	}
	if n := f.srv.Requests("GET /secrets/v1/secret/default/spark/keystore_password"); n != 3 {
		t.Errorf("%d requests, want 3 (503, 503, 200)", n)
	}
}

// TestCanariesNeverLogged runs every auth method through success and failure
// with canary credentials and checks that no credential reaches a log line or
// an error.
func TestCanariesNeverLogged(t *testing.T) {
	const canaryPassword = "CANARY-pw-7f3a9c1e"
	const canaryToken = "CANARY.token.5b2d8e40"
	f := newFixture(t, dcostest.WithTokenLifetime(2*time.Second))
	f.srv.PutText("/spark/pw", "changeit")
	f.srv.AddUser("alice", canaryPassword)
	f.srv.Grant("alice", "dcos:secrets:default:/spark/pw", "read")
	var errs []error
	collect := func(b plugin.Backend, refs ...string) {
		var rs []plugin.Ref
		for _, r := range refs {
			rs = append(rs, plugin.Ref{Path: r})
		}
		res, err := b.Get(context.Background(), rs)
		errs = append(errs, err)
		for _, r := range res {
			errs = append(errs, r.Err)
		}
		if l, ok := b.(plugin.Lister); ok {
			_, err := l.List(context.Background(), "/")
			errs = append(errs, err)
		}
	}
	pwFile := writeFile(t, "pw", []byte(canaryPassword+"\n"))
	password := []string{"auth.service_account_file", "", "auth.method", "password", "auth.uid", "alice", "auth.password_file", pwFile}
	b := f.backend(t, password...)
	collect(b, "/spark/pw", "/spark/other") // success and 403
	f.srv.RevokeTokens()
	collect(b, "/spark/pw") // 401, re-login
	f.srv.RejectAllTokens(true)
	collect(b, "/spark/pw") // 401 after a fresh login
	f.srv.RejectAllTokens(false)
	f.srv.AddUser("alice", "another password")
	f.srv.RevokeTokens()
	collect(b, "/spark/pw") // login refused

	tokFile := writeFile(t, "token", []byte(canaryToken+"\n"))
	collect(f.backend(t, "auth.service_account_file", "", "auth.method", "token", "auth.token_file", tokFile), "/spark/pw")

	collect(f.backend(t), "/spark/pw") // service account
	time.Sleep(2100 * time.Millisecond)
	sb := f.backend(t)
	collect(sb, "/spark/pw")
	f.srv.RejectAllTokens(true)
	collect(sb, "/spark/pw")

	secrets := append([]string{canaryPassword, canaryToken}, f.srv.IssuedTokens()...)
	sa, err := os.ReadFile(f.cfg["auth.service_account_file"])
	if err != nil {
		t.Fatal(err)
	}
	key := string(sa)
	key = key[strings.Index(key, "MII"):][:64] // a run of the private key's base64
	secrets = append(secrets, key)
	var failures int
	for _, err := range errs {
		if err == nil {
			continue
		}
		failures++
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains a credential", err)
			}
		}
	}
	if failures < 5 {
		t.Fatalf("only %d failures were provoked; the test would prove little", failures)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "logged in to DC/OS") || !strings.Contains(logs, "DC/OS API call") {
		t.Fatalf("the backend logged too little for this test to mean anything:\n%s", logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a credential is in the log")
		}
	}
}
