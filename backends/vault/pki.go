package vault

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyship/keyship/plugin"
)

// issuePath checks a PKI role path "<mount>/issue/<role>".
func issuePath(p string) (string, error) {
	p = strings.Trim(p, "/")
	i := strings.LastIndex(p, "/issue/")
	if i <= 0 || strings.Contains(p[i+len("/issue/"):], "/") || strings.HasSuffix(p, "/issue/") {
		return "", fmt.Errorf("vault backend: issue path %q: want <pki mount>/issue/<role>, e.g. pki/issue/spark-node: %w", p, plugin.ErrInvalidConfig)
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("vault backend: issue path %q: empty, \".\" or \"..\" segment: %w", p, plugin.ErrInvalidConfig)
		}
	}
	return p, nil
}

// issue implements Backend.Issue.
func (c *conn) issue(ctx context.Context, req plugin.IssueRequest) (plugin.Issued, error) {
	p, err := issuePath(req.Path)
	if err != nil {
		return plugin.Issued{}, err
	}
	if len(req.DNSNames)+len(req.IPAddresses) == 0 {
		return plugin.Issued{}, fmt.Errorf("vault backend: issue from %q: no DNS names or IP addresses: %w", p, plugin.ErrInvalidConfig)
	}
	cn := req.CommonName
	switch {
	case cn != "":
	case len(req.DNSNames) > 0:
		cn = req.DNSNames[0]
	default:
		cn = req.IPAddresses[0]
	}
	body := map[string]any{
		"common_name":          cn,
		"format":               "der",
		"private_key_format":   "pkcs8",
		"exclude_cn_from_sans": false,
	}
	if len(req.DNSNames) > 0 {
		body["alt_names"] = strings.Join(req.DNSNames, ",")
	}
	if len(req.IPAddresses) > 0 {
		body["ip_sans"] = strings.Join(req.IPAddresses, ",")
	}
	if req.TTL > 0 {
		body["ttl"] = fmt.Sprintf("%ds", int64((req.TTL+time.Second-1)/time.Second))
	}
	what := fmt.Sprintf("issue from %q for %s", p, strings.Join(append(append([]string{}, req.DNSNames...), req.IPAddresses...), ","))
	s, err := c.call(ctx, &batch{}, func() (*api.Secret, error) {
		return c.client.Logical().WriteWithContext(ctx, p, body)
	})
	switch {
	case err != nil && statusOf(err) == 403 && !isSealed(err):
		return plugin.Issued{}, fmt.Errorf("vault backend: %s: permission denied: the token's policies must grant the \"update\" capability on %q: %w",
			what, p, plugin.ErrPermissionDenied)
	case err != nil:
		return plugin.Issued{}, mapError(ctx, what, err, c.auth.red)
	case s == nil || s.Data == nil:
		return plugin.Issued{}, fmt.Errorf("vault backend: %s: Vault returned no certificate: %w", what, plugin.ErrUnavailable)
	}
	out, err := issuedFrom(s.Data)
	if err != nil {
		return plugin.Issued{}, fmt.Errorf("vault backend: %s: %v: %w", what, err, plugin.ErrUnavailable)
	}
	c.logger.Info("issued a certificate", "path", p, "serial", out.Version, "hosts", len(req.DNSNames)+len(req.IPAddresses))
	return out, nil
}

// issuedFrom converts a pki/issue answer in DER format. It checks that the
// key matches the leaf; errors never quote the key.
func issuedFrom(data map[string]any) (plugin.Issued, error) {
	der := func(name string, v any) ([]byte, error) {
		s, _ := v.(string)
		if s == "" {
			return nil, fmt.Errorf("answer has no %s", name)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%s is not base64 DER (was format=der honoured?)", name)
		}
		return b, nil
	}
	leafDER, err := der("certificate", data["certificate"])
	if err != nil {
		return plugin.Issued{}, err
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return plugin.Issued{}, fmt.Errorf("certificate: %v", err)
	}
	key, err := der("private_key", data["private_key"])
	if err != nil {
		return plugin.Issued{}, err
	}
	priv, err := x509.ParsePKCS8PrivateKey(key)
	if err != nil {
		clear(key)
		return plugin.Issued{}, fmt.Errorf("private_key is not PKCS#8 (was private_key_format=pkcs8 honoured?)")
	}
	signer, ok := priv.(crypto.Signer)
	if !ok || !publicKeyEqual(signer.Public(), leaf.PublicKey) {
		clear(key)
		return plugin.Issued{}, fmt.Errorf("private_key does not match the certificate")
	}
	var cas [][]byte
	if chain, ok := data["ca_chain"].([]any); ok {
		for i, v := range chain {
			b, err := der(fmt.Sprintf("ca_chain[%d]", i), v)
			if err != nil {
				clear(key)
				return plugin.Issued{}, err
			}
			cas = append(cas, b)
		}
	}
	if len(cas) == 0 {
		b, err := der("issuing_ca", data["issuing_ca"])
		if err != nil {
			clear(key)
			return plugin.Issued{}, err
		}
		cas = [][]byte{b}
	}
	out := plugin.Issued{PrivateKey: key, Chain: [][]byte{leafDER}, CACertificates: cas}
	for _, b := range cas {
		ca, err := x509.ParseCertificate(b)
		if err != nil {
			clear(key)
			return plugin.Issued{}, fmt.Errorf("CA certificate: %v", err)
		}
		if !bytes.Equal(ca.RawSubject, ca.RawIssuer) { // intermediates belong in the chain too
			out.Chain = append(out.Chain, b)
		}
	}
	out.Version, _ = data["serial_number"].(string)
	if out.Version == "" {
		out.Version = fmt.Sprintf("%x", leaf.SerialNumber)
	}
	return out, nil
}

// publicKeyEqual compares two public keys with their Equal methods.
func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
