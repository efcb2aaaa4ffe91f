// Package testca makes throwaway certificate authorities and node certificates
// for tests and for keyship demo. Never for production: keys live in memory,
// validity is short, and nothing is revoked or audited.
//
// Quickstart:
//
//	ca, err := testca.NewCA("keyship test CA")
//	leaf, err := ca.Issue("node1.example.com", testca.WithDNS("node1.example.com"))
//	// leaf.Key signs; leaf.Chain is [leaf certificate, CA certificate].
package testca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// DefaultValidity is how long a certificate is valid when no WithValidity
// option is given. It starts one hour in the past to absorb clock skew.
const DefaultValidity = 90 * 24 * time.Hour

// CA is a certificate authority that signs node certificates.
type CA struct {
	// Cert is the CA's self-signed certificate.
	Cert *x509.Certificate
	// Key is the CA's private key.
	Key crypto.Signer
}

// Leaf is a node's private key and its certificate chain.
type Leaf struct {
	// Key is the node's private key.
	Key crypto.Signer
	// Chain is the node certificate followed by the CA certificate.
	Chain []*x509.Certificate
}

// Option changes how NewCA or Issue makes a certificate.
type Option func(*config)

type config struct {
	rsa       bool
	dns       []string
	ips       []net.IP
	notBefore time.Time
	notAfter  time.Time
}

// WithRSA makes an RSA 2048 key instead of the default ECDSA P-256 key.
// RSA key generation is slow: tests should make few RSA keys.
func WithRSA() Option {
	return func(c *config) { c.rsa = true }
}

// WithDNS adds DNS subject alternative names. The common name is not copied
// into the SANs: a certificate without WithDNS has no DNS SAN.
func WithDNS(names ...string) Option {
	return func(c *config) { c.dns = append(c.dns, names...) }
}

// WithIPs adds IP address subject alternative names.
func WithIPs(ips ...net.IP) Option {
	return func(c *config) { c.ips = append(c.ips, ips...) }
}

// WithValidity sets the certificate's NotBefore and NotAfter, e.g. to make an
// expired certificate.
func WithValidity(notBefore, notAfter time.Time) Option {
	return func(c *config) { c.notBefore, c.notAfter = notBefore, notAfter }
}

func newConfig(opts []Option) (*config, error) {
	now := time.Now()
	c := &config{
		notBefore: now.Add(-time.Hour).Truncate(time.Second),
		notAfter:  now.Add(DefaultValidity).Truncate(time.Second),
	}
	for _, opt := range opts {
		opt(c)
	}
	if !c.notAfter.After(c.notBefore) {
		return nil, errors.New("testca: NotAfter must be after NotBefore")
	}
	return c, nil
}

func (c *config) newKey() (crypto.Signer, error) {
	if c.rsa {
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serialNumber() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// NewCA makes a self-signed CA whose subject is CN=cn.
func NewCA(cn string, opts ...Option) (*CA, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	key, err := c.newKey()
	if err != nil {
		return nil, fmt.Errorf("testca: generate CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, fmt.Errorf("testca: serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             c.notBefore,
		NotAfter:              c.notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              c.dns,
		IPAddresses:           c.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("testca: sign CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testca: parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Issue makes a node key and a certificate for CN=cn signed by ca, usable for
// both TLS server and client authentication.
func (ca *CA) Issue(cn string, opts ...Option) (*Leaf, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	key, err := c.newKey()
	if err != nil {
		return nil, fmt.Errorf("testca: generate key for %q: %w", cn, err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, fmt.Errorf("testca: serial number: %w", err)
	}
	usage := x509.KeyUsageDigitalSignature
	if c.rsa {
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             c.notBefore,
		NotAfter:              c.notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              c.dns,
		IPAddresses:           c.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("testca: sign certificate for %q: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testca: parse certificate for %q: %w", cn, err)
	}
	return &Leaf{Key: key, Chain: []*x509.Certificate{cert, ca.Cert}}, nil
}
