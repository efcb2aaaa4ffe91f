package dcos

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/keyship/keyship/plugin"
)

// signPath is the DC/OS CA's sign endpoint (Certificate Authority API, base
// path /ca/api/v2/, CFSSL's "sign": required certificate_request, the PEM CSR;
// optional profile, the signing profile). It needs an auth token with
// dcos:adminrouter:ops:ca:rw.
const signPath = "/ca/api/v2/sign"

// caPermission is the permission DC/OS wants for signPath.
const caPermission = "dcos:adminrouter:ops:ca:rw full"

// signRequest is the body of a CFSSL sign request. hosts is not sent: the
// CSR's subject alternative names are the requested hosts.
type signRequest struct {
	CertificateRequest string `json:"certificate_request"`
	Profile            string `json:"profile,omitempty"`
}

// cfsslResponse is CFSSL's response envelope.
type cfsslResponse struct {
	Success bool `json:"success"`
	Result  struct {
		Certificate string `json:"certificate"`
	} `json:"result"`
	Errors []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// issueProfile reads IssueRequest.Path: "ca" or "ca/<profile>", with or
// without a leading "/".
func issueProfile(p string) (string, error) {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(p, "/"), "ca")
	switch {
	case ok && rest == "":
		return "", nil
	case ok && strings.HasPrefix(rest, "/") && len(rest) > 1 && !strings.Contains(rest[1:], "/"):
		return rest[1:], nil
	}
	return "", invalid("issue path %q: want ca (the DC/OS CA's default signing profile) or ca/<profile>", p)
}

// Issue makes a key pair, has the DC/OS CA sign a CSR for req's hosts, and
// returns the key (PKCS#8 DER), the chain leaf first, and the CA bundle's
// root. The certificate must name exactly the requested hosts.
func (b *Backend) Issue(ctx context.Context, req plugin.IssueRequest) (plugin.Issued, error) {
	c, _, err := b.state()
	if err != nil {
		return plugin.Issued{}, err
	}
	if err := ctx.Err(); err != nil {
		return plugin.Issued{}, err
	}
	profile, err := issueProfile(req.Path)
	if err != nil {
		return plugin.Issued{}, err
	}
	if req.TTL != 0 {
		return plugin.Issued{}, invalid("issue %s: the DC/OS CA's sign endpoint takes no lifetime (its signing profile sets it): leave TTL 0 or choose a profile with ca/<profile>", req.Path)
	}
	dns, ips, err := issueHosts(req)
	if err != nil {
		return plugin.Issued{}, err
	}
	cn := req.CommonName
	if cn == "" {
		if len(dns) > 0 {
			cn = dns[0]
		} else {
			cn = ips[0].String()
		}
	}

	key, err := newKey(c.s.keyType)
	if err != nil {
		return plugin.Issued{}, err
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: cn},
		DNSNames:    dns,
		IPAddresses: ips,
	}, key)
	if err != nil {
		return plugin.Issued{}, fmt.Errorf("dcos backend: make CSR: %w", err)
	}
	body, err := json.Marshal(signRequest{
		CertificateRequest: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})),
		Profile:            profile,
	})
	if err != nil {
		return plugin.Issued{}, err
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: signPath, body: body, contentType: "application/json", accept: "application/json"})
	if err != nil {
		return plugin.Issued{}, err
	}
	leaf, extra, err := signAnswer(resp, c.sess.who())
	if err != nil {
		return plugin.Issued{}, err
	}
	if err := checkIssued(leaf, key.Public(), dns, ips); err != nil {
		return plugin.Issued{}, err
	}
	bundle, err := c.caBundle(ctx)
	if err != nil {
		return plugin.Issued{}, err
	}
	chain, root, err := verifyIssued(leaf, extra, bundle)
	if err != nil {
		return plugin.Issued{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return plugin.Issued{}, fmt.Errorf("dcos backend: encode key: %w", err)
	}
	out := plugin.Issued{PrivateKey: keyDER, CACertificates: [][]byte{root.Raw}, Version: leaf.SerialNumber.Text(16)}
	for _, cert := range chain {
		out.Chain = append(out.Chain, cert.Raw)
	}
	b.logger.Info("DC/OS CA issued a certificate", "serial", out.Version, "dns", dns, "ips", ips, "not_after", leaf.NotAfter.UTC().Format("2006-01-02T15:04:05Z"), "profile", profile)
	return out, nil
}

// issueHosts checks and normalises the requested names.
func issueHosts(req plugin.IssueRequest) ([]string, []net.IP, error) {
	if len(req.DNSNames)+len(req.IPAddresses) == 0 {
		return nil, nil, invalid("issue %s: name at least one DNS name or IP address", req.Path)
	}
	var dns []string
	for _, d := range req.DNSNames {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if d == "" || strings.ContainsAny(d, " /:@\t") || net.ParseIP(d) != nil {
			return nil, nil, invalid("issue %s: %q is not a DNS name", req.Path, d)
		}
		if !slices.Contains(dns, d) {
			dns = append(dns, d)
		}
	}
	var ips []net.IP
	for _, s := range req.IPAddresses {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, nil, invalid("issue %s: %q is not an IP address", req.Path, s)
		}
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	return dns, ips, nil
}

func newKey(keyType string) (crypto.Signer, error) {
	var (
		k   crypto.Signer
		err error
	)
	if keyType == KeyECDSAP256 {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return nil, fmt.Errorf("dcos backend: generate %s key: %w", keyType, err)
	}
	return k, nil
}

// signAnswer reads the sign endpoint's answer: the leaf and any further
// certificates sent with it.
func signAnswer(resp *response, who string) (*x509.Certificate, []*x509.Certificate, error) {
	var env cfsslResponse
	parsed := json.Unmarshal(resp.body, &env) == nil
	var msgs []string
	for _, e := range env.Errors {
		msgs = append(msgs, fmt.Sprintf("%d %s", e.Code, e.Message))
	}
	switch {
	case resp.status == http.StatusForbidden:
		return nil, nil, fmt.Errorf("dcos backend: %s may not have the DC/OS CA sign certificates: DC/OS wants the permission %s (or dcos:superuser): %w", who, caPermission, plugin.ErrPermissionDenied)
	case resp.status != http.StatusOK && len(msgs) > 0 && resp.status < 500:
		return nil, nil, invalid("%s: the DC/OS CA refused the request (%d): %s", signPath, resp.status, strings.Join(msgs, "; "))
	case resp.status != http.StatusOK:
		return nil, nil, statusError(resp.status, "POST "+signPath)
	case !parsed || !env.Success || env.Result.Certificate == "":
		return nil, nil, fmt.Errorf("dcos backend: %s: the answer is not a successful CFSSL envelope with result.certificate (%s): %w", signPath, strings.Join(msgs, "; "), plugin.ErrUnavailable)
	}
	certs, err := parseCertificates([]byte(env.Result.Certificate))
	if err != nil || len(certs) == 0 {
		return nil, nil, fmt.Errorf("dcos backend: %s: result.certificate holds no PEM certificate: %w", signPath, plugin.ErrUnavailable)
	}
	return certs[0], certs[1:], nil
}

// checkIssued refuses a certificate that is not for our key or does not name
// exactly the requested hosts (a CA profile that adds or drops names).
func checkIssued(leaf *x509.Certificate, pub crypto.PublicKey, dns []string, ips []net.IP) error {
	if eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(leaf.PublicKey) {
		return invalid("%s: the certificate the CA returned is not for the key in the CSR", signPath)
	}
	got := slices.Sorted(slices.Values(lower(leaf.DNSNames)))
	want := slices.Sorted(slices.Values(dns))
	var gotIPs, wantIPs []string
	for _, ip := range leaf.IPAddresses {
		gotIPs = append(gotIPs, ip.String())
	}
	for _, ip := range ips {
		wantIPs = append(wantIPs, ip.String())
	}
	slices.Sort(gotIPs)
	slices.Sort(wantIPs)
	if !slices.Equal(got, want) || !slices.Equal(gotIPs, wantIPs) {
		return invalid("%s: the certificate names DNS %v and IPs %v, but %v and %v were requested (does the CA profile override the CSR's hosts?)", signPath, got, gotIPs, want, wantIPs)
	}
	return nil
}

func lower(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(n)
	}
	return out
}

// verifyIssued verifies leaf against the CA bundle's self-signed roots, the
// bundle's other certificates and extra serving as intermediates. It returns
// the chain leaf first without the root, and the root.
func verifyIssued(leaf *x509.Certificate, extra, bundle []*x509.Certificate) ([]*x509.Certificate, *x509.Certificate, error) {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range bundle {
		if c.CheckSignatureFrom(c) == nil {
			roots.AddCert(c)
		} else {
			inter.AddCert(c)
		}
	}
	for _, c := range extra {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, nil, invalid("%s: the certificate does not chain to the cluster CA at %s: %v", signPath, caPath, err)
	}
	chain := chains[0]
	return chain[:len(chain)-1], chain[len(chain)-1], nil
}
