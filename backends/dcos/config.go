package dcos

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyship/keyship/plugin"
)

// Auth methods (the auth.method setting).
const (
	MethodServiceAccount = "service_account"
	MethodToken          = "token"
	MethodPassword       = "password"
)

// Key types for per-host certificates (the issue.key_type setting).
const (
	KeyRSA2048   = "rsa-2048"
	KeyECDSAP256 = "ecdsa-p256"
)

// settingsByMethod lists the auth.* settings each auth method takes.
var settingsByMethod = map[string][]string{
	MethodServiceAccount: {"auth.service_account_file", "auth.service_account_env"},
	MethodToken:          {"auth.token_file"},
	MethodPassword:       {"auth.uid", "auth.password_file"},
}

// knownSettings is every setting Configure accepts.
var knownSettings = []string{
	"url", "ca_file", "ca_sha256", "tls_skip_verify", "store", "timeout",
	"version_key_file", "issue.key_type", "auth.method",
	"auth.service_account_file", "auth.service_account_env", "auth.token_file",
	"auth.uid", "auth.password_file",
}

var storeRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// settings is a checked configuration.
type settings struct {
	baseURL    string // scheme://host[:port][/path], no trailing "/"
	host       string // host name for TLS verification
	store      string
	caFile     string
	caPEM      []byte // from ca_file
	caSHA256   []byte // pin of the CA certificate's DER
	skipVerify bool
	timeout    time.Duration
	keyType    string
	versionKey []byte // nil: random per process
	auth       authSettings
}

// authSettings holds one auth method's credentials. The private key, the
// password and the token are secrets: they go on the wire to the cluster and
// nowhere else.
type authSettings struct {
	method    string
	uid       string          // service account or user; for a token, read from its claims
	key       *rsa.PrivateKey // service_account
	password  string          // password
	token     string          // token (as read at Configure)
	tokenFile string          // token
}

// invalid returns an ErrInvalidConfig error with the backend's prefix.
func invalid(format string, args ...any) error {
	return fmt.Errorf("dcos backend: "+format+": %w", append(args, plugin.ErrInvalidConfig)...)
}

// parseSettings checks config and reads the files it names. Errors name the
// setting and never contain a credential.
func parseSettings(config map[string]string) (*settings, error) {
	for k := range config {
		if !slices.Contains(knownSettings, k) {
			return nil, invalid("unknown setting %q (known: %s)", k, strings.Join(knownSettings, ", "))
		}
	}
	s := &settings{store: "default", timeout: 30 * time.Second, keyType: KeyRSA2048}

	raw := config["url"]
	if raw == "" {
		return nil, invalid("setting \"url\" is required (the cluster URL, e.g. https://master.mesos)")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, invalid("url %q: want https://<cluster>[:port] (TLS is required: the backend sends auth tokens)", raw)
	}
	s.baseURL = strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/")
	s.host = u.Hostname()

	if v, ok := config["store"]; ok {
		if !storeRE.MatchString(v) {
			return nil, invalid("store %q: want a secret store name such as default", v)
		}
		s.store = v
	}
	if v, ok := config["timeout"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, invalid("timeout %q: want a positive duration such as 30s", v)
		}
		s.timeout = d
	}
	if v, ok := config["issue.key_type"]; ok {
		if v != KeyRSA2048 && v != KeyECDSAP256 {
			return nil, invalid("issue.key_type %q: want %s or %s", v, KeyRSA2048, KeyECDSAP256)
		}
		s.keyType = v
	}
	if kf := config["version_key_file"]; kf != "" {
		key, err := os.ReadFile(kf)
		if err != nil || len(key) < 16 {
			return nil, invalid("version_key_file %q: want a readable file of at least 16 bytes", kf)
		}
		s.versionKey = key
	}
	if err := s.parseTLS(config); err != nil {
		return nil, err
	}
	if err := s.parseAuth(config); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *settings) parseTLS(config map[string]string) error {
	set := 0
	if f := config["ca_file"]; f != "" {
		set++
		data, err := os.ReadFile(f)
		if err != nil {
			return invalid("ca_file %q: %v", f, unwrapPathError(err))
		}
		certs, err := parseCertificates(data)
		if err != nil || len(certs) == 0 {
			return invalid("ca_file %q: no PEM certificate in it (want the cluster's dcos-ca.crt)", f)
		}
		s.caFile, s.caPEM = f, data
	}
	if p := config["ca_sha256"]; p != "" {
		set++
		pin, err := hex.DecodeString(strings.ReplaceAll(p, ":", ""))
		if err != nil || len(pin) != 32 {
			return invalid("ca_sha256 %q: want the 64 hex digits of the SHA-256 of /ca/dcos-ca.crt (colons allowed)", p)
		}
		s.caSHA256 = pin
	}
	if v, ok := config["tls_skip_verify"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return invalid("tls_skip_verify %q: want true or false", v)
		}
		if b {
			set++
		}
		s.skipVerify = b
	}
	if set > 1 {
		return invalid("set only one of ca_file, ca_sha256 and tls_skip_verify=true")
	}
	return nil
}

func (s *settings) parseAuth(config map[string]string) error {
	m := config["auth.method"]
	allowed, ok := settingsByMethod[m]
	if !ok {
		return invalid("auth.method %q: want service_account, token or password", m)
	}
	for k := range config {
		if strings.HasPrefix(k, "auth.") && k != "auth.method" && !slices.Contains(allowed, k) {
			return invalid("setting %q does not go with auth.method %s (it takes %s)", k, m, strings.Join(allowed, ", "))
		}
	}
	s.auth.method = m
	switch m {
	case MethodServiceAccount:
		return s.auth.parseServiceAccount(config)
	case MethodToken:
		f := config["auth.token_file"]
		if f == "" {
			return invalid("auth.method token needs auth.token_file (a file holding the output of dcos config show core.dcos_acs_token)")
		}
		tok, err := readToken(f)
		if err != nil {
			return err
		}
		s.auth.tokenFile, s.auth.token = f, tok
		s.auth.uid = tokenClaims(tok).UID
	case MethodPassword:
		uid, f := config["auth.uid"], config["auth.password_file"]
		if uid == "" || f == "" {
			return invalid("auth.method password needs auth.uid and auth.password_file")
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return invalid("auth.password_file %q: %v", f, unwrapPathError(err))
		}
		pw := strings.TrimRight(string(data), "\r\n")
		clear(data)
		if pw == "" {
			return invalid("auth.password_file %q is empty", f)
		}
		s.auth.uid, s.auth.password = uid, pw
	}
	return nil
}

// readToken reads an auth token file; the token itself never appears in an error.
func readToken(f string) (string, error) {
	data, err := os.ReadFile(f)
	if err != nil {
		return "", invalid("auth.token_file %q: %v", f, unwrapPathError(err))
	}
	tok := strings.TrimSpace(string(data))
	clear(data)
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", invalid("auth.token_file %q: want one auth token (dcos config show core.dcos_acs_token)", f)
	}
	return tok, nil
}

// serviceAccountSecret is the JSON of `dcos security secrets create-sa-secret`.
type serviceAccountSecret struct {
	Scheme        string `json:"scheme"`
	UID           string `json:"uid"`
	PrivateKey    string `json:"private_key"`
	LoginEndpoint string `json:"login_endpoint"`
}

func (a *authSettings) parseServiceAccount(config map[string]string) error {
	file, env := config["auth.service_account_file"], config["auth.service_account_env"]
	var (
		data   []byte
		source string
	)
	switch {
	case file != "" && env != "":
		return invalid("set one of auth.service_account_file and auth.service_account_env")
	case file != "":
		source = fmt.Sprintf("auth.service_account_file %q", file)
		var err error
		if data, err = os.ReadFile(file); err != nil {
			return invalid("%s: %v", source, unwrapPathError(err))
		}
	case env != "":
		source = fmt.Sprintf("auth.service_account_env %q", env)
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return invalid("%s: the environment variable is not set", source)
		}
		data = []byte(v)
	default:
		return invalid("auth.method service_account needs auth.service_account_file or auth.service_account_env (the service-account secret JSON)")
	}
	defer clear(data)
	var sa serviceAccountSecret
	if json.Unmarshal(data, &sa) != nil {
		return invalid("%s: not the service-account secret JSON {\"scheme\", \"uid\", \"private_key\", \"login_endpoint\"}", source)
	}
	if sa.Scheme != "RS256" {
		return invalid("%s: scheme %q, want RS256", source, sa.Scheme)
	}
	if sa.UID == "" {
		return invalid("%s: no uid", source)
	}
	key, err := parseRSAKey([]byte(sa.PrivateKey))
	if err != nil {
		return invalid("%s: private_key: %v", source, err)
	}
	a.uid, a.key = sa.UID, key
	return nil
}

// parseRSAKey reads a PEM RSA private key, PKCS#8 or PKCS#1.
func parseRSAKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no PEM private key")
	}
	defer clear(block.Bytes)
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q, want PRIVATE KEY or RSA PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("unreadable private key")
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("not an RSA key (RS256 needs one)")
	}
	if rk.N.BitLen() < 2048 {
		return nil, fmt.Errorf("RSA key of %d bits, want at least 2048", rk.N.BitLen())
	}
	return rk, nil
}

// parseCertificates reads every PEM CERTIFICATE block of data.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// unwrapPathError drops the path an *os.PathError repeats, keeping the reason.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
