// Package dcostest is an in-process stand-in for the DC/OS Enterprise APIs
// the dcos backend talks to. DC/OS Enterprise is closed source and cannot run
// in a test, so this server follows the documented API strictly:
//
//   - IAM login, POST /acs/api/v1/auth/login (ent-iam.yaml, "LoginObject"):
//     {"uid", "password"} for a user, {"uid", "token"} for a service account
//     whose service login token is an RS256 JWT with the claims uid and exp,
//     verified against the account's registered public key; exp more than
//     10 minutes ahead, or in the past, is refused. The answer is
//     {"token": <RS256 JWT with uid and exp>}, valid for a configurable,
//     short lifetime so that refresh is exercised.
//   - Secrets API, GET /secrets/v1/secret/<store>/<path> ("Text and binary
//     secrets", DC/OS 1.11+): without a valid "Authorization: token=…" header
//     the answer is 401 with "WWW-Authenticate: acsjwt"; without the
//     permission "dcos:secrets:<store>:/<path> read" it is 403; a missing
//     secret is 404. Text secrets come back as application/json
//     {"value": "…"}, binary ones as application/octet-stream, unless an
//     Accept header asks otherwise (a binary secret cannot be had as JSON:
//     406). ?list=true answers {"array": [...]} with every secret path below
//     the given one, relative to it, and needs
//     "dcos:secrets:list:<store>:/<path> read".
//   - Certificate Authority: GET /ca/dcos-ca.crt (no auth) is the CA bundle;
//     POST /ca/api/v2/sign (CFSSL's sign endpoint behind Admin Router) takes
//     {"certificate_request": <PEM CSR>, "profile"?: …}, needs an auth token
//     with "dcos:adminrouter:ops:ca:rw", and answers CFSSL's envelope
//     {"success", "result": {"certificate": <PEM>}, "errors", "messages"}.
//     The certificate is signed by a real test CA and carries exactly the
//     CSR's subject alternative names (unless AddSANs says otherwise).
//
// The server's own TLS certificate is signed by the same CA (as Admin
// Router's is on a real cluster), for 127.0.0.1 and localhost.
//
// Quickstart:
//
//	srv := dcostest.New(t)
//	sa := srv.NewServiceAccount(t, "keyship")     // the create-sa-secret JSON
//	srv.Grant("keyship", "dcos:superuser", "full")
//	srv.PutText("spark/keystore_password", "changeit")
//	// configure the backend with url=srv.URL, ca_file=srv.WriteCAFile(t)
package dcostest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/keyship/keyship/host/materialize/testca"
)

// MaxLoginTokenAhead is how far in the future a service login token's exp
// may be; the IAM refuses tokens that claim to live longer.
const MaxLoginTokenAhead = 10 * time.Minute

// Option changes a Server.
type Option func(*Server)

// WithTokenLifetime sets how long the auth tokens the IAM hands out stay
// valid (default one hour).
func WithTokenLifetime(d time.Duration) Option {
	return func(s *Server) { s.tokenLifetime = d }
}

// WithCertLifetime sets the validity of certificates the CA signs with its
// default profile (default 24 hours).
func WithCertLifetime(d time.Duration) Option {
	return func(s *Server) { s.profiles[""] = d }
}

// WithProfile adds a CA signing profile name whose certificates live d.
func WithProfile(name string, d time.Duration) Option {
	return func(s *Server) { s.profiles[name] = d }
}

// Server is a running test server. Its methods are safe for concurrent use.
type Server struct {
	// URL is the cluster URL, https://127.0.0.1:<port>.
	URL string
	// CA is the cluster CA: it signs the server's TLS certificate and every
	// certificate /ca/api/v2/sign issues.
	CA *testca.CA

	ts            *httptest.Server
	iamKey        *rsa.PrivateKey
	tokenLifetime time.Duration
	profiles      map[string]time.Duration

	mu           sync.Mutex
	secrets      map[string]secret            // by store path without leading "/"
	accounts     map[string]*account          // by uid
	tokens       map[string]string            // issued auth token -> uid
	rejectTokens bool                         // refuse every auth token, even fresh ones
	failures     []int                        // statuses for the next secrets/CA requests
	down         bool                         // every secrets/CA request gets 503 (SetUnavailable)
	denied       map[string]bool              // uid + "\x00" + rid: refused even to a superuser (Deny)
	logins       map[string]int               // login attempts by uid
	requests     map[string]int               // "METHOD /path" -> count
	issued       []*x509.Certificate          // certificates signed by /ca/api/v2/sign
	grants       map[string]map[string]string // uid -> rid -> action
	extraSANs    []string                     // DNS names the CA adds to every certificate
}

type secret struct {
	data   []byte
	binary bool
}

type account struct {
	publicKey *rsa.PublicKey // service account
	password  string         // user
}

// New starts a server that t stops at cleanup.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		tokenLifetime: time.Hour,
		profiles:      map[string]time.Duration{"": 24 * time.Hour},
		secrets:       map[string]secret{},
		accounts:      map[string]*account{},
		tokens:        map[string]string{},
		logins:        map[string]int{},
		requests:      map[string]int{},
		grants:        map[string]map[string]string{},
	}
	for _, o := range opts {
		o(s)
	}
	var err error
	if s.CA, err = testca.NewCA("DC/OS test CA"); err != nil {
		t.Fatal(err)
	}
	if s.iamKey, err = rsaKey(); err != nil {
		t.Fatal(err)
	}
	leaf, err := s.CA.Issue("master.mesos", testca.WithDNS("localhost", "master.mesos"), testca.WithIPs(net.ParseIP("127.0.0.1")))
	if err != nil {
		t.Fatal(err)
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// Clients that refuse the certificate (tests of TLS verification) are
	// expected; their handshake errors are not news.
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.ts.TLS = &tls.Config{
		MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{leaf.Chain[0].Raw, leaf.Chain[1].Raw},
			PrivateKey:  leaf.Key,
			Leaf:        leaf.Chain[0],
		}},
	}
	s.ts.StartTLS()
	s.URL = s.ts.URL
	t.Cleanup(s.ts.Close)
	return s
}

// rsaKeys caches RSA keys: generating one costs tens of milliseconds, and a
// test server may share its keys with other test servers.
var rsaKeys = struct {
	sync.Mutex
	keys []*rsa.PrivateKey
	next int
}{}

// rsaKey returns one of a small pool of RSA 2048 keys, each distinct from
// the last few handed out.
func rsaKey() (*rsa.PrivateKey, error) {
	rsaKeys.Lock()
	defer rsaKeys.Unlock()
	const pool = 4
	if len(rsaKeys.keys) < pool {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		rsaKeys.keys = append(rsaKeys.keys, k)
		return k, nil
	}
	k := rsaKeys.keys[rsaKeys.next%pool]
	rsaKeys.next++
	return k, nil
}

// CAPEM returns the CA bundle /ca/dcos-ca.crt serves.
func (s *Server) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.CA.Cert.Raw})
}

// CASHA256 returns the hex SHA-256 of the CA certificate (DER), the pin a
// backend's ca_sha256 setting takes.
func (s *Server) CASHA256() string {
	sum := sha256.Sum256(s.CA.Cert.Raw)
	return fmt.Sprintf("%x", sum)
}

// WriteCAFile writes the CA bundle to a file in a temporary directory and
// returns its path, for a backend's ca_file setting.
func (s *Server) WriteCAFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dcos-ca.crt")
	if err := os.WriteFile(p, s.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ServiceAccountSecret is the JSON `dcos security secrets create-sa-secret`
// stores for a service account.
type ServiceAccountSecret struct {
	Scheme        string `json:"scheme"`
	UID           string `json:"uid"`
	PrivateKey    string `json:"private_key"`
	LoginEndpoint string `json:"login_endpoint"`
}

// NewServiceAccount registers a service account uid with a fresh key pair
// and returns its service-account secret JSON.
func (s *Server) NewServiceAccount(t testing.TB, uid string) []byte {
	t.Helper()
	key, err := rsaKey()
	if err != nil {
		t.Fatal(err)
	}
	s.AddServiceAccount(uid, &key.PublicKey)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(ServiceAccountSecret{
		Scheme:        "RS256",
		UID:           uid,
		PrivateKey:    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		LoginEndpoint: s.URL + "/acs/api/v1/auth/login",
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// AddServiceAccount registers (or re-keys) a service account.
func (s *Server) AddServiceAccount(uid string, pub *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[uid] = &account{publicKey: pub}
}

// AddUser registers a user account with a password.
func (s *Server) AddUser(uid, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[uid] = &account{password: password}
}

// Grant gives uid the action ("read", "full", …) on the resource rid, e.g.
// Grant("spark", "dcos:secrets:default:/spark/keystore", "read") or
// Grant("admin", "dcos:superuser", "full").
func (s *Server) Grant(uid, rid, action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grants[uid] == nil {
		s.grants[uid] = map[string]string{}
	}
	s.grants[uid][rid] = action
}

// PutText stores a text secret (UTF-8) at path ("/spark/pw" or "spark/pw").
func (s *Server) PutText(path, value string) {
	if !utf8.ValidString(value) {
		panic("dcostest: a text secret must be UTF-8; use PutBinary")
	}
	s.put(path, secret{data: []byte(value)})
}

// PutBinary stores a binary secret, as `dcos security secrets create --file`
// does. The store's 1 MB limit is not enforced here, so that the
// conformance kit can store its 1 MiB fixture.
func (s *Server) PutBinary(path string, data []byte) {
	s.put(path, secret{data: slices.Clone(data), binary: true})
}

func (s *Server) put(path string, sec secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[strings.Trim(path, "/")] = sec
}

// Delete removes the secret at path.
func (s *Server) Delete(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.secrets, strings.Trim(path, "/"))
}

// FailNext makes the next n Secrets API or CA sign requests (not logins)
// answer status, e.g. 503, before any other check.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, status)
	}
}

// Deny refuses uid the resource rid (e.g. "dcos:secrets:default:/spark/keystore")
// whatever its grants, superuser included: a 403, as the IAM answers for a
// missing permission.
func (s *Server) Deny(uid, rid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.denied == nil {
		s.denied = map[string]bool{}
	}
	s.denied[uid+"\x00"+rid] = true
}

// SetUnavailable makes every secrets and CA request fail with 503 Service
// Unavailable while down is true, as a store that is down or restarting.
func (s *Server) SetUnavailable(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// RevokeTokens invalidates every auth token issued so far, as an expiry or
// an IAM restart would; the next request with one gets 401.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// RejectAllTokens makes every auth token, even a fresh one, answer 401.
func (s *Server) RejectAllTokens(reject bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectTokens = reject
}

// Logins returns how many login attempts uid made (successful or not).
func (s *Server) Logins(uid string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins[uid]
}

// Requests returns how many requests were made as "METHOD /path" (without
// the query), e.g. "GET /secrets/v1/secret/default/spark/keystore".
func (s *Server) Requests(methodPath string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[methodPath]
}

// IssuedTokens returns every auth token the IAM handed out, so that tests
// can check none of them leaked into logs or errors.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for tok := range s.tokens {
		out = append(out, tok)
	}
	return out
}

// AddSANs makes the CA add DNS names to every certificate it signs, as a
// misconfigured signing profile would; a client must notice.
func (s *Server) AddSANs(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extraSANs = append(s.extraSANs, names...)
}

// Issued returns the certificates /ca/api/v2/sign signed, oldest first.
func (s *Server) Issued() []*x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// errorBody is the JSON body of IAM and Secrets API errors.
type errorBody struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	Code        string `json:"code"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, description string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "acsjwt")
	}
	writeJSON(w, status, errorBody{Title: http.StatusText(status), Description: description, Code: code})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.Method+" "+r.URL.Path]++
	s.mu.Unlock()
	switch {
	case r.URL.Path == "/acs/api/v1/auth/login":
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "ERR_METHOD_NOT_ALLOWED", "use POST")
			return
		}
		s.login(w, r)
	case r.URL.Path == "/ca/dcos-ca.crt":
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "ERR_METHOD_NOT_ALLOWED", "use GET")
			return
		}
		w.Header().Set("Content-Type", "application/x-x509-ca-cert")
		_, _ = w.Write(s.CAPEM())
	case strings.HasPrefix(r.URL.Path, "/secrets/v1/secret/"):
		if s.injectedFailure(w) {
			return
		}
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "ERR_METHOD_NOT_ALLOWED", "this test server serves reads only")
			return
		}
		s.secret(w, r)
	case r.URL.Path == "/ca/api/v2/sign":
		if s.injectedFailure(w) {
			return
		}
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "ERR_METHOD_NOT_ALLOWED", "use POST")
			return
		}
		s.sign(w, r)
	default:
		writeError(w, http.StatusNotFound, "ERR_NOT_FOUND", "no such endpoint")
	}
}

func (s *Server) injectedFailure(w http.ResponseWriter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		writeError(w, http.StatusServiceUnavailable, "ERR_UNAVAILABLE", "the secret store is down (a test made it so)")
		return true
	}
	if len(s.failures) == 0 {
		return false
	}
	status := s.failures[0]
	s.failures = s.failures[1:]
	writeError(w, status, "ERR_INJECTED", "failure injected by the test")
	return true
}

// loginObject is the IAM's LoginObject: uid with password or service login token.
type loginObject struct {
	UID      string `json:"uid"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusBadRequest, "ERR_INVALID_DATA", "the request body must be application/json")
		return
	}
	var lo loginObject
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lo); err != nil || lo.UID == "" || (lo.Password == "") == (lo.Token == "") {
		writeError(w, http.StatusBadRequest, "ERR_INVALID_DATA", "expected {\"uid\", \"password\"} or {\"uid\", \"token\"}")
		return
	}
	s.mu.Lock()
	s.logins[lo.UID]++
	acct := s.accounts[lo.UID]
	s.mu.Unlock()
	if acct == nil {
		writeError(w, http.StatusUnauthorized, "ERR_INVALID_CREDENTIALS", "the uid or its credentials are wrong")
		return
	}
	switch {
	case lo.Password != "":
		if acct.password == "" || lo.Password != acct.password {
			writeError(w, http.StatusUnauthorized, "ERR_INVALID_CREDENTIALS", "the uid or its credentials are wrong")
			return
		}
	default:
		if acct.publicKey == nil {
			writeError(w, http.StatusUnauthorized, "ERR_INVALID_CREDENTIALS", "the uid or its credentials are wrong")
			return
		}
		claims, err := VerifyRS256(lo.Token, acct.publicKey)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "ERR_INVALID_CREDENTIALS", "service login token: "+err.Error())
			return
		}
		if claims.UID != lo.UID {
			writeError(w, http.StatusUnauthorized, "ERR_INVALID_CREDENTIALS", "service login token: its uid claim is not the login uid")
			return
		}
		now := time.Now()
		exp := time.Unix(claims.Exp, 0)
		if claims.Exp == 0 || !exp.After(now) {
			writeError(w, http.StatusUnauthorized, "ERR_INVALID_CREDENTIALS", "service login token: missing or past exp")
			return
		}
		if exp.After(now.Add(MaxLoginTokenAhead)) {
			writeError(w, http.StatusUnauthorized, "ERR_INVALID_CREDENTIALS", "service login token: exp is more than 10 minutes ahead")
			return
		}
	}
	tok, err := SignRS256(Claims{UID: lo.UID, Exp: time.Now().Add(s.tokenLifetime).Unix()}, s.iamKey)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "ERR_INTERNAL", "sign auth token")
		return
	}
	s.mu.Lock()
	s.tokens[tok] = lo.UID
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// authenticate returns the uid of the request's valid auth token, or
// answers 401 and returns "".
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) string {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "token=")
	if !ok || tok == "" {
		writeError(w, http.StatusUnauthorized, "ERR_MISSING_AUTH", "an \"Authorization: token=<auth token>\" header is required")
		return ""
	}
	claims, err := VerifyRS256(tok, &s.iamKey.PublicKey)
	s.mu.Lock()
	uid, known := s.tokens[tok]
	reject := s.rejectTokens
	s.mu.Unlock()
	switch {
	case err != nil || !known || reject:
		writeError(w, http.StatusUnauthorized, "ERR_INVALID_TOKEN", "the auth token is invalid")
		return ""
	case !time.Unix(claims.Exp, 0).After(time.Now()):
		writeError(w, http.StatusUnauthorized, "ERR_INVALID_TOKEN", "the auth token has expired")
		return ""
	}
	return uid
}

// allowed reports whether uid may do action on rid; "full" covers every action.
func (s *Server) allowed(uid, rid, action string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.denied[uid+"\x00"+rid] {
		return false
	}
	g := s.grants[uid]
	if g["dcos:superuser"] == "full" {
		return true
	}
	a, ok := g[rid]
	return ok && (a == action || a == "full")
}

func (s *Server) secret(w http.ResponseWriter, r *http.Request) {
	uid := s.authenticate(w, r)
	if uid == "" {
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, "/secrets/v1/secret/")
	store, p, _ := strings.Cut(rest, "/")
	if store != "default" {
		writeError(w, http.StatusNotFound, "ERR_STORE_NOT_FOUND", "no such store")
		return
	}
	p = strings.Trim(p, "/")
	if r.URL.Query().Get("list") == "true" {
		if !s.allowed(uid, "dcos:secrets:list:"+store+":/"+p, "read") {
			writeError(w, http.StatusForbidden, "ERR_FORBIDDEN", "permission denied")
			return
		}
		s.mu.Lock()
		keys := []string{}
		for k := range s.secrets {
			if p == "" {
				keys = append(keys, k)
			} else if rel, ok := strings.CutPrefix(k, p+"/"); ok {
				keys = append(keys, rel)
			}
		}
		s.mu.Unlock()
		sort.Strings(keys)
		writeJSON(w, http.StatusOK, map[string][]string{"array": keys})
		return
	}
	if p == "" || slices.Contains(strings.Split(p, "/"), "") || slices.Contains(strings.Split(p, "/"), "..") {
		writeError(w, http.StatusBadRequest, "ERR_INVALID_PATH", "invalid secret path")
		return
	}
	if !s.allowed(uid, "dcos:secrets:"+store+":/"+p, "read") {
		writeError(w, http.StatusForbidden, "ERR_FORBIDDEN", "permission denied")
		return
	}
	s.mu.Lock()
	sec, ok := s.secrets[p]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "ERR_SECRET_NOT_FOUND", "secret not found")
		return
	}
	accept := r.Header.Get("Accept")
	wantJSON := strings.Contains(accept, "application/json") && !strings.Contains(accept, "application/octet-stream") && !strings.Contains(accept, "*/*")
	wantBinary := strings.Contains(accept, "application/octet-stream") && !strings.Contains(accept, "application/json")
	switch {
	case sec.binary && wantJSON:
		writeError(w, http.StatusNotAcceptable, "ERR_NOT_ACCEPTABLE", "a binary secret cannot be retrieved as a JSON document")
	case sec.binary || wantBinary:
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(sec.data)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"value": string(sec.data)})
	}
}

// cfsslEnvelope is CFSSL's API response.
type cfsslEnvelope struct {
	Success  bool           `json:"success"`
	Result   any            `json:"result"`
	Errors   []cfsslMessage `json:"errors"`
	Messages []cfsslMessage `json:"messages"`
}

type cfsslMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func cfsslError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, cfsslEnvelope{Errors: []cfsslMessage{{Code: code, Message: msg}}, Messages: []cfsslMessage{}})
}

// signRequest is CFSSL's sign request: the PEM CSR and an optional profile.
type signRequest struct {
	CertificateRequest string   `json:"certificate_request"`
	Profile            string   `json:"profile,omitempty"`
	Hosts              []string `json:"hosts,omitempty"`
	Label              string   `json:"label,omitempty"`
}

func (s *Server) sign(w http.ResponseWriter, r *http.Request) {
	uid := s.authenticate(w, r)
	if uid == "" {
		return
	}
	if !s.allowed(uid, "dcos:adminrouter:ops:ca:rw", "full") {
		writeError(w, http.StatusForbidden, "ERR_FORBIDDEN", "permission denied")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		cfsslError(w, http.StatusBadRequest, 1002, "the request body must be application/json")
		return
	}
	var req signRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		cfsslError(w, http.StatusBadRequest, 1002, "malformed sign request")
		return
	}
	if len(req.Hosts) > 0 {
		cfsslError(w, http.StatusBadRequest, 1002, "this test server honours the CSR's names only; do not send hosts")
		return
	}
	lifetime, ok := s.profiles[req.Profile]
	if !ok {
		cfsslError(w, http.StatusBadRequest, 5200, fmt.Sprintf("unknown signing profile %q", req.Profile))
		return
	}
	block, _ := pem.Decode([]byte(req.CertificateRequest))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		cfsslError(w, http.StatusBadRequest, 9002, "certificate_request is not a PEM CERTIFICATE REQUEST")
		return
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err == nil {
		err = csr.CheckSignature()
	}
	if err != nil {
		cfsslError(w, http.StatusBadRequest, 9002, "invalid CSR: "+err.Error())
		return
	}
	if len(csr.DNSNames)+len(csr.IPAddresses) == 0 {
		cfsslError(w, http.StatusBadRequest, 9002, "the CSR names no hosts")
		return
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		cfsslError(w, http.StatusInternalServerError, 1000, "serial")
		return
	}
	usage := x509.KeyUsageDigitalSignature
	if _, isRSA := csr.PublicKey.(*rsa.PublicKey); isRSA {
		usage |= x509.KeyUsageKeyEncipherment
	}
	s.mu.Lock()
	dns := append(slices.Clone(csr.DNSNames), s.extraSANs...)
	s.mu.Unlock()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: csr.Subject.CommonName},
		NotBefore:             now.Add(-5 * time.Minute).Truncate(time.Second),
		NotAfter:              now.Add(lifetime).Truncate(time.Second),
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           csr.IPAddresses,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.CA.Cert, csr.PublicKey, s.CA.Key)
	if err != nil {
		cfsslError(w, http.StatusInternalServerError, 1000, "sign: "+err.Error())
		return
	}
	cert, _ := x509.ParseCertificate(der)
	s.mu.Lock()
	s.issued = append(s.issued, cert)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, cfsslEnvelope{
		Success:  true,
		Result:   map[string]string{"certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))},
		Errors:   []cfsslMessage{},
		Messages: []cfsslMessage{},
	})
}

// Claims are the claims of DC/OS login and auth tokens: uid and exp (Unix seconds).
type Claims struct {
	UID string `json:"uid"`
	Exp int64  `json:"exp"`
}

var b64 = base64.RawURLEncoding

// SignRS256 makes an RS256 JWT of claims. Tests use it to forge login
// tokens (a wrong key, an exp too far ahead).
func SignRS256(c Claims, key *rsa.PrivateKey) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signing := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + b64.EncodeToString(sig), nil
}

// VerifyRS256 checks an RS256 JWT's header and signature against pub and
// returns its claims. It does not check exp.
func VerifyRS256(token string, pub *rsa.PublicKey) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("not a JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &header) != nil {
		return Claims{}, fmt.Errorf("malformed JWT header")
	}
	if header.Alg != "RS256" {
		return Claims{}, fmt.Errorf("alg %q is not RS256", header.Alg)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return Claims{}, fmt.Errorf("malformed JWT signature")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return Claims{}, fmt.Errorf("signature does not verify")
	}
	pb, err := b64.DecodeString(parts[1])
	var c Claims
	if err != nil || json.Unmarshal(pb, &c) != nil {
		return Claims{}, fmt.Errorf("malformed JWT claims")
	}
	return c, nil
}
