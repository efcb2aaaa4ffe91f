package dcos

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/plugin"
)

// caPath is where the cluster serves its CA bundle (DC/OS docs, "Obtaining
// the DC/OS CA bundle": curl <cluster>/ca/dcos-ca.crt). Fetching it needs no
// auth token.
const caPath = "/ca/dcos-ca.crt"

// maxResponse bounds every answer the backend reads: a secret is at most
// about 1 MB in DC/OS (binary secrets are stored base64-encoded), so 8 MiB
// leaves room while stopping a broken peer from filling memory.
const maxResponse = 8 << 20

// cluster talks to one DC/OS cluster: TLS trust, the auth session, and
// authenticated requests. It is safe for concurrent use.
type cluster struct {
	s      *settings
	logger hclog.Logger
	sess   *session

	mu     sync.Mutex
	client *http.Client        // nil until trust is settled (ca_sha256 needs a fetch)
	bundle []*x509.Certificate // the CA bundle at /ca/dcos-ca.crt, once fetched
}

func newCluster(s *settings, logger hclog.Logger) (*cluster, error) {
	c := &cluster{s: s, logger: logger}
	c.sess = &session{c: c}
	switch {
	case s.skipVerify:
		c.client = newHTTPClient(s, nil, true)
	case s.caFile != "":
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(s.caPEM) {
			return nil, invalid("ca_file %q: no usable PEM certificate", s.caFile)
		}
		c.client = newHTTPClient(s, pool, false)
	case s.caSHA256 == nil:
		c.client = newHTTPClient(s, nil, false) // the system's roots
	}
	return c, nil
}

// newHTTPClient returns a client that verifies the cluster against roots
// (nil: the system's) unless skip is set, and never follows redirects: a
// redirect would carry the auth token to an address nobody configured.
func newHTTPClient(s *settings, roots *x509.CertPool, skip bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            roots,
		InsecureSkipVerify: skip, //nolint:gosec // only with tls_skip_verify=true, logged as a warning
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       s.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// httpClient returns the verified client, pinning the cluster CA first when
// ca_sha256 is set.
func (c *cluster) httpClient(ctx context.Context) (*http.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client, nil
	}
	pinned, err := c.fetchPinnedCA(ctx)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(pinned)
	c.client = newHTTPClient(c.s, pool, false)
	return c.client, nil
}

// fetchPinnedCA fetches /ca/dcos-ca.crt without verification (the CA is what
// is being established), keeps the certificate whose SHA-256 is the pin, and
// checks that the server which sent it has a certificate chaining to it.
func (c *cluster) fetchPinnedCA(ctx context.Context) (*x509.Certificate, error) {
	boot := newHTTPClient(c.s, nil, true)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.s.baseURL+caPath, nil)
	if err != nil {
		return nil, invalid("url %q: %v", c.s.baseURL, err)
	}
	resp, err := boot.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, "fetch "+caPath+" to check ca_sha256", err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, c.transportError(ctx, "fetch "+caPath, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp.StatusCode, "fetch "+caPath+" to check ca_sha256")
	}
	certs, err := parseCertificates(data)
	if err != nil || len(certs) == 0 {
		return nil, invalid("%s%s holds no PEM certificate; cannot check ca_sha256", c.s.baseURL, caPath)
	}
	var pinned *x509.Certificate
	var seen []string
	for _, cert := range certs {
		sum := sha256.Sum256(cert.Raw)
		if bytes.Equal(sum[:], c.s.caSHA256) {
			pinned = cert
		}
		seen = append(seen, hex.EncodeToString(sum[:]))
	}
	if pinned == nil {
		return nil, invalid("ca_sha256 pin mismatch: %s%s serves certificates with SHA-256 %s, none is the pinned %s; refusing to trust the cluster",
			c.s.baseURL, caPath, strings.Join(seen, ", "), hex.EncodeToString(c.s.caSHA256))
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return nil, invalid("%s: no TLS peer certificate", c.s.baseURL)
	}
	roots := x509.NewCertPool()
	roots.AddCert(pinned)
	inter := x509.NewCertPool()
	for _, pc := range resp.TLS.PeerCertificates[1:] {
		inter.AddCert(pc)
	}
	if _, err := resp.TLS.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: c.s.host, Roots: roots, Intermediates: inter}); err != nil {
		return nil, invalid("the TLS certificate of %s does not verify against the CA pinned by ca_sha256: %v", c.s.baseURL, err)
	}
	c.logger.Debug("pinned the DC/OS CA", "sha256", hex.EncodeToString(c.s.caSHA256), "subject", pinned.Subject.String())
	return pinned, nil
}

// request is one API call.
type request struct {
	method      string
	path        string // escaped, from the cluster root, e.g. /secrets/v1/secret/default/spark/keystore
	query       string // raw query without "?", or ""
	body        []byte
	contentType string
	accept      string
}

// response is an API answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// send makes one request with token (if not empty) as the auth token.
func (c *cluster) send(ctx context.Context, r request, token string) (*response, error) {
	client, err := c.httpClient(ctx)
	if err != nil {
		return nil, err
	}
	u := c.s.baseURL + r.path
	if r.query != "" {
		u += "?" + r.query
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, invalid("request %s %s: %v", r.method, r.path, err)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	if token != "" {
		// Secrets API and CA API docs: "Authorization: token=<auth token>".
		req.Header.Set("Authorization", "token="+token)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, r.method+" "+r.path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		clear(data)
		return nil, c.transportError(ctx, r.method+" "+r.path, err)
	}
	if len(data) > maxResponse {
		clear(data)
		return nil, invalid("%s %s: the answer is over the backend's %d byte limit", r.method, r.path, maxResponse)
	}
	c.logger.Debug("DC/OS API call", "method", r.method, "path", r.path, "status", resp.StatusCode, "bytes", len(data), "duration", time.Since(start).Round(time.Millisecond).String())
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// batchError is a failure that concerns every ref of a batch (refused
// credentials, a cluster that fails TLS verification), so Get fails the
// batch instead of trying again for each ref.
type batchError struct{ err error }

func (e *batchError) Error() string { return e.err.Error() }
func (e *batchError) Unwrap() error { return e.err }

// do makes an authenticated request. When the cluster answers 401 it logs in
// again once (or takes the token another caller just obtained) and repeats
// the request once; a second 401 is ErrPermissionDenied. It never loops.
func (c *cluster) do(ctx context.Context, r request) (*response, error) {
	tok, gen, err := c.sess.current(ctx)
	if err != nil {
		return nil, authFailure(ctx, err)
	}
	resp, err := c.send(ctx, r, tok)
	if err != nil || resp.status != http.StatusUnauthorized {
		return resp, err
	}
	c.logger.Debug("DC/OS refused the auth token; logging in again", "who", c.sess.who(), "path", r.path)
	if tok, _, err = c.sess.refresh(ctx, gen); err != nil {
		return nil, authFailure(ctx, err)
	}
	if resp, err = c.send(ctx, r, tok); err != nil || resp.status != http.StatusUnauthorized {
		return resp, err
	}
	return nil, &batchError{fmt.Errorf("dcos backend: %s %s: the cluster refused the auth token of %s with 401 right after a new one was obtained (is the account disabled, or the IAM unable to verify its tokens?): %w",
		r.method, r.path, c.sess.who(), plugin.ErrPermissionDenied)}
}

// authFailure marks a failure to obtain a token as a batchError, except a
// cancelled context or an unavailable cluster: those may pass before the next
// ref, and the host retries ErrUnavailable per ref.
func authFailure(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, plugin.ErrUnavailable) {
		return err
	}
	return &batchError{err}
}

// statusError maps an unexpected HTTP status to a sentinel: 5xx, 429 and 408
// are ErrUnavailable (the host retries those); anything else is a request
// the cluster will not answer as asked, ErrInvalidConfig.
func statusError(status int, what string) error {
	switch {
	case status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout:
		return fmt.Errorf("dcos backend: %s: the cluster answered %d %s: %w", what, status, http.StatusText(status), plugin.ErrUnavailable)
	case status >= 300 && status < 400:
		return invalid("%s: the cluster answered %d %s (a redirect; set url to the address that serves the DC/OS APIs)", what, status, http.StatusText(status))
	default:
		return invalid("%s: the cluster answered %d %s", what, status, http.StatusText(status))
	}
}

// transportError maps a failed round trip: the caller's cancelled context
// stays itself, a certificate that does not verify is ErrInvalidConfig (a
// retry cannot fix it), anything else (refused, reset, timeout) is
// ErrUnavailable.
func (c *cluster) transportError(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("dcos backend: %s: %w", what, ctxErr)
	}
	var (
		verr *tls.CertificateVerificationError
		uae  x509.UnknownAuthorityError
		hne  x509.HostnameError
		cie  x509.CertificateInvalidError
	)
	if errors.As(err, &verr) || errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie) {
		var hint string
		switch {
		case c.s.caFile != "":
			hint = fmt.Sprintf("the cluster's certificate does not verify against ca_file %q", c.s.caFile)
		case c.s.caSHA256 != nil:
			hint = "the cluster's certificate does not verify against the CA pinned by ca_sha256"
		default:
			hint = "set ca_file to the cluster's dcos-ca.crt, or ca_sha256 to its SHA-256"
		}
		return invalid("%s: TLS verification of %s failed: %v; %s", what, c.s.baseURL, err, hint)
	}
	return fmt.Errorf("dcos backend: %s: %v: %w", what, err, plugin.ErrUnavailable)
}

// caBundle returns the cluster's CA bundle from /ca/dcos-ca.crt, fetched
// once over the verified connection.
func (c *cluster) caBundle(ctx context.Context) ([]*x509.Certificate, error) {
	c.mu.Lock()
	b := c.bundle
	c.mu.Unlock()
	if b != nil {
		return b, nil
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: caPath}, "")
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, statusError(resp.status, "fetch the CA bundle "+caPath)
	}
	certs, err := parseCertificates(resp.body)
	if err != nil || len(certs) == 0 {
		return nil, invalid("%s holds no PEM certificate", caPath)
	}
	c.mu.Lock()
	c.bundle = certs
	c.mu.Unlock()
	return certs, nil
}
