package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/keyship/keyship/shipper/fetch"
)

// fetchCertificate loads FetchCertFile/FetchKeyFile or makes a self-signed
// certificate for addr, written to FetchCAOut when set.
func (d *daemon) fetchCertificate(addr net.Addr) (tls.Certificate, error) {
	f := d.c
	if f.FetchCertFile != "" || f.FetchKeyFile != "" {
		return tls.LoadX509KeyPair(f.FetchCertFile, f.FetchKeyFile)
	}
	host, _, _ := net.SplitHostPort(addr.String())
	hosts := []string{host, "localhost", "127.0.0.1"}
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, name)
	}
	cert, pemBytes, err := fetch.SelfSigned(hosts, 365*24*time.Hour)
	if err != nil {
		return tls.Certificate{}, err
	}
	if f.FetchCAOut != "" {
		if err := os.WriteFile(f.FetchCAOut, pemBytes, 0o644); err != nil {
			return tls.Certificate{}, err
		}
	}
	d.c.Logger.Warn("fetch server uses a self-signed certificate: agents must trust it (pass --fetch-cert/--fetch-key for a real one)", "ca_file", f.FetchCAOut)
	return cert, nil
}

// MutualTLS is the API's TLS config for a tcp:// Listen: the server
// certificate of certFile and keyFile, requiring client certificates signed
// by clientCA.
func MutualTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" || clientCA == "" {
		return nil, errors.New("a tcp:// API needs mutual TLS: --tls-cert, --tls-key and --client-ca")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(clientCA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("--client-ca %s: no PEM certificates", clientCA)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}, nil
}
