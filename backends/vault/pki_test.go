package vault_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/vault/api"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
)

// pkiRole mounts a PKI engine at mount with a fresh EC root CA and a role
// "spark-node" for *.example.test and IP SANs.
func pkiRole(t testing.TB, root *api.Client, mount string) {
	t.Helper()
	if err := root.Sys().Mount(mount, &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "48h"}}); err != nil {
		t.Fatal(err)
	}
	write(t, root, mount+"/root/generate/internal", map[string]any{
		"common_name": "keyship test root", "ttl": "24h", "key_type": "ec", "key_bits": 256,
	})
	write(t, root, mount+"/roles/spark-node", map[string]any{
		"allowed_domains": "example.test", "allow_subdomains": true, "allow_ip_sans": true,
		"key_type": "ec", "key_bits": 256, "max_ttl": "2h",
	})
}

// grpcBackend serves b in-process over real gRPC, the way the kit does.
func grpcBackend(t *testing.T, b plugin.Backend) plugin.Backend {
	t.Helper()
	client, server := goplugin.TestPluginGRPCConn(t, false, goplugin.PluginSet{plugin.PluginName: &launch.GRPCPlugin{Impl: b}})
	t.Cleanup(func() { server.Stop(); _ = client.Close() }) // server first: go-plugin's Close would Stop it concurrently (a race)
	raw, err := client.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(plugin.Backend)
}

// checkIssued verifies an Issued for hosts: PKCS#8 key matching the leaf,
// chain verifying against the CA certificates for every host, serial as the
// version, lifetime within ttl.
func checkIssued(t *testing.T, got plugin.Issued, hosts []string, ttl time.Duration) *x509.Certificate {
	t.Helper()
	if len(got.Chain) == 0 || len(got.CACertificates) == 0 || len(got.PrivateKey) == 0 {
		t.Fatalf("Issued has %d chain certs, %d CA certs, %d key bytes", len(got.Chain), len(got.CACertificates), len(got.PrivateKey))
	}
	leaf, err := x509.ParseCertificate(got.Chain[0])
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParsePKCS8PrivateKey(got.PrivateKey)
	if err != nil {
		t.Fatalf("PrivateKey is not PKCS#8: %v", err)
	}
	if !key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Error("PrivateKey does not match the leaf")
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, der := range got.CACertificates {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		roots.AddCert(c)
	}
	for _, der := range got.Chain[1:] {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	for _, h := range hosts {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("leaf does not verify for %s: %v", h, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.example.test", Roots: roots}); err == nil {
		t.Error("leaf verifies for a host outside the set")
	}
	serial := new(big.Int)
	if _, ok := serial.SetString(strings.ReplaceAll(got.Version, ":", ""), 16); !ok || serial.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("Version %q is not the leaf's serial %x", got.Version, leaf.SerialNumber)
	}
	if life := time.Until(leaf.NotAfter); life > ttl+time.Minute || life < ttl-5*time.Minute {
		t.Errorf("leaf lives %s, asked for %s", life, ttl)
	}
	return leaf
}

func TestIssueFromPKIRole(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	pkiRole(t, root, "pki")
	b := grpcBackend(t, configured(t, rootConfig(t, s)))
	info, err := b.Info(context.Background())
	if err != nil || !slices.Contains(info.Capabilities, plugin.CapabilityIssue) {
		t.Fatalf("Info capabilities %v (%v), want %q", info.Capabilities, err, plugin.CapabilityIssue)
	}
	is := b.(plugin.Issuer)
	hosts := []string{"node1.example.test", "node2.example.test"}
	got, err := is.Issue(context.Background(), plugin.IssueRequest{
		Path: "pki/issue/spark-node", DNSNames: hosts, IPAddresses: []string{"127.0.0.1"}, TTL: 30 * time.Minute,
	})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	leaf := checkIssued(t, got, hosts, 30*time.Minute)
	if leaf.Subject.CommonName != hosts[0] {
		t.Errorf("CN %q, want the first DNS name", leaf.Subject.CommonName)
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("IP SANs %v", leaf.IPAddresses)
	}
	again, err := is.Issue(context.Background(), plugin.IssueRequest{Path: "pki/issue/spark-node", DNSNames: hosts[:1]})
	if err != nil || again.Version == got.Version {
		t.Errorf("second Issue: %v, version %q (first %q): each call issues a new certificate", err, again.Version, got.Version)
	}

	for _, c := range []struct {
		req  plugin.IssueRequest
		want error
		says string
	}{
		{plugin.IssueRequest{Path: "pki/issue/spark-node", DNSNames: []string{"evil.other.test"}}, plugin.ErrInvalidConfig, "HTTP 400"},
		{plugin.IssueRequest{Path: "pki/issue/no-such-role", DNSNames: []string{"a.example.test"}}, plugin.ErrInvalidConfig, "no-such-role"},
		{plugin.IssueRequest{Path: "pki/sign/spark-node", DNSNames: []string{"a.example.test"}}, plugin.ErrInvalidConfig, "<pki mount>/issue/<role>"},
		{plugin.IssueRequest{Path: "secret/issue/x", DNSNames: []string{"a.example.test"}}, nil, ""},
	} {
		_, err := is.Issue(context.Background(), c.req)
		if err == nil {
			t.Errorf("Issue %+v succeeded", c.req)
			continue
		}
		if c.want != nil && (!errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says)) {
			t.Errorf("Issue %+v: %v, want %v saying %q", c.req, err, c.want, c.says)
		}
	}
}

func TestIssuePermissionDenied(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	pkiRole(t, root, "pki-denied")
	if err := root.Sys().PutPolicy("kv-read", kvReadPolicy); err != nil {
		t.Fatal(err)
	}
	tok := write(t, root, "auth/token/create", map[string]any{"policies": "kv-read", "ttl": "1h"}).Auth.ClientToken
	b := configured(t, map[string]string{"address": s.Addr, "auth.token_file": secretFile(t, tok)})
	_, err := b.Issue(context.Background(), plugin.IssueRequest{Path: "pki-denied/issue/spark-node", DNSNames: []string{"a.example.test"}})
	if !errors.Is(err, plugin.ErrPermissionDenied) || !strings.Contains(err.Error(), `"update" capability on "pki-denied/issue/spark-node"`) {
		t.Errorf("Issue without the policy: %v", err)
	}
}
