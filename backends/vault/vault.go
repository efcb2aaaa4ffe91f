// Package vault is the keyship backend for HashiCorp Vault: it reads KV v1
// and KV v2 secrets and issues per-host certificates from the PKI engine.
//
// # Refs
//
// A ref is a KV path, a field, and for KV v2 an optional version:
//
//	secret/spark/tls#keystore            field "keystore" of the latest version
//	secret/spark/tls#keystore@3          field "keystore" of version 3 (KV v2 only)
//	secret/spark/tls#keystore:base64     the field's value, base64-decoded
//	secret/spark/tls#password:raw        the field's value as stored, whatever decode says
//
// The path starts with the mount ("secret/"); a leading "/" is ignored. The
// mount's KV version is detected the way the Vault CLI does it (a read of
// sys/internal/ui/mounts/<path>, cached for a minute) unless kv_mounts fixes
// it. A ref without a field reads default_field; with neither it is refused.
//
// # Binary secrets
//
// Vault values are JSON strings, so binary stores (JKS, PKCS12) are kept in
// Vault as base64 text. Decoding is explicit, never guessed: a field suffix
// ":base64" decodes that ref, ":raw" does not, and the decode setting
// ("none", the default, or "base64") applies to refs without a suffix. A
// field literally named "x:base64" is written "x:base64:raw". Values that are
// not JSON strings (numbers, booleans, objects) are returned as their JSON
// text. PEM files need no decoding.
//
// # Versions
//
// For KV v2 a Secret's Version is "<mount><path>@<n>", e.g.
// "secret/spark/tls@3", and Metadata carries the version and its creation
// time. KV v1 has no versions: the Version is "h1:" and an HMAC-SHA256 of
// the ref and the content under a key the backend holds
// (version_key_file, else random per process), never a plain hash.
//
// # Settings
//
// Configure takes flat, dotted names. In the host config the auth.* ones
// may be nested (auth: {method: approle, ...}); the host flattens them.
//
//	address                Vault address; else VAULT_ADDR; else https://127.0.0.1:8200
//	namespace              Vault Enterprise namespace; else VAULT_NAMESPACE
//	ca_file, ca_dir        PEM CA file / directory verifying Vault's certificate; else VAULT_CACERT, VAULT_CAPATH
//	client_cert, client_key  PEM client certificate and key for TLS client auth; else VAULT_CLIENT_CERT, VAULT_CLIENT_KEY
//	tls_server_name        name to verify Vault's certificate against (SNI); else VAULT_TLS_SERVER_NAME
//	tls_skip_verify        "true" turns TLS verification off (logged as a warning); else VAULT_SKIP_VERIFY
//	timeout                per-request timeout (Go duration); else VAULT_CLIENT_TIMEOUT; else 60s
//	max_retries            client-side retries of 5xx and 429 answers, 0 to 2; else VAULT_MAX_RETRIES (same bound); else 0
//	                       (the host already tries ErrUnavailable 4 times: a ref costs at most 4 × (1 + max_retries) requests)
//	kv_mounts              "secret=2,legacy=1": mounts whose KV version is fixed, skipping detection
//	decode                 none (default) | base64, for refs whose field has no suffix
//	default_field          field read when a ref names none
//	version_key_file       key (16+ bytes) for KV v1 versions, stable across processes
//	auth.method            token (default) | approle | jwt | kubernetes
//	auth.token_file        token: a file holding the token, read at every login (e.g. written by Vault Agent)
//	auth.token             token: the token itself (prefer token_file); else VAULT_TOKEN
//	auth.role_id           approle: the role id (or auth.role_id_file)
//	auth.secret_id_file    approle: a file holding the secret id, read at every login
//	auth.secret_id_wrapped approle: "true" when secret_id_file holds a response-wrapping token; it is unwrapped once
//	auth.role              jwt, kubernetes: the Vault role
//	auth.jwt_file          jwt, kubernetes: the JWT, read at every login so rotated tokens are used
//	                       (kubernetes default: the pod's service-account token)
//	auth.mount             approle, jwt, kubernetes: the auth mount path; default the method's name
//
// The other VAULT_* variables the api client reads (VAULT_CACERT_BYTES,
// VAULT_HEADERS, VAULT_RATE_LIMIT, VAULT_SRV_LOOKUP, VAULT_PROXY_ADDR,
// VAULT_DISABLE_REDIRECTS) apply too. VAULT_WRAP_TTL does not: the backend
// never asks for wrapped responses.
//
// Run as a plugin, the backend sees only the environment the keyship host
// passes it: PATH, TMPDIR and the locale, plus what the backend's host
// config lists under env. For the VAULT_* fallbacks above, list them:
//
//	backends:
//	  vault:
//	    plugin: keyship-backend-vault
//	    env: ["VAULT_*"]   # or single names: [VAULT_ADDR, VAULT_TOKEN]
//
// # Tokens
//
// The backend logs in on first use, not in Configure. A renewable token is
// renewed with the api's LifetimeWatcher; when renewal ends (max TTL) the
// backend logs in again in the background. When Vault answers 403 the
// backend looks the token up: if Vault rejects the token itself, the backend
// logs in once more and retries the request once; if the token is valid, the
// 403 is a policy decision and is returned as ErrPermissionDenied naming the
// path and the capability needed. A Get batch makes at most one login
// attempt and one re-login, whatever its size (Vault locks AppRole
// credentials out after repeated failures). Tokens, secret ids and JWTs
// never appear in logs or errors.
//
// # Errors
//
// 403 is ErrPermissionDenied; a missing secret, a missing field and a
// deleted or destroyed KV v2 version are ErrNotFound with three different
// messages; a sealed Vault, a standby, 5xx answers, refused connections and
// timeouts are ErrUnavailable (a sealed Vault says "sealed"); an untrusted
// TLS certificate and malformed refs are ErrInvalidConfig.
//
// # List
//
// List("") returns the KV mounts the token can see ("secret/"); List of a
// path returns the keys under it as full paths, directories ending in "/".
//
// # PKI
//
// The backend implements plugin.Issuer. IssueRequest.Path is a PKI role's
// issue path, "<pki mount>/issue/<role>" (e.g. "pki/issue/spark-node"); the
// backend writes common_name, alt_names, ip_sans and ttl to it and returns
// the PKCS#8 key, the chain (leaf first, then any intermediates) and the CA
// certificates; the Version is the leaf's serial number. Every call issues a
// new certificate. In a job's spec the issuer is the ref
// "vault:pki/issue/spark-node"; the host calls Issue once per job and host
// set.
package vault

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"

	"github.com/keyship/keyship/plugin"
)

// Name is the backend's name in Info and in host configs.
const Name = "vault"

// Version is the backend's release version.
const Version = "0.1.0"

// Backend reads secrets from Vault. Create it with New or NewWithLogger. It
// is safe for concurrent use.
type Backend struct {
	logger hclog.Logger

	mu   sync.RWMutex
	conn *conn // nil before Configure
}

// New returns an unconfigured Vault backend that logs through
// plugin.NewLogger: hclog JSON on stderr (which the keyship host folds into
// its log) at the level named by plugin.LogLevelEnv.
func New() plugin.Backend {
	return NewWithLogger(plugin.NewLogger(Name))
}

// NewWithLogger returns an unconfigured Vault backend that logs to logger.
func NewWithLogger(logger hclog.Logger) *Backend {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Backend{logger: logger}
}

// Info describes the Vault backend; it supports List, Issue and Versions.
func (b *Backend) Info(context.Context) (plugin.Info, error) {
	return plugin.Info{
		Name:             Name,
		Version:          Version,
		ProtocolVersions: []uint32{plugin.ProtocolVersion},
		Capabilities:     []string{plugin.CapabilityList, plugin.CapabilityIssue, plugin.CapabilityVersions},
	}, nil
}

// Configure checks the settings (see the package doc) and prepares a Vault
// client. It does not contact Vault: the first Get logs in. Calling it again
// replaces the configuration and stops the old token's renewal.
func (b *Backend) Configure(_ context.Context, config map[string]string) error {
	s, err := parseSettings(config)
	if err != nil {
		return err
	}
	client, insecure, err := newClient(s)
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	if s.versionKey != "" {
		if key, err = os.ReadFile(s.versionKey); err != nil || len(key) < 16 {
			return invalid("version_key_file %q: want a readable file of at least 16 bytes", s.versionKey)
		}
	} else if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("vault backend: version key: %w", err)
	}
	if insecure {
		b.logger.Warn("TLS VERIFICATION OF VAULT IS OFF (tls_skip_verify or VAULT_SKIP_VERIFY): anyone on the network path can read the secrets; never do this in production")
	}
	auth := newAuthenticator(client, s.auth, b.logger)
	c := &conn{s: s, client: client, auth: auth, versionKey: key, logger: b.logger, mounts: map[string]mountEntry{}}
	b.mu.Lock()
	old := b.conn
	b.conn = c
	b.mu.Unlock()
	if old != nil {
		old.auth.close()
	}
	b.logger.Info("configured", "address", client.Address(), "namespace", client.Namespace(), "auth_method", s.auth.method)
	return nil
}

// newClient builds the api client: the api's defaults and VAULT_*
// environment, then the settings on top.
// insecure reports that TLS verification is off.
func newClient(s settings) (client *api.Client, insecure bool, err error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, false, invalid("VAULT_* environment: %v", cfg.Error)
	}
	envInsecure, _ := strconv.ParseBool(os.Getenv(api.EnvVaultSkipVerify)) // checked by DefaultConfig
	if s.address != "" {
		cfg.Address = s.address
	}
	tlsCfg := &api.TLSConfig{
		CACert:        first(s.caFile, os.Getenv(api.EnvVaultCACert)),
		CAPath:        first(s.caDir, os.Getenv(api.EnvVaultCAPath)),
		ClientCert:    first(s.clientCert, os.Getenv(api.EnvVaultClientCert)),
		ClientKey:     first(s.clientKey, os.Getenv(api.EnvVaultClientKey)),
		TLSServerName: first(s.tlsServerName, os.Getenv(api.EnvVaultTLSServerName)),
		Insecure:      s.tlsSkipVerify || envInsecure,
	}
	if v := os.Getenv(api.EnvVaultCACertBytes); v != "" && tlsCfg.CACert == "" {
		tlsCfg.CACertBytes = []byte(v)
	}
	if err := cfg.ConfigureTLS(tlsCfg); err != nil {
		return nil, false, invalid("TLS settings (ca_file, ca_dir, client_cert, client_key): %v", err)
	}
	if s.timeout > 0 {
		cfg.Timeout = s.timeout
	}
	cfg.MaxRetries = s.maxRetries // 0 unless set: the host does the retrying
	if v := os.Getenv(api.EnvVaultMaxRetries); v != "" && !s.maxRetriesSet {
		if cfg.MaxRetries, err = parseMaxRetries(v); err != nil {
			return nil, false, invalid("%s=%q: %v", api.EnvVaultMaxRetries, v, err)
		}
	}
	client, err = api.NewClient(cfg)
	if err != nil {
		return nil, false, invalid("client: %v", err)
	}
	client.ClearToken() // the auth settings decide the token, VAULT_TOKEN included
	client.SetWrappingLookupFunc(func(string, string) string { return "" })
	if s.namespace != "" {
		client.SetNamespace(s.namespace)
	}
	return client, tlsCfg.Insecure, nil
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// current returns the configured connection, or an error before Configure.
func (b *Backend) current(op string) (*conn, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.conn == nil {
		return nil, fmt.Errorf("vault backend: %s before Configure: %w", op, plugin.ErrInvalidConfig)
	}
	return b.conn, nil
}

// Get reads each ref (see the package doc for the ref forms). Refs naming
// the same secret and version in one batch cost one request.
func (b *Backend) Get(ctx context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	c, err := b.current("Get")
	if err != nil {
		return nil, err
	}
	out := make([]plugin.Result, len(refs))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// One login attempt per batch: a login that fails fails every ref
	// with its error (Vault locks out AppRole credentials after a few
	// failed logins).
	if _, err := c.auth.ensure(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		for i := range out {
			out[i].Err = err
		}
		return out, nil
	}
	bt := &batch{memo: map[string]readResult{}}
	for i, ref := range refs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i] = c.get(ctx, ref, bt)
	}
	return out, nil
}

// batch is the state of one Get: secrets already read, and whether a login
// after a 403 was already tried.
type batch struct {
	memo     map[string]readResult
	relogged bool
}

// List returns, for an empty prefix, the KV mounts the token can see
// ("secret/"); otherwise the keys under prefix as full paths
// ("secret/spark/tls"), sorted, directories ending in "/".
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	c, err := b.current("List")
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.list(ctx, prefix)
}

// Issue issues a certificate from the PKI role path req.Path; see the
// package doc.
func (b *Backend) Issue(ctx context.Context, req plugin.IssueRequest) (plugin.Issued, error) {
	c, err := b.current("Issue")
	if err != nil {
		return plugin.Issued{}, err
	}
	if err := ctx.Err(); err != nil {
		return plugin.Issued{}, err
	}
	return c.issue(ctx, req)
}

// Close stops token renewal. The backend must not be used afterwards.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		b.conn.auth.close()
	}
	return nil
}

// conn is one configuration's client, authenticator and caches.
type conn struct {
	s          settings
	client     *api.Client
	auth       *authenticator
	versionKey []byte
	logger     hclog.Logger

	mu     sync.Mutex
	mounts map[string]mountEntry // detected mounts by mount path
	// deniedMetadata are the KV v2 metadata paths the token may not read,
	// and when it was last told so (see Versions).
	deniedMetadata map[string]time.Time
}

// mountEntry is a detected mount and when the detection expires.
type mountEntry struct {
	mount
	expires time.Time
}

// call runs f with a token; when Vault answers 403, it asks the
// authenticator, at most once per batch, whether a new token makes a second
// try worthwhile.
func (c *conn) call(ctx context.Context, bt *batch, f func() (*api.Secret, error)) (*api.Secret, error) {
	gen, err := c.auth.ensure(ctx)
	if err != nil {
		return nil, err
	}
	s, err := f()
	if statusOf(err) == 403 && !isSealed(err) && !bt.relogged {
		bt.relogged = true
		retry, rerr := c.auth.recover(ctx, gen)
		if rerr != nil {
			return nil, rerr
		}
		if retry {
			s, err = f()
		}
	}
	return s, err
}

// refName formats a ref for errors: it holds no secret.
func refName(ref plugin.Ref) string {
	return fmt.Sprintf("ref %q", strings.TrimSpace(ref.String()))
}
