// Package vaulttest runs a real HashiCorp Vault server (`vault server -dev`)
// for tests: on a free loopback port, with a random root token, optionally
// with TLS (-dev-tls), killed when the test ends.
//
//	func TestX(t *testing.T) {
//		s := vaulttest.Start(t, vaulttest.Options{})
//		c := s.Client(t) // root client
//		...
//	}
//
// The vault binary is, in order: $VAULT_BIN, `vault` on PATH, or the one
// tools/vault/build.sh builds at CachePath (`make vault`). Without one the
// test is skipped, unless KEYSHIP_REQUIRE_VAULT=1 or KEYSHIP_REQUIRE_PEERS=1
// (make test, CI), which fail it.
//
// The dev server keeps everything in memory and has a KV v2 engine mounted at
// "secret/". Its log, which holds the root token, is never printed.
package vaulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// VaultVersion is the Vault release tools/vault builds.
const VaultVersion = "1.21.0"

// startTimeout bounds a server's start; the binary is large and the first
// start after a build reads it from disk.
const startTimeout = 60 * time.Second

// CachePath is where tools/vault/build.sh puts the binary:
// ${XDG_CACHE_HOME:-$HOME/.cache}/keyship/vault-<version>/vault.
func CachePath() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "keyship", "vault-"+VaultVersion, "vault")
}

// Find returns the vault binary to run: $VAULT_BIN, `vault` on PATH, or
// CachePath.
func Find() (string, error) {
	if b := os.Getenv("VAULT_BIN"); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("VAULT_BIN=%s: %w", b, err)
		}
		return b, nil
	}
	if b, err := exec.LookPath("vault"); err == nil {
		return b, nil
	}
	if b := CachePath(); isExecutable(b) {
		return b, nil
	}
	return "", fmt.Errorf("no vault binary: set VAULT_BIN, put vault on PATH, or run `make vault` (tools/vault/build.sh) to build Vault %s into %s (a cold build takes 10+ minutes)",
		VaultVersion, CachePath())
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Binary returns the vault binary, or skips t saying how to get one. It
// fails t instead when KEYSHIP_REQUIRE_VAULT or KEYSHIP_REQUIRE_PEERS is "1"
// (make test and CI set the latter after building Vault).
func Binary(t testing.TB) string {
	t.Helper()
	b, err := Find()
	if err != nil {
		for _, env := range []string{"KEYSHIP_REQUIRE_VAULT", "KEYSHIP_REQUIRE_PEERS"} {
			if os.Getenv(env) == "1" {
				t.Fatalf("%s=1 and %v", env, err)
			}
		}
		t.Skip(err.Error())
	}
	return b
}

// Options choose how the server runs.
type Options struct {
	// TLS runs the server with -dev-tls: HTTPS with a fresh CA, whose
	// certificate is in Server.CACert.
	TLS bool
}

// Server is a running Vault dev server.
type Server struct {
	// Addr is the server's URL, http(s)://127.0.0.1:<port>. Without TLS it
	// is a listener that accepts JSON strings up to 16 MiB.
	Addr string
	// RootToken is the dev server's root token (random per server).
	RootToken string
	// CACert is the PEM file of the CA that signed the server's
	// certificate; empty without TLS.
	CACert string

	bin    string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	log    string
}

// Start finds the binary (see Binary), starts a server and stops it when
// t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(Binary(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// New starts a server from the vault binary bin. The caller must Close it.
func New(bin string, opts Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "keyship-vaulttest-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 { // a free port can be taken between choosing and binding it
		s, err := start(bin, dir, opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	_ = os.RemoveAll(dir)
	return nil, lastErr
}

// largeJSONListener is a second, plain-HTTP listener the tests use instead
// of the dev listener: Vault 1.21 limits a JSON string to 1 MiB by default,
// too little for a 1 MiB binary secret kept as base64.
const largeJSONListener = `listener "tcp" {
  address                      = "127.0.0.1:%d"
  cluster_address              = "127.0.0.1:%d"
  tls_disable                  = true
  max_json_string_value_length = 16777216
  max_request_size             = 67108864
}
`

func start(bin, dir string, opts Options) (*Server, error) {
	ports, err := freePorts(4) // dev listener and its cluster port (+1), and the large-JSON listener's two
	if err != nil {
		return nil, err
	}
	port := ports[0]
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return nil, err
	}
	s := &Server{RootToken: "root-" + hex.EncodeToString(tok), bin: bin, dir: dir, log: filepath.Join(dir, fmt.Sprintf("vault-%d.log", port))}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"server", "-dev", "-dev-root-token-id=" + s.RootToken, "-dev-listen-address=" + listen, "-dev-no-store-token", "-log-level=info"}
	s.Addr = "http://" + listen
	if !opts.TLS {
		cfg := filepath.Join(dir, fmt.Sprintf("listener-%d.hcl", port))
		if err := os.WriteFile(cfg, fmt.Appendf(nil, largeJSONListener, ports[2], ports[3]), 0o600); err != nil {
			return nil, err
		}
		args = append(args, "-config="+cfg)
		s.Addr = fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	}
	if opts.TLS {
		certDir := filepath.Join(dir, fmt.Sprintf("tls-%d", port))
		if err := os.MkdirAll(certDir, 0o700); err != nil {
			return nil, err
		}
		args = append(args, "-dev-tls", "-dev-tls-cert-dir="+certDir)
		s.Addr = "https://" + listen
		s.CACert = filepath.Join(certDir, "vault-ca.pem")
	}
	logFile, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }()
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.Dir = dir
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "VAULT_DISABLE_MLOCK=true"}
	setParentDeath(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(s.exited); err != nil {
		_ = s.cmd.Process.Kill()
		<-s.exited
		return nil, fmt.Errorf("vault server -dev on %s: %w\n%s", listen, err, s.logTail())
	}
	return s, nil
}

// waitReady polls sys/health until the server is initialized, unsealed and
// active.
func (s *Server) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("the server exited")
		default:
		}
		if s.CACert == "" || fileExists(s.CACert) {
			c, err := s.NewClient()
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				h, err := c.Sys().HealthWithContext(ctx)
				cancel()
				if err == nil && h.Initialized && !h.Sealed && !h.Standby {
					return nil
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s", startTimeout)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// logTail returns the end of the server log with the root token redacted.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return strings.ReplaceAll(string(b), s.RootToken, "[root token]")
}

// freePorts returns n/2 pairs of free loopback ports p, p+1 (Vault puts a
// listener's cluster port next to it).
func freePorts(n int) ([]int, error) {
	var out []int
	for tries := 0; len(out) < n && tries < 100; tries++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		next, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		_ = l.Close()
		if err != nil {
			continue
		}
		_ = next.Close()
		out = append(out, p, p+1)
	}
	if len(out) < n {
		return nil, errors.New("no free pairs of loopback ports")
	}
	return out, nil
}

// Close kills the server and removes its files.
func (s *Server) Close() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
		}
	}
	_ = os.RemoveAll(s.dir)
}

// NewClient returns a client of the server with the root token.
func (s *Server) NewClient() (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	cfg.Timeout = 30 * time.Second
	if s.CACert != "" {
		if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: s.CACert}); err != nil {
			return nil, err
		}
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(s.RootToken)
	c.SetNamespace("")
	c.SetWrappingLookupFunc(func(string, string) string { return "" })
	return c, nil
}

// Client returns a client of the server with the root token.
func (s *Server) Client(t testing.TB) *api.Client {
	t.Helper()
	c, err := s.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Env is the environment for the vault CLI against this server as root.
func (s *Server) Env() []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.dir, "VAULT_ADDR=" + s.Addr, "VAULT_TOKEN=" + s.RootToken}
	if s.CACert != "" {
		env = append(env, "VAULT_CACERT="+s.CACert)
	}
	return env
}

// Vault runs the vault CLI with args against the server as root, within a
// minute, and returns its standard output. A failure fails t and shows the
// CLI's standard error with the root token redacted.
func (s *Server) Vault(t testing.TB, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = s.Env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vault %s: %v\n%s", strings.Join(args, " "), err, strings.ReplaceAll(stderr.String(), s.RootToken, "[root token]"))
	}
	return stdout.Bytes()
}
