package host_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/materialize/testca"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// authority is an in-process backend with a certificate authority.
type authority struct {
	ca    *testca.CA
	calls atomic.Int32
	last  plugin.IssueRequest
}

func (a *authority) Info(context.Context) (plugin.Info, error) {
	return plugin.Info{Name: "ca", Version: "1", ProtocolVersions: []uint32{plugin.ProtocolVersion}, Capabilities: []string{plugin.CapabilityIssue}}, nil
}
func (a *authority) Configure(context.Context, map[string]string) error { return nil }
func (a *authority) Get(_ context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	return make([]plugin.Result, len(refs)), nil
}
func (a *authority) Issue(_ context.Context, req plugin.IssueRequest) (plugin.Issued, error) {
	a.calls.Add(1)
	a.last = req
	var ips []net.IP
	for _, ip := range req.IPAddresses {
		ips = append(ips, net.ParseIP(ip))
	}
	leaf, err := a.ca.Issue(req.DNSNames[0], testca.WithDNS(req.DNSNames...), testca.WithIPs(ips...))
	if err != nil {
		return plugin.Issued{}, err
	}
	key, err := x509.MarshalPKCS8PrivateKey(leaf.Key)
	if err != nil {
		return plugin.Issued{}, err
	}
	return plugin.Issued{PrivateKey: key, Chain: [][]byte{leaf.Chain[0].Raw}, CACertificates: [][]byte{a.ca.Cert.Raw}, Version: leaf.Chain[0].SerialNumber.Text(16)}, nil
}

func newHost(t *testing.T, a *authority) *host.Host {
	t.Helper()
	cfg := &config.Config{DefaultBackend: "file", Backends: map[string]config.Backend{
		"file": {Config: map[string]string{"root": t.TempDir()}},
		"ca":   {},
	}}
	h := host.New(cfg, host.WithBuiltin("file", file.New), host.WithBuiltin("ca", func() plugin.Backend { return a }))
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func TestBuildIssuesForTheJobsHosts(t *testing.T) {
	ca, err := testca.NewCA("Issuing CA")
	if err != nil {
		t.Fatal(err)
	}
	a := &authority{ca: ca}
	h := newHost(t, a)
	s, err := spec.ParseDCOS([]byte(`{"security": {"tls": {"enabled": true, "keystore_issue": "ca:pki/issue/node"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	s.Hosts = []string{"tm-1.example.com", "10.0.0.7", "tm-2.example.com"}
	b, err := h.Build(context.Background(), s, materialize.Options{Outputs: []materialize.Format{materialize.FormatPEM}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Zero()
	if a.calls.Load() != 1 || a.last.Path != "pki/issue/node" ||
		!slices.Equal(a.last.DNSNames, []string{"tm-1.example.com", "tm-2.example.com"}) || !slices.Equal(a.last.IPAddresses, []string{"10.0.0.7"}) {
		t.Fatalf("issuer called %d times with %+v", a.calls.Load(), a.last)
	}
	var certPEM []byte
	for _, f := range b.Files {
		if strings.HasSuffix(f.Path, "cert.pem") || strings.HasSuffix(f.Path, ".crt") {
			certPEM = f.Contents
		}
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("no certificate PEM among %v", paths(b))
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil || leaf.VerifyHostname("tm-2.example.com") != nil {
		t.Fatalf("the shipped certificate does not cover the job's hosts: %v", err)
	}
}

func TestBuildIssueFromABackendWithoutCA(t *testing.T) {
	h := newHost(t, &authority{})
	s, err := spec.ParseDCOS([]byte(`{"security": {"tls": {"enabled": true, "keystore_issue": "file:pki"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	s.Hosts = []string{"a.example.com"}
	_, err = h.Build(context.Background(), s, materialize.Options{})
	if err == nil || !strings.Contains(err.Error(), "security.tls.keystore_issue (file:pki): this backend cannot issue certificates") {
		t.Fatalf("err = %v", err)
	}
	s.Hosts = nil
	_, err = h.Build(context.Background(), s, materialize.Options{})
	if err == nil || !strings.Contains(err.Error(), "names none") {
		t.Fatalf("no hosts: err = %v", err)
	}
}

func paths(b *materialize.Bundle) string {
	var out []string
	for _, f := range b.Files {
		out = append(out, fmt.Sprintf("%s(%s)", f.Path, f.Role))
	}
	return strings.Join(out, " ")
}

// TestBuildCacheNeverSharesIssuedCertificates: a spec that issues
// certificates is built (and issued) anew for every Build, whatever the host
// set, while a spec of stored secrets is shared, each caller getting its
// own copy to zero.
func TestBuildCacheNeverSharesIssuedCertificates(t *testing.T) {
	ca, err := testca.NewCA("Issuing CA")
	if err != nil {
		t.Fatal(err)
	}
	a := &authority{ca: ca}
	cfg := &config.Config{DefaultBackend: "file", Backends: map[string]config.Backend{
		"file": {Config: map[string]string{"root": t.TempDir()}},
		"ca":   {},
	}}
	h := host.New(cfg, host.WithBuiltin("file", file.New), host.WithBuiltin("ca", func() plugin.Backend { return a }),
		host.WithBuildCache(time.Hour, 10, nil))
	t.Cleanup(func() { _ = h.Close() })
	build := func(hosts ...string) {
		t.Helper()
		s, err := spec.ParseDCOS([]byte(`{"security": {"tls": {"enabled": true, "keystore_issue": "ca:pki/issue/node"}}}`))
		if err != nil {
			t.Fatal(err)
		}
		s.Hosts = hosts
		b, err := h.Build(context.Background(), s, materialize.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b.Zero()
	}
	build("tm-1.example.com")
	build("tm-2.example.com")
	build("tm-1.example.com")
	if n := a.calls.Load(); n != 3 {
		t.Errorf("three builds of issued keystores issued %d certificates, want 3", n)
	}
	if hits, builds := h.CacheStats(); hits != 0 || builds != 0 {
		t.Errorf("issued keystores went through the cache: %d hits, %d builds", hits, builds)
	}
}
