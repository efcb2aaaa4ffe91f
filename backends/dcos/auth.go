package dcos

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keyship/keyship/plugin"
)

// loginPath is the IAM login endpoint (ent-iam.yaml: POST /acs/api/v1/auth/login,
// body LoginObject {"uid", "password"} or {"uid", "token"}, answer AuthToken
// {"token"}). The login_endpoint field of a service-account secret is not
// followed: credentials go only to the configured, verified cluster URL.
const loginPath = "/acs/api/v1/auth/login"

// loginTokenLifetime is the exp of a service login token. The IAM refuses
// service login tokens that claim more than 10 minutes; 5 leaves room for
// clock skew, and the token is used once, right away.
const loginTokenLifetime = 5 * time.Minute

// jwtClaims are the claims of DC/OS login and auth tokens.
type jwtClaims struct {
	UID string `json:"uid"`
	Exp int64  `json:"exp"`
}

// signLoginToken makes the service login token: an RS256 JWT with uid and
// exp, signed with the service account's private key.
func signLoginToken(uid string, key *rsa.PrivateKey, now time.Time) (string, error) {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	payload, err := json.Marshal(jwtClaims{UID: uid, Exp: now.Add(loginTokenLifetime).Unix()})
	if err != nil {
		return "", err
	}
	signing := header + "." + enc.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign service login token: %w", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// tokenClaims reads the claims of a DC/OS auth token without verifying it:
// the backend only uses them to know when to log in again and whose token it
// is. A token that is not a readable JWT has zero claims.
func tokenClaims(tok string) jwtClaims {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return jwtClaims{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return jwtClaims{}
	}
	var c jwtClaims
	if json.Unmarshal(payload, &c) != nil {
		return jwtClaims{}
	}
	return c
}

// session holds the current auth token. It logs in when there is no token,
// when the token is about to expire, and once more when the cluster refuses
// it (refresh); logins are serialised so that many goroutines that find the
// same token refused cause one login, not one each.
type session struct {
	c *cluster

	mu       sync.Mutex
	token    string
	obtained time.Time
	exp      time.Time // zero: unknown, rely on 401
	gen      uint64    // bumped for every new token
}

// who names the identity for error messages.
func (s *session) who() string {
	if uid := s.c.s.auth.uid; uid != "" {
		return fmt.Sprintf("uid %q", uid)
	}
	return "the configured auth token"
}

// current returns a token that is not about to expire, logging in if needed.
func (s *session) current(ctx context.Context) (string, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && !s.expiring(time.Now()) {
		return s.token, s.gen, nil
	}
	if err := s.loginLocked(ctx, s.token == ""); err != nil {
		return "", 0, err
	}
	return s.token, s.gen, nil
}

// refresh is called after the cluster refused the token of generation gen
// with 401. If another caller already replaced that token, refresh returns
// the new one; otherwise it logs in once.
func (s *session) refresh(ctx context.Context, gen uint64) (string, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen && s.token != "" {
		return s.token, s.gen, nil
	}
	if err := s.loginLocked(ctx, false); err != nil {
		return "", 0, err
	}
	return s.token, s.gen, nil
}

// expiring reports whether the token is within its refresh margin: a tenth of
// its lifetime, at most a minute, before exp.
func (s *session) expiring(now time.Time) bool {
	if s.exp.IsZero() {
		return false
	}
	margin := min(s.exp.Sub(s.obtained)/10, time.Minute)
	return !now.Before(s.exp.Add(-margin))
}

// loginLocked obtains a new token; s.mu is held. first is true when there is
// no token yet.
func (s *session) loginLocked(ctx context.Context, first bool) error {
	a := &s.c.s.auth
	var tok string
	switch a.method {
	case MethodToken:
		// A given token cannot be renewed by the backend. The first time it
		// is the one read at Configure; later the file is read again, in case
		// the operator put a new one there.
		if first {
			tok = a.token
			break
		}
		fresh, err := readToken(a.tokenFile)
		if err != nil {
			return err
		}
		if fresh == s.token {
			return fmt.Errorf("dcos backend: the cluster refused %s (expired or revoked; auth tokens last five days by default) and auth.token_file %q holds no new one: get one with dcos auth login and dcos config show core.dcos_acs_token: %w",
				s.who(), a.tokenFile, plugin.ErrPermissionDenied)
		}
		tok = fresh
	case MethodServiceAccount, MethodPassword:
		body := map[string]string{"uid": a.uid}
		if a.method == MethodPassword {
			body["password"] = a.password
		} else {
			lt, err := signLoginToken(a.uid, a.key, time.Now())
			if err != nil {
				return fmt.Errorf("dcos backend: log in as %s: %w", s.who(), err)
			}
			body["token"] = lt
		}
		var err error
		if tok, err = s.postLogin(ctx, body); err != nil {
			return err
		}
	}
	now := time.Now()
	s.token, s.obtained, s.gen = tok, now, s.gen+1
	s.exp = time.Time{}
	// A given token is used until the cluster refuses it; a token the backend
	// logged in for is renewed shortly before its exp.
	if c := tokenClaims(tok); c.Exp > 0 && a.method != MethodToken {
		if exp := time.Unix(c.Exp, 0); exp.After(now) {
			s.exp = exp
		} else {
			// Renewing by this clock would mean a login per request.
			s.c.logger.Warn("the new DC/OS auth token is already past its exp by this host's clock; is the clock wrong? renewing only when the cluster refuses the token",
				"uid", a.uid, "exp", exp.UTC().Format(time.RFC3339))
		}
	}
	if a.method != MethodToken {
		s.c.logger.Info("logged in to DC/OS", "uid", a.uid, "method", a.method, "token_expires_in", s.exp.Sub(now).Round(time.Second).String())
	}
	return nil
}

// postLogin posts a LoginObject and returns the auth token. body holds a
// credential: it is redacted from anything the cluster sends back.
func (s *session) postLogin(ctx context.Context, body map[string]string) (string, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	defer clear(payload)
	resp, err := s.c.send(ctx, request{method: http.MethodPost, path: loginPath, body: payload, contentType: "application/json", accept: "application/json"}, "")
	if err != nil {
		return "", err
	}
	defer clear(resp.body)
	switch {
	case resp.status == http.StatusOK:
		var out struct {
			Token string `json:"token"`
		}
		if json.Unmarshal(resp.body, &out) != nil || out.Token == "" {
			return "", fmt.Errorf("dcos backend: log in as %s: the answer of %s is not the documented {\"token\": …}: %w", s.who(), loginPath, plugin.ErrUnavailable)
		}
		return out.Token, nil
	case resp.status == http.StatusUnauthorized || resp.status == http.StatusBadRequest || resp.status == http.StatusForbidden:
		reason := redact(iamReason(resp.body), body["password"], body["token"])
		return "", fmt.Errorf("dcos backend: log in as %s refused (%d%s): check the account and its credentials (%s): %w",
			s.who(), resp.status, reason, s.credentialSource(), plugin.ErrPermissionDenied)
	default:
		return "", statusError(resp.status, "log in as "+s.who()+" at "+loginPath)
	}
}

func (s *session) credentialSource() string {
	switch s.c.s.auth.method {
	case MethodServiceAccount:
		return "the service-account secret's uid and private_key, and the public key registered for the account"
	default:
		return "auth.uid and auth.password_file"
	}
}

// iamReason returns ": <code>: <description>" from an IAM error body, or "".
func iamReason(body []byte) string {
	var e struct {
		Code        string `json:"code"`
		Description string `json:"description"`
	}
	if json.Unmarshal(body, &e) != nil || (e.Code == "" && e.Description == "") {
		return ""
	}
	d := e.Description
	if len(d) > 200 {
		d = d[:200] + "…"
	}
	return strings.TrimRight(": "+e.Code+": "+d, ": ")
}

// redact removes every non-empty secret from s.
func redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
