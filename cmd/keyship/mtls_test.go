package main_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyship/keyship/host/materialize/testca"
	"github.com/keyship/keyship/plugin/plugintest"
)

// mtls is a throwaway CA with a server certificate for keyship serve
// (127.0.0.1, localhost) and a client certificate for its callers, as PEM
// files.
type mtls struct {
	ca                       *testca.CA
	client                   *testca.Leaf
	caFile                   string
	serverCert, serverKey    string
	clientCert, clientKey    string
	clientPEM                []byte // the client's key then its chain
	strangerCert, strangerKy string // a client certificate from another CA
	strangerCA               []byte // that CA's certificate, PEM
}

func newMTLS(t testing.TB) *mtls {
	t.Helper()
	dir := t.TempDir()
	ca, err := testca.NewCA("Keyship API CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue("keyship-serve", testca.WithDNS("localhost"), testca.WithIPs(net.ParseIP("127.0.0.1")))
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue("spark-dispatcher")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testca.NewCA("Another CA")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.Issue("spark-dispatcher")
	if err != nil {
		t.Fatal(err)
	}
	m := &mtls{ca: ca, client: client, caFile: filepath.Join(dir, "ca.pem")}
	writePEM(t, m.caFile, certPEM(ca.Cert))
	m.serverCert, m.serverKey = writeLeaf(t, dir, "server", srv)
	m.clientCert, m.clientKey = writeLeaf(t, dir, "client", client)
	m.strangerCert, m.strangerKy = writeLeaf(t, dir, "stranger", stranger)
	m.strangerCA = certPEM(other.Cert)
	m.clientPEM = append(keyPEM(t, client), certPEM(client.Chain...)...)
	return m
}

func certPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func keyPEM(t testing.TB, l *testca.Leaf) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func writePEM(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeLeaf(t testing.TB, dir, name string, l *testca.Leaf) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, certPEM(l.Chain[0]))
	writePEM(t, keyFile, keyPEM(t, l))
	return certFile, keyFile
}

// clientTLS is the Go client's mutual-TLS configuration.
func (m *mtls) clientTLS(t testing.TB) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(m.clientCert, m.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(m.ca.Cert)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// serving is a running keyship serve.
type serving struct {
	cmd *exec.Cmd
	// api is the "listening" address (unix:///… or tcp://127.0.0.1:PORT);
	// fetch and metrics the fetch server's base URL and the metrics URL,
	// when started with them.
	api, fetch, metrics string
	stderr              *plugintest.LogBuffer
	// done is closed when the process has exited, with its error in
	// waitErr.
	done    chan struct{}
	waitErr error
	// fetchClosed is closed when serve says its fetch server refuses URIs
	// (shutting down).
	fetchClosed chan struct{}
}

// serve runs keyship serve for j with args until the test ends and waits
// until it listens.
func serve(t testing.TB, j *job, args ...string) *serving {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "keyship"), append([]string{"serve", "--config", j.config}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &serving{cmd: cmd, stderr: &plugintest.LogBuffer{}, done: make(chan struct{}), fetchClosed: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if line == "fetch closed" {
				close(s.fetchClosed)
				continue
			}
			switch k, v, _ := strings.Cut(line, " "); k {
			case "fetch":
				s.fetch = v
			case "metrics":
				s.metrics = v
			case "listening":
				s.api = v
				close(ready)
			}
		}
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("keyship serve did not start: %s", s.stderr.String())
	}
	return s
}

// serveTLS runs keyship serve on TCP (a free port) with mutual TLS.
func serveTLS(t testing.TB, j *job, m *mtls, args ...string) *serving {
	t.Helper()
	return serve(t, j, append([]string{"--listen", "tcp://127.0.0.1:0", "--tls-cert", m.serverCert, "--tls-key", m.serverKey, "--client-ca", m.caFile}, args...)...)
}

// hostPort is the API's TCP address without its scheme.
func (s *serving) hostPort() string { return strings.TrimPrefix(s.api, "tcp://") }
