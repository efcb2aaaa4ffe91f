package dcos_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/keyship/keyship/backends/dcos"
	"github.com/keyship/keyship/backends/dcos/dcostest"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
)

// issued parses an Issued and checks what every issued certificate must be:
// a PKCS#8 key matching the leaf, a chain that verifies against the
// server's CA, and the CA itself as the CA certificate.
func issued(t *testing.T, srv *dcostest.Server, out plugin.Issued) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := x509.ParsePKCS8PrivateKey(out.PrivateKey)
	if err != nil {
		t.Fatalf("PrivateKey is not PKCS#8: %v", err)
	}
	signer := key.(crypto.Signer)
	if len(out.Chain) == 0 {
		t.Fatal("empty chain")
	}
	leaf, err := x509.ParseCertificate(out.Chain[0])
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.Public()) {
		t.Error("the key does not match the leaf")
	}
	if len(out.CACertificates) != 1 || !slices.Equal(out.CACertificates[0], srv.CA.Cert.Raw) {
		t.Error("CACertificates is not the cluster CA")
	}
	roots := x509.NewCertPool()
	roots.AddCert(srv.CA.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots}); err != nil {
		t.Errorf("the leaf does not verify against the cluster CA: %v", err)
	}
	if out.Version != leaf.SerialNumber.Text(16) {
		t.Errorf("Version %q is not the serial %s", out.Version, leaf.SerialNumber.Text(16))
	}
	return leaf, signer
}

func TestIssueCoversExactlyTheRequestedHosts(t *testing.T) {
	f := newFixture(t)
	for _, keyType := range []string{"", dcos.KeyECDSAP256} {
		b := f.backend(t, "issue.key_type", keyType)
		out, err := b.Issue(context.Background(), plugin.IssueRequest{
			Path:        "ca",
			DNSNames:    []string{"node-1.agent.example.com", "Node-2.agent.example.com.", "node-1.agent.example.com"},
			IPAddresses: []string{"10.0.4.7"},
		})
		if err != nil {
			t.Fatalf("Issue (%q): %v", keyType, err)
		}
		leaf, key := issued(t, f.srv, out)
		if got := slices.Sorted(slices.Values(leaf.DNSNames)); !slices.Equal(got, []string{"node-1.agent.example.com", "node-2.agent.example.com"}) {
			t.Errorf("DNS names %v, want exactly the two requested", got)
		}
		if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("10.0.4.7")) {
			t.Errorf("IP addresses %v, want exactly 10.0.4.7", leaf.IPAddresses)
		}
		if leaf.Subject.CommonName != "node-1.agent.example.com" {
			t.Errorf("CN %q, want the first DNS name", leaf.Subject.CommonName)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			if keyType != "" || k.N.BitLen() != 2048 {
				t.Errorf("key type %q gave RSA %d", keyType, k.N.BitLen())
			}
		case *ecdsa.PrivateKey:
			if keyType != dcos.KeyECDSAP256 || k.Curve.Params().Name != "P-256" {
				t.Errorf("key type %q gave ECDSA %s", keyType, k.Curve.Params().Name)
			}
		}
		handshake(t, f.srv, out, "node-2.agent.example.com", true)
		handshake(t, f.srv, out, "node-3.agent.example.com", false)
	}
	if n := len(f.srv.Issued()); n != 2 {
		t.Errorf("the CA signed %d certificates, want 2", n)
	}
}

// handshake serves a TLS connection with the issued key and chain and
// connects to it as serverName, trusting the cluster CA only.
func handshake(t *testing.T, srv *dcostest.Server, out plugin.Issued, serverName string, wantOK bool) {
	t.Helper()
	key, err := x509.ParsePKCS8PrivateKey(out.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: out.Chain, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	roots := x509.NewCertPool()
	for _, der := range out.CACertificates {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		roots.AddCert(c)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12})
	if err == nil {
		_ = conn.Close()
	}
	if (err == nil) != wantOK {
		t.Errorf("TLS handshake as %s: error %v, want success %v", serverName, err, wantOK)
	}
}

func TestIssueProfilesAndRefusals(t *testing.T) {
	f := newFixture(t, dcostest.WithProfile("short", time.Hour))
	b := f.backend(t, "issue.key_type", dcos.KeyECDSAP256)
	out, err := b.Issue(context.Background(), plugin.IssueRequest{Path: "/ca/short", IPAddresses: []string{"10.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := issued(t, f.srv, out)
	if life := time.Until(leaf.NotAfter); life > time.Hour || life < 50*time.Minute {
		t.Errorf("profile short gave a certificate living %v", life)
	}
	if leaf.Subject.CommonName != "10.0.0.1" {
		t.Errorf("CN %q, want the IP when no DNS name is given", leaf.Subject.CommonName)
	}
	for _, c := range []struct {
		req  plugin.IssueRequest
		want string
	}{
		{plugin.IssueRequest{Path: "ca/nope", DNSNames: []string{"a.example.com"}}, `unknown signing profile "nope"`},
		{plugin.IssueRequest{Path: "pki/issue/x", DNSNames: []string{"a.example.com"}}, "want ca"},
		{plugin.IssueRequest{Path: "ca/a/b", DNSNames: []string{"a.example.com"}}, "want ca"},
		{plugin.IssueRequest{Path: "ca", DNSNames: []string{"a.example.com"}, TTL: time.Hour}, "takes no lifetime"},
		{plugin.IssueRequest{Path: "ca"}, "at least one"},
		{plugin.IssueRequest{Path: "ca", DNSNames: []string{"bad name"}}, "not a DNS name"},
		{plugin.IssueRequest{Path: "ca", IPAddresses: []string{"10.0.0.999"}}, "not an IP address"},
	} {
		_, err := b.Issue(context.Background(), c.req)
		if !errors.Is(err, plugin.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Issue %+v: %v, want ErrInvalidConfig with %q", c.req, err, c.want)
		}
	}
}

func TestIssueRefusesNamesNotAskedFor(t *testing.T) {
	f := newFixture(t)
	f.srv.AddSANs("evil.example.com")
	b := f.backend(t, "issue.key_type", dcos.KeyECDSAP256)
	_, err := b.Issue(context.Background(), plugin.IssueRequest{Path: "ca", DNSNames: []string{"a.example.com"}})
	if !errors.Is(err, plugin.ErrInvalidConfig) || !strings.Contains(err.Error(), "evil.example.com") {
		t.Fatalf("a certificate with a name not asked for: %v, want it refused naming the name", err)
	}
}

func TestIssueForbiddenNamesPermission(t *testing.T) {
	f := newFixture(t)
	sa := writeFile(t, "reader.json", f.srv.NewServiceAccount(t, "reader"))
	b := f.backend(t, "auth.service_account_file", sa)
	_, err := b.Issue(context.Background(), plugin.IssueRequest{Path: "ca", DNSNames: []string{"a.example.com"}})
	if !errors.Is(err, plugin.ErrPermissionDenied) || !strings.Contains(err.Error(), "dcos:adminrouter:ops:ca:rw") {
		t.Fatalf("Issue without the CA permission: %v", err)
	}
	f.srv.Grant("reader", "dcos:adminrouter:ops:ca:rw", "full")
	if _, err := b.Issue(context.Background(), plugin.IssueRequest{Path: "ca", DNSNames: []string{"a.example.com"}}); err != nil {
		t.Fatalf("Issue with the CA permission: %v", err)
	}
}

func TestIssueThroughGRPC(t *testing.T) {
	f := newFixture(t)
	client, server := goplugin.TestPluginGRPCConn(t, false, goplugin.PluginSet{
		plugin.PluginName: &launch.GRPCPlugin{Impl: dcos.NewWithLogger(f.logger())},
	})
	// Stop the server before closing the client: Close asks the server to
	// shut down, and go-plugin's two Stops would race.
	t.Cleanup(func() { server.Stop(); _ = client.Close() })
	raw, err := client.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	b := raw.(plugin.Backend)
	if err := b.Configure(context.Background(), f.cfg); err != nil {
		t.Fatal(err)
	}
	info, err := b.Info(context.Background())
	if err != nil || !slices.Contains(info.Capabilities, plugin.CapabilityIssue) {
		t.Fatalf("Info %+v %v: want the issue capability", info, err)
	}
	out, err := b.(plugin.Issuer).Issue(context.Background(), plugin.IssueRequest{Path: "ca", DNSNames: []string{"tm-1.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := issued(t, f.srv, out)
	if !slices.Equal(leaf.DNSNames, []string{"tm-1.example.com"}) {
		t.Errorf("DNS names %v", leaf.DNSNames)
	}
}
