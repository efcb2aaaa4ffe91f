package materialize

import (
	"crypto/x509"
	"net"
	"strings"
)

// coversHost reports whether cert is valid for host as a TLS client with
// hostname verification checks it (RFC 6125, and what Java's HostnameChecker
// and OpenSSL's X509_check_host do by default):
//   - an IP address matches an IP address SAN only;
//   - a DNS name matches the DNS SANs; the subject's common name is used only
//     when the certificate has no DNS SAN;
//   - a wildcard is a whole left-most label ("*.example.com"), matches
//     exactly one label, and needs at least two labels after it;
//   - names compare case-insensitively, without a trailing dot.
func coversHost(cert *x509.Certificate, host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		for _, san := range cert.IPAddresses {
			if san.Equal(ip) {
				return true
			}
		}
		return false
	}
	names := cert.DNSNames
	if len(names) == 0 && cert.Subject.CommonName != "" {
		names = []string{cert.Subject.CommonName}
	}
	for _, pattern := range names {
		if matchHostname(pattern, host) {
			return true
		}
	}
	return false
}

// matchHostname matches host against one DNS name of a certificate.
func matchHostname(pattern, host string) bool {
	pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if pattern == "" || host == "" {
		return false
	}
	if !strings.HasPrefix(pattern, "*.") {
		return pattern == host
	}
	suffix := pattern[1:] // ".example.com"
	if strings.Count(suffix, ".") < 2 || strings.Contains(suffix, "*") {
		return false // "*.com", or a second wildcard
	}
	label, rest, ok := strings.Cut(host, ".")
	return ok && label != "" && "."+rest == suffix
}

// certNames lists what a certificate covers, for messages: DNS and IP SANs,
// or CN=... when it has no DNS SAN.
func certNames(cert *x509.Certificate) string {
	var names []string
	names = append(names, cert.DNSNames...)
	if len(cert.DNSNames) == 0 && cert.Subject.CommonName != "" {
		names = append(names, "CN="+cert.Subject.CommonName+" (no DNS subject alternative name)")
	}
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "no names"
	}
	return strings.Join(names, ", ")
}
