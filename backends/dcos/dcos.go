// Package dcos is the keyship backend for the DC/OS Enterprise secret store
// and certificate authority. It reads secrets through the Secrets API, logs
// in through the IAM (service account, user and password, or a given auth
// token), verifies the cluster's TLS with the cluster CA, and issues per-host
// certificates from the DC/OS CA.
//
// Refs are the DC/OS secret paths users already write: /spark/keystore and
// spark/keystore both read the secret spark/keystore of the configured store.
// A ref may select a #field of a text secret whose value is a JSON object
// (e.g. /sa-secret#private_key); DC/OS secrets have no versions, so @version
// is refused.
//
// Settings (the host config's config: block; nested names are flattened with
// dots):
//
//	url                        cluster URL, https only (required), e.g. https://master.mesos
//	ca_file                    PEM file with the cluster CA (dcos-ca.crt) to verify the cluster
//	ca_sha256                  hex SHA-256 of the CA certificate (DER) served at /ca/dcos-ca.crt
//	                           (openssl x509 -in dcos-ca.crt -noout -fingerprint -sha256; colons
//	                           allowed); the backend fetches it once and trusts it only if it matches
//	tls_skip_verify            "true" to skip TLS verification; logged as a warning, like
//	                           dcos config set core.ssl_verify false. Set at most one of
//	                           ca_file, ca_sha256 and tls_skip_verify; none means the system roots
//	store                      secret store name (default "default")
//	timeout                    per-request timeout (default 30s)
//	version_key_file           file with the key for secret versions (optional, ≥ 16 bytes)
//	issue.key_type             key of per-host certificates: rsa-2048 (default) or ecdsa-p256
//	auth.method                service_account | token | password (required)
//	auth.service_account_file  service_account: the service-account secret JSON
//	                           {"scheme": "RS256", "uid", "private_key", "login_endpoint"}
//	auth.service_account_env   service_account: or an environment variable holding that JSON,
//	                           which is how DC/OS hands a secret from the store to a task
//	                           (run as a plugin, list the variable under the backend's env
//	                           in the host config: plugins get a minimal environment)
//	auth.token_file            token: a file with an auth token (dcos config show core.dcos_acs_token)
//	auth.uid                   password: the user's uid
//	auth.password_file         password: a file with the user's password
//
// The endpoints it follows, as documented for DC/OS Enterprise 1.11-2.x:
//
//   - POST /acs/api/v1/auth/login (IAM API, LoginObject): {"uid", "token"} with a
//     service login token (an RS256 JWT with claims uid and exp, exp at most 10
//     minutes ahead, signed with the service account's private key), or
//     {"uid", "password"}; the answer {"token"} is an RS256 JWT whose exp the
//     backend reads to log in again shortly before it expires. A 401 makes it
//     log in once more and repeat the request once, never in a loop.
//   - GET /secrets/v1/secret/<store>/<path> with "Authorization: token=<auth token>"
//     and no Accept header, so the secret comes back as it was stored: text as
//     application/json {"value"}, binary as application/octet-stream ("Text and
//     binary secrets", Secrets API). Names whose last segment starts with
//     __dcos_base64__ (the DC/OS 1.10 convention for binary content) are
//     base64-decoded. ?list=true answers {"array": [paths below the given one]}.
//   - GET /ca/dcos-ca.crt, the cluster CA bundle ("Obtaining the DC/OS CA bundle").
//   - POST /ca/api/v2/sign (Certificate Authority API, CFSSL's sign endpoint):
//     {"certificate_request": <PEM CSR>, "profile"?} answered by CFSSL's
//     envelope {"success", "result": {"certificate"}, "errors", "messages"}.
//
// Errors: 401 after a fresh login and refused logins are ErrPermissionDenied
// naming the uid; 403 is ErrPermissionDenied naming the permission DC/OS wants
// (dcos:secrets:default:/spark/keystore read); 404 is ErrNotFound; 5xx,
// refused connections and timeouts are ErrUnavailable, which the host retries.
// No token, key or password appears in a log line or an error.
//
// Per-host certificates (plugin.Issuer): IssueRequest.Path is "ca" for the
// CA's default signing profile or "ca/<profile>" for a named CFSSL profile; as
// a keyship ref that is dcos:ca or dcos:ca/<profile>, the hosts coming from the
// job. The backend makes the key pair itself (RSA 2048 by default: the
// default cipher suites of libprocess and Flink authenticate with RSA only;
// issue.key_type=ecdsa-p256 for peers with ECDSA suites, whose keys are
// smaller and made in microseconds), sends a CSR whose subject alternative
// names are exactly the requested hosts, checks that the certificate it gets
// back has that key, exactly those names and a chain to /ca/dcos-ca.crt, and
// returns the key (PKCS#8), the chain and the CA.
package dcos

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/plugin"
)

// Name is the backend's name in Info and in host configs.
const Name = "dcos"

// Version is the backend's release version.
const Version = "0.1.0"

// base64Prefix marks a secret whose value is base64 text of binary content
// (DC/OS 1.10 could store text only).
const base64Prefix = "__dcos_base64__"

// Backend reads secrets from a DC/OS cluster. Create it with New or
// NewWithLogger; it is safe for concurrent use once configured.
type Backend struct {
	logger hclog.Logger

	mu         sync.RWMutex
	c          *cluster
	versionKey []byte
}

// New returns an unconfigured DC/OS backend that logs through
// plugin.NewLogger: hclog JSON on stderr, which the keyship host folds into
// its own log when the backend runs as a plugin.
func New() plugin.Backend {
	return NewWithLogger(plugin.NewLogger(Name))
}

// NewWithLogger returns an unconfigured DC/OS backend that logs to logger
// (nil: nowhere). Use it to run the backend in-process.
func NewWithLogger(logger hclog.Logger) *Backend {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Backend{logger: logger}
}

// Info describes the DC/OS backend; it lists secrets and issues certificates.
func (b *Backend) Info(context.Context) (plugin.Info, error) {
	return plugin.Info{
		Name:             Name,
		Version:          Version,
		ProtocolVersions: []uint32{plugin.ProtocolVersion},
		Capabilities:     []string{plugin.CapabilityList, plugin.CapabilityIssue, plugin.CapabilityMesosReference},
	}, nil
}

// Configure checks the settings (see the package doc) and reads the files
// they name. It does not contact the cluster: the first Get logs in.
func (b *Backend) Configure(_ context.Context, config map[string]string) error {
	s, err := parseSettings(config)
	if err != nil {
		return err
	}
	c, err := newCluster(s, b.logger)
	if err != nil {
		return err
	}
	key := s.versionKey
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return fmt.Errorf("dcos backend: version key: %w", err)
		}
	}
	if s.skipVerify {
		b.logger.Warn("TLS VERIFICATION OF THE DC/OS CLUSTER IS OFF (tls_skip_verify=true): anyone on the network path can read every secret and the auth token; set ca_file or ca_sha256 instead",
			"url", s.baseURL)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.c, b.versionKey = c, key
	return nil
}

func (b *Backend) state() (*cluster, []byte, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.c == nil {
		return nil, nil, fmt.Errorf("dcos backend: used before Configure: %w", plugin.ErrInvalidConfig)
	}
	return b.c, b.versionKey, nil
}

// Get reads each ref from the Secrets API, one after the other. Per-ref
// failures are ErrNotFound, ErrPermissionDenied (403, naming the permission),
// ErrInvalidConfig (a malformed ref) or ErrUnavailable. A failure to
// authenticate fails the whole batch, so that bad credentials cause one login
// attempt, not one per ref.
func (b *Backend) Get(ctx context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	c, key, err := b.state()
	if err != nil {
		return nil, err
	}
	out := make([]plugin.Result, len(refs))
	for i, ref := range refs {
		if err := ctx.Err(); err != nil {
			zeroResults(out)
			return nil, err
		}
		out[i] = read(ctx, c, key, ref)
		var ae *batchError
		if errors.As(out[i].Err, &ae) || ctx.Err() != nil {
			err := out[i].Err
			zeroResults(out)
			return nil, err
		}
	}
	return out, nil
}

func zeroResults(rs []plugin.Result) {
	for _, r := range rs {
		clear(r.Secret.Data)
	}
}

// secretPath turns a ref path into a store path: "/spark/keystore" and
// "spark/keystore" are both "spark/keystore". Empty, ".", ".." and empty
// segments are refused.
func secretPath(p string, allowRoot bool) (string, error) {
	rel := strings.TrimPrefix(p, "/")
	if rel == "" {
		if allowRoot {
			return "", nil
		}
		return "", invalid("ref %q names no secret", p)
	}
	for seg := range strings.SplitSeq(rel, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", invalid("ref %q: want a DC/OS secret path such as /spark/keystore (no empty, \".\" or \"..\" segments)", p)
		}
		if strings.ContainsFunc(seg, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return "", invalid("ref %q: control characters are not allowed in a secret path", p)
		}
	}
	return rel, nil
}

// escapePath escapes each segment of a store path for the URL.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func read(ctx context.Context, c *cluster, versionKey []byte, ref plugin.Ref) plugin.Result {
	if ref.Version != "" {
		return plugin.Result{Err: invalid("ref %q: DC/OS secrets have no versions; drop @%s", ref.String(), ref.Version)}
	}
	p, err := secretPath(ref.Path, false)
	if err != nil {
		return plugin.Result{Err: err}
	}
	store := c.s.store
	// No Accept header: the Secrets API then answers in the stored format and
	// says which in Content-Type.
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/secrets/v1/secret/" + url.PathEscape(store) + "/" + escapePath(p)})
	if err != nil {
		return plugin.Result{Err: err}
	}
	defer clear(resp.body)
	switch resp.status {
	case http.StatusOK:
	case http.StatusForbidden:
		return plugin.Result{Err: fmt.Errorf("dcos backend: %s may not read secret /%s of store %q: DC/OS wants the permission dcos:secrets:%s:/%s read: %w",
			c.sess.who(), p, store, store, p, plugin.ErrPermissionDenied)}
	case http.StatusNotFound:
		return plugin.Result{Err: fmt.Errorf("dcos backend: no secret /%s in store %q: %w", p, store, plugin.ErrNotFound)}
	default:
		return plugin.Result{Err: statusError(resp.status, "read secret /"+p)}
	}
	data, kind, err := secretValue(resp, p)
	if err != nil {
		return plugin.Result{Err: err}
	}
	meta := map[string]string{"type": kind, "store": store}
	if name := p[strings.LastIndex(p, "/")+1:]; strings.HasPrefix(name, base64Prefix) {
		decoded, err := decodeBase64(data)
		clear(data)
		if err != nil {
			return plugin.Result{Err: invalid("secret /%s is named %s… but its value is not base64", p, base64Prefix)}
		}
		data = decoded
		meta["decoded"] = "base64"
	}
	if ref.Field != "" {
		field, err := selectField(data, ref.Field, p)
		clear(data)
		if err != nil {
			return plugin.Result{Err: err}
		}
		data = field
	}
	mac := hmac.New(sha256.New, versionKey)
	mac.Write(data)
	return plugin.Result{Secret: plugin.Secret{
		Data:     data,
		Version:  "h1:" + hex.EncodeToString(mac.Sum(nil))[:32],
		Metadata: meta,
	}}
}

// secretValue returns a secret's bytes and "text" or "binary", by the
// response's Content-Type.
func secretValue(resp *response, p string) ([]byte, string, error) {
	mt, _, err := mime.ParseMediaType(resp.header.Get("Content-Type"))
	if err != nil {
		mt = ""
	}
	switch mt {
	case "application/octet-stream":
		return slices.Clone(resp.body), "binary", nil
	case "application/json":
		var v struct {
			Value *string `json:"value"`
		}
		// The decoder's error could quote part of the secret: it is not shown.
		if json.Unmarshal(resp.body, &v) != nil || v.Value == nil {
			return nil, "", fmt.Errorf("dcos backend: secret /%s: the answer is not the documented {\"value\": …}: %w", p, plugin.ErrUnavailable)
		}
		return []byte(*v.Value), "text", nil
	default:
		return nil, "", invalid("secret /%s: the cluster answered with Content-Type %q, neither a text secret (application/json) nor a binary one (application/octet-stream); is url the DC/OS cluster?", p, mt)
	}
}

// decodeBase64 decodes standard base64, padded or not, ignoring line breaks
// and spaces (GNU base64 wraps its output).
func decodeBase64(data []byte) ([]byte, error) {
	compact := make([]byte, 0, len(data))
	for _, c := range data {
		if c != '\n' && c != '\r' && c != ' ' && c != '\t' {
			compact = append(compact, c)
		}
	}
	defer clear(compact)
	enc := base64.StdEncoding
	if len(compact)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	out := make([]byte, enc.DecodedLen(len(compact)))
	n, err := enc.Decode(out, compact)
	if err != nil {
		clear(out)
		return nil, err
	}
	return out[:n], nil
}

// selectField returns the string field name of a JSON object secret.
func selectField(data []byte, name, p string) ([]byte, error) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return nil, invalid("ref /%s#%s: the secret is not a JSON object, so it has no fields", p, name)
	}
	defer func() {
		for _, v := range obj {
			clear(v)
		}
	}()
	raw, ok := obj[name]
	if !ok {
		return nil, fmt.Errorf("dcos backend: secret /%s has no field %q: %w", p, name, plugin.ErrNotFound)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, invalid("ref /%s#%s: the field is not a string", p, name)
	}
	return []byte(s), nil
}

// List returns the secrets and directories directly under prefix, as ref
// paths ("/spark/keystore", "/spark/tls/"), sorted. It asks the Secrets API
// for ?list=true, which names every secret below prefix.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	c, _, err := b.state()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := secretPath(strings.TrimSuffix(prefix, "/"), true)
	if err != nil {
		return nil, err
	}
	store := c.s.store
	path := "/secrets/v1/secret/" + url.PathEscape(store) + "/" + escapePath(p)
	if p == "" {
		path = "/secrets/v1/secret/" + url.PathEscape(store) + "/"
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, query: "list=true", accept: "application/json"})
	if err != nil {
		return nil, err
	}
	switch resp.status {
	case http.StatusOK:
	case http.StatusForbidden:
		return nil, fmt.Errorf("dcos backend: %s may not list /%s of store %q: DC/OS wants the permission dcos:secrets:list:%s:/%s read: %w",
			c.sess.who(), p, store, store, p, plugin.ErrPermissionDenied)
	case http.StatusNotFound:
		return nil, fmt.Errorf("dcos backend: nothing at /%s in store %q: %w", p, store, plugin.ErrNotFound)
	default:
		return nil, statusError(resp.status, "list /"+p)
	}
	var list struct {
		Array []string `json:"array"`
	}
	if err := json.Unmarshal(resp.body, &list); err != nil {
		return nil, fmt.Errorf("dcos backend: list /%s: the answer is not the documented {\"array\": [...]}: %w", p, plugin.ErrUnavailable)
	}
	base := "/"
	if p != "" {
		base = "/" + p + "/"
	}
	seen := map[string]bool{}
	for _, e := range list.Array {
		e = strings.Trim(e, "/")
		if e == "" {
			continue
		}
		if first, _, deeper := strings.Cut(e, "/"); deeper {
			e = first + "/"
		}
		seen[base+e] = true
	}
	out := make([]string, 0, len(seen))
	for e := range seen {
		out = append(out, e)
	}
	slices.Sort(out)
	return out, nil
}
