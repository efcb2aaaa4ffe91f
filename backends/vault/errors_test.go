package vault_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyship/keyship/backends/vault"
	"github.com/keyship/keyship/backends/vault/vaulttest"
	"github.com/keyship/keyship/plugin"
)

func TestSealedIsUnavailableSayingSealed(t *testing.T) {
	t.Parallel()
	s := vaulttest.Start(t, vaulttest.Options{}) // its own server: it gets sealed
	putKV2(t, s.Client(t), "secret", "sealed/tls", map[string]any{"password": "pw"})
	b := configured(t, rootConfig(t, s))
	ref := plugin.Ref{Path: "secret/sealed/tls", Field: "password"}
	if r := get(t, b, ref); r.Err != nil {
		t.Fatal(r.Err)
	}
	s.Vault(t, "operator", "seal")
	fresh := configured(t, rootConfig(t, s)) // not logged in yet: its login meets the seal
	for name, be := range map[string]*vault.Backend{"logged-in": b, "fresh": fresh} {
		r := get(t, be, ref)
		if !errors.Is(r.Err, plugin.ErrUnavailable) || !strings.Contains(r.Err.Error(), "sealed") {
			t.Errorf("%s backend, sealed Vault: error %v, want ErrUnavailable saying sealed", name, r.Err)
		}
	}
	if _, err := b.List(context.Background(), "secret/sealed"); !errors.Is(err, plugin.ErrUnavailable) || !strings.Contains(err.Error(), "sealed") {
		t.Errorf("List on a sealed Vault: %v", err)
	}
}

// TestTLS runs against a -dev-tls server: verified with its CA from the
// settings and from VAULT_CACERT, refused without it. Not parallel: it sets
// VAULT_* variables.
func TestTLS(t *testing.T) {
	s := vaulttest.Start(t, vaulttest.Options{TLS: true})
	if !strings.HasPrefix(s.Addr, "https://") {
		t.Fatalf("TLS server address %s", s.Addr)
	}
	putKV2(t, s.Client(t), "secret", "tls/store", map[string]any{"password": "pw"})
	ref := plugin.Ref{Path: "secret/tls/store", Field: "password"}
	token := secretFile(t, s.RootToken)

	b := configured(t, map[string]string{"address": s.Addr, "ca_file": s.CACert, "auth.token_file": token})
	if r := get(t, b, ref); r.Err != nil || string(r.Secret.Data) != "pw" {
		t.Fatalf("with ca_file: %v", r.Err)
	}
	caDir := t.TempDir() // ca_dir: a directory of PEM CA files
	if pem, err := os.ReadFile(s.CACert); err != nil || os.WriteFile(filepath.Join(caDir, "ca.pem"), pem, 0o600) != nil {
		t.Fatalf("copy the CA: %v", err)
	}
	certDir := filepath.Dir(s.CACert) // a client certificate loads (the dev server does not ask for one)
	b = configured(t, map[string]string{"address": s.Addr, "ca_dir": caDir, "auth.token_file": token,
		"client_cert": filepath.Join(certDir, "vault-cert.pem"), "client_key": filepath.Join(certDir, "vault-key.pem")})
	if r := get(t, b, ref); r.Err != nil || string(r.Secret.Data) != "pw" {
		t.Fatalf("with ca_dir and a client certificate: %v", r.Err)
	}
	bad := vault.NewWithLogger(nil)
	if err := bad.Configure(context.Background(), map[string]string{"address": s.Addr, "ca_file": token, "auth.token_file": token}); !errors.Is(err, plugin.ErrInvalidConfig) {
		t.Errorf("ca_file that is not PEM: Configure error %v, want ErrInvalidConfig", err)
	}
	b = configured(t, map[string]string{"address": s.Addr, "auth.token_file": token})
	r := get(t, b, ref)
	if !errors.Is(r.Err, plugin.ErrInvalidConfig) || !strings.Contains(r.Err.Error(), "not trusted") {
		t.Errorf("without the CA: %v, want ErrInvalidConfig saying the certificate is not trusted", r.Err)
	}
	b = configured(t, map[string]string{"address": s.Addr, "ca_file": s.CACert, "tls_server_name": "not-vault.example", "auth.token_file": token})
	if r := get(t, b, ref); !errors.Is(r.Err, plugin.ErrInvalidConfig) {
		t.Errorf("with a server name the certificate does not cover: %v, want ErrInvalidConfig", r.Err)
	}
	logger, logs := captureLogger()
	bi := vault.NewWithLogger(logger)
	if err := bi.Configure(context.Background(), map[string]string{"address": s.Addr, "tls_skip_verify": "true", "auth.token_file": token}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bi.Close() })
	if r := get(t, bi, ref); r.Err != nil {
		t.Errorf("with tls_skip_verify: %v", r.Err)
	}
	if !strings.Contains(logs.String(), "TLS VERIFICATION OF VAULT IS OFF") {
		t.Error("tls_skip_verify was not logged as a warning")
	}

	// Everything from the VAULT_* environment, as the Vault CLI does it.
	t.Setenv("VAULT_ADDR", s.Addr)
	t.Setenv("VAULT_CACERT", s.CACert)
	t.Setenv("VAULT_TOKEN", s.RootToken)
	t.Setenv("VAULT_WRAP_TTL", "30s") // must not wrap the backend's reads
	b = configured(t, map[string]string{})
	if r := get(t, b, ref); r.Err != nil || string(r.Secret.Data) != "pw" {
		t.Errorf("from VAULT_ADDR, VAULT_CACERT and VAULT_TOKEN: %v", r.Err)
	}
}

// fakeVault is an imitation of Vault for error-mapping tests only: the
// token is valid, secret/ is KV v2, and reads of secret/data/* get answer.
func fakeVault(t *testing.T, answer http.HandlerFunc) (*httptest.Server, *sync.Map) {
	t.Helper()
	headers := &sync.Map{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/auth/token/lookup-self":
			fmt.Fprint(w, `{"data":{"ttl":0,"renewable":false}}`)
		case strings.HasPrefix(r.URL.Path, "/v1/sys/internal/ui/mounts/"):
			fmt.Fprint(w, `{"data":{"path":"secret/","type":"kv","options":{"version":"2"}}}`)
		case strings.HasPrefix(r.URL.Path, "/v1/secret/data/"):
			headers.Store("namespace", r.Header.Get("X-Vault-Namespace"))
			headers.Store("wrap", r.Header.Get("X-Vault-Wrap-TTL"))
			answer(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, headers
}

func status(code int, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"errors":[%q]}`, msg)
	}
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		answer http.HandlerFunc
		want   error
		says   string
	}{
		{"sealed", status(503, "Vault is sealed"), plugin.ErrUnavailable, "sealed"},
		{"5xx", status(500, "internal error"), plugin.ErrUnavailable, "server error (HTTP 500)"},
		{"502", status(502, "bad gateway"), plugin.ErrUnavailable, "HTTP 502"},
		{"standby", status(429, "standby"), plugin.ErrUnavailable, "standby"},
		{"perf standby", status(473, "performance standby"), plugin.ErrUnavailable, "standby"},
		{"403", status(403, "permission denied"), plugin.ErrPermissionDenied, `"read" capability on "secret/data/x"`},
		{"400", status(400, "bad request"), plugin.ErrInvalidConfig, "HTTP 400"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := fakeVault(t, c.answer)
			b := configured(t, map[string]string{"address": srv.URL, "auth.token": "fake-token"})
			r := get(t, b, plugin.Ref{Path: "secret/x", Field: "f"})
			if !errors.Is(r.Err, c.want) || !strings.Contains(r.Err.Error(), c.says) {
				t.Errorf("error %v, want %v saying %q", r.Err, c.want, c.says)
			}
			if strings.Contains(r.Err.Error(), "fake-token") {
				t.Error("the error contains the token")
			}
		})
	}
}

func TestUnreachableAndSlowVault(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	_ = l.Close()
	b := configured(t, map[string]string{"address": closed, "auth.token": "fake-token"})
	r := get(t, b, plugin.Ref{Path: "secret/x", Field: "f"})
	if !errors.Is(r.Err, plugin.ErrUnavailable) || !strings.Contains(r.Err.Error(), "connection refused") {
		t.Errorf("connection refused: %v", r.Err)
	}

	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow, _ := fakeVault(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	b = configured(t, map[string]string{"address": slow.URL, "auth.token": "fake-token", "timeout": "300ms"})
	start := time.Now()
	r = get(t, b, plugin.Ref{Path: "secret/x", Field: "f"})
	if !errors.Is(r.Err, plugin.ErrUnavailable) || !strings.Contains(r.Err.Error(), "timed out") {
		t.Errorf("slow Vault with timeout 300ms: %v", r.Err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout 300ms took %s", d)
	}
	// The caller's deadline is the caller's: context.DeadlineExceeded.
	b = configured(t, map[string]string{"address": slow.URL, "auth.token": "fake-token"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err := b.Get(ctx, []plugin.Ref{{Path: "secret/x", Field: "f"}})
	if err == nil {
		err = res[0].Err
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller's deadline: %v, want context.DeadlineExceeded", err)
	}
}

func TestNamespaceHeader(t *testing.T) {
	ok := func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"data":{"data":{"f":"v"},"metadata":{"version":1}}}`)
	}
	srv, headers := fakeVault(t, ok)
	b := configured(t, map[string]string{"address": srv.URL, "auth.token": "fake-token", "namespace": "team-a"})
	if r := get(t, b, plugin.Ref{Path: "secret/x", Field: "f"}); r.Err != nil || string(r.Secret.Data) != "v" {
		t.Fatalf("read: %v", r.Err)
	}
	if ns, _ := headers.Load("namespace"); ns != "team-a" {
		t.Errorf("X-Vault-Namespace = %q, want team-a", ns)
	}
	t.Setenv("VAULT_NAMESPACE", "team-b")
	t.Setenv("VAULT_WRAP_TTL", "30s")
	b = configured(t, map[string]string{"address": srv.URL, "auth.token": "fake-token"})
	if r := get(t, b, plugin.Ref{Path: "secret/x", Field: "f"}); r.Err != nil {
		t.Fatalf("read: %v", r.Err)
	}
	if ns, _ := headers.Load("namespace"); ns != "team-b" {
		t.Errorf("X-Vault-Namespace from VAULT_NAMESPACE = %q, want team-b", ns)
	}
	if w, _ := headers.Load("wrap"); w != "" {
		t.Errorf("X-Vault-Wrap-TTL = %q: the backend asked for a wrapped response", w)
	}
}
