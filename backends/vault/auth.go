package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"

	"github.com/keyship/keyship/plugin"
)

// loginTimeout bounds a login that no caller's ctx bounds (the one after
// token renewal ends).
const loginTimeout = 30 * time.Second

// minWatch is how long a token's renewal must have run before its end
// triggers a login in the background. A token that ends sooner (a TTL below
// the watcher's grace period) is replaced by the next read instead, so that
// a short-lived token can never make the backend log in in a tight loop.
const minWatch = 2 * time.Second

// authenticator owns the client's token: it logs in on first use, renews
// the token with the api's LifetimeWatcher, logs in again when renewal ends,
// and once more when Vault rejects the token (recover).
type authenticator struct {
	client *api.Client
	s      authSettings
	logger hclog.Logger
	red    *redactor

	sem chan struct{} // held while logging in; waiting honours ctx

	mu        sync.Mutex // guards what follows
	gen       uint64     // token generation; 0 before the first login
	stale     bool       // renewal ended and the login after it failed
	token     string     // the token in use
	old       []string   // earlier tokens and credentials, for redaction
	secretID  string     // an unwrapped secret id, reused for later logins
	wrapToken string     // the wrapping token secretID came from
	stopWatch func()
	closed    bool

	logins   atomic.Int64
	renewals atomic.Int64
}

func newAuthenticator(client *api.Client, s authSettings, logger hclog.Logger) *authenticator {
	a := &authenticator{client: client, s: s, logger: logger, sem: make(chan struct{}, 1)}
	a.red = &redactor{secrets: a.credentials}
	return a
}

// credentials returns every credential the authenticator has held, for
// redaction.
func (a *authenticator) credentials() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := append([]string{a.token, a.secretID, a.wrapToken, a.s.token, a.s.roleID}, a.old...)
	return out
}

// remember records a credential for redaction; it keeps the newest 16.
func (a *authenticator) remember(creds ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range creds {
		if c = strings.TrimSpace(c); c != "" {
			a.old = append(a.old, c)
		}
	}
	if n := len(a.old); n > 16 {
		a.old = append([]string(nil), a.old[n-16:]...)
	}
}

// ensure returns the current token generation, logging in first if there is
// no usable token.
func (a *authenticator) ensure(ctx context.Context) (uint64, error) {
	a.mu.Lock()
	gen, stale, closed := a.gen, a.stale, a.closed
	a.mu.Unlock()
	if closed {
		return 0, fmt.Errorf("vault backend: used after Close: %w", plugin.ErrInvalidConfig)
	}
	if gen != 0 && !stale {
		return gen, nil
	}
	return a.login(ctx, gen, false)
}

// recover is called after Vault answered 403 to a request made with token
// generation seen. It reports whether the request is worth one retry: when
// a newer token exists, or when the token itself was rejected (expired or
// revoked) and a new login succeeded. A token that is valid but lacks the
// policy gets no retry: the 403 is the answer.
func (a *authenticator) recover(ctx context.Context, seen uint64) (bool, error) {
	a.mu.Lock()
	cur := a.gen
	a.mu.Unlock()
	if cur != seen {
		return true, nil
	}
	_, err := a.client.Auth().Token().LookupSelfWithContext(ctx)
	if err == nil || statusOf(err) != 403 {
		return false, nil
	}
	a.logger.Info("Vault rejected the token; logging in again", "method", a.s.method)
	if _, err := a.login(ctx, seen, false); err != nil {
		return false, err
	}
	return true, nil
}

// login logs in, unless another goroutine already replaced token
// generation seen. fromWatcher marks the login after renewal ended.
func (a *authenticator) login(ctx context.Context, seen uint64, fromWatcher bool) (uint64, error) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, fmt.Errorf("vault backend: waiting for login: %w", ctx.Err())
	}
	defer func() { <-a.sem }()
	a.mu.Lock()
	if a.gen != seen && !a.stale {
		gen := a.gen
		a.mu.Unlock()
		return gen, nil
	}
	a.mu.Unlock()

	secret, err := a.doLogin(ctx)
	if err != nil {
		a.logger.Warn("login to Vault failed", "method", a.s.method, "error", a.red.redact(err.Error()))
		return 0, err
	}
	tok := secret.Auth.ClientToken
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return 0, fmt.Errorf("vault backend: used after Close: %w", plugin.ErrInvalidConfig)
	}
	prev := a.token
	a.client.SetToken(tok)
	a.token, a.stale = tok, false
	a.gen++
	gen := a.gen
	if a.stopWatch != nil {
		a.stopWatch()
		a.stopWatch = nil
	}
	a.mu.Unlock()
	a.remember(prev) // still redacted after it is replaced
	a.logins.Add(1)
	ttl := time.Duration(secret.Auth.LeaseDuration) * time.Second
	a.logger.Info("logged in to Vault", "method", a.s.method, "ttl", ttl.String(), "renewable", secret.Auth.Renewable)
	switch {
	case ttl <= 0:
		// A token that never expires (a root token) needs no renewal.
	case fromWatcher && tok == prev:
		a.logger.Warn("the Vault token reached the end of its life and no new one is available; replace it", "method", a.s.method)
	default:
		a.watch(gen, secret)
	}
	return gen, nil
}

// doLogin performs one login with the configured method and returns a
// secret whose Auth holds the token and its lease.
func (a *authenticator) doLogin(ctx context.Context) (*api.Secret, error) {
	switch a.s.method {
	case MethodToken:
		return a.adoptToken(ctx)
	case MethodAppRole:
		roleID := a.s.roleID
		if a.s.roleIDFile != "" {
			b, err := readCredential(a.s.roleIDFile, "auth.role_id_file")
			if err != nil {
				return nil, err
			}
			roleID = b
			a.remember(roleID)
		}
		body := map[string]any{"role_id": roleID}
		if a.s.secretIDFile != "" {
			sid, err := a.appRoleSecretID(ctx)
			if err != nil {
				return nil, err
			}
			body["secret_id"] = sid
		}
		return a.write(ctx, "auth/"+a.s.mount+"/login", body)
	default: // jwt, kubernetes: the JWT is read at every login, so rotated tokens are used
		jwt, err := readCredential(a.s.jwtFile, "auth.jwt_file")
		if err != nil {
			return nil, err
		}
		a.remember(jwt)
		return a.write(ctx, "auth/"+a.s.mount+"/login", map[string]any{"role": a.s.role, "jwt": jwt})
	}
}

// adoptToken reads the configured token and looks it up to learn its lease.
func (a *authenticator) adoptToken(ctx context.Context) (*api.Secret, error) {
	tok := a.s.token
	if a.s.tokenFile != "" {
		var err error
		if tok, err = readCredential(a.s.tokenFile, "auth.token_file"); err != nil {
			return nil, err
		}
	}
	a.remember(tok)
	c, err := a.client.CloneWithHeaders()
	if err != nil {
		return nil, fmt.Errorf("vault backend: token: %w", err)
	}
	c.SetToken(tok)
	out := &api.Secret{Auth: &api.SecretAuth{ClientToken: tok}}
	self, err := c.Auth().Token().LookupSelfWithContext(ctx)
	switch {
	case err != nil && statusOf(err) == 403:
		// Expired, revoked, or a token without the default policy: use it
		// as it is; a read that Vault refuses says so.
		a.logger.Warn("cannot look up the Vault token (expired, revoked, or no default policy); it will not be renewed", "method", a.s.method)
		return out, nil
	case err != nil:
		return nil, mapError(ctx, "look up token", err, a.red)
	}
	if ttl, err := self.TokenTTL(); err == nil {
		out.Auth.LeaseDuration = int(ttl / time.Second)
	}
	if ok, err := self.TokenIsRenewable(); err == nil {
		out.Auth.Renewable = ok
	}
	return out, nil
}

// appRoleSecretID returns the secret id for an AppRole login: the file's
// content, or, with auth.secret_id_wrapped, the secret id unwrapped from the
// response-wrapping token in the file. A wrapping token works once, so the
// unwrapped secret id is kept for later logins until the file changes.
func (a *authenticator) appRoleSecretID(ctx context.Context) (string, error) {
	content, err := readCredential(a.s.secretIDFile, "auth.secret_id_file")
	if err != nil {
		return "", err
	}
	a.remember(content)
	if !a.s.secretIDWrapped {
		return content, nil
	}
	a.mu.Lock()
	if content == a.wrapToken && a.secretID != "" {
		sid := a.secretID
		a.mu.Unlock()
		return sid, nil
	}
	a.mu.Unlock()
	c, err := a.client.CloneWithHeaders()
	if err != nil {
		return "", fmt.Errorf("vault backend: unwrap secret id: %w", err)
	}
	c.SetToken(content)
	s, err := c.Logical().UnwrapWithContext(ctx, "")
	if err != nil {
		if code := statusOf(err); code == 400 || code == 403 {
			return "", fmt.Errorf("vault backend: unwrap the secret id in auth.secret_id_file %q: Vault refused the wrapping token (HTTP %d; a wrapping token works once and expires): %w",
				a.s.secretIDFile, code, plugin.ErrPermissionDenied)
		}
		return "", mapError(ctx, "unwrap the secret id in auth.secret_id_file", err, a.red)
	}
	var sid string
	if s != nil {
		sid, _ = s.Data["secret_id"].(string)
	}
	if sid == "" {
		return "", fmt.Errorf("vault backend: the wrapping token in auth.secret_id_file %q does not wrap an AppRole secret id: %w", a.s.secretIDFile, plugin.ErrInvalidConfig)
	}
	a.mu.Lock()
	a.secretID, a.wrapToken = sid, content
	a.mu.Unlock()
	return sid, nil
}

// write posts a login request without any token.
func (a *authenticator) write(ctx context.Context, path string, body map[string]any) (*api.Secret, error) {
	c, err := a.client.CloneWithHeaders()
	if err != nil {
		return nil, fmt.Errorf("vault backend: login: %w", err)
	}
	c.ClearToken()
	what := fmt.Sprintf("login with %s at %s", a.s.method, path)
	s, err := c.Logical().WriteWithContext(ctx, path, body)
	if err != nil {
		if code := statusOf(err); code == 400 || code == 403 {
			return nil, fmt.Errorf("vault backend: %s: Vault refused the credentials (HTTP %d): %s: %w",
				what, code, vaultReasons(err, a.red), plugin.ErrPermissionDenied)
		}
		return nil, mapError(ctx, what, err, a.red)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, fmt.Errorf("vault backend: %s: Vault returned no token: %w", what, plugin.ErrUnavailable)
	}
	return s, nil
}

// watch renews the token of generation gen until its max TTL, then logs in
// again in the background.
func (a *authenticator) watch(gen uint64, secret *api.Secret) {
	w, err := a.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		a.logger.Warn("cannot renew the Vault token; the next read after it expires logs in again", "error", err.Error())
		return
	}
	stop := make(chan struct{})
	a.mu.Lock()
	if a.gen != gen || a.closed {
		a.mu.Unlock()
		return
	}
	var once sync.Once
	a.stopWatch = func() { once.Do(func() { close(stop) }) }
	a.mu.Unlock()
	started := time.Now()
	go w.Start()
	go func() {
		defer w.Stop()
		for {
			select {
			case <-stop:
				return
			case r := <-w.RenewCh():
				a.renewals.Add(1)
				if r != nil && r.Secret != nil && r.Secret.Auth != nil {
					a.logger.Debug("renewed the Vault token", "method", a.s.method, "ttl", (time.Duration(r.Secret.Auth.LeaseDuration) * time.Second).String())
				}
			case err := <-w.DoneCh():
				select {
				case <-stop:
					return
				default:
				}
				reason := "it reached its max TTL"
				if err != nil {
					reason = a.red.redact(err.Error())
				}
				if time.Since(started) < minWatch {
					a.logger.Info("Vault token renewal ended early; the next read logs in again", "method", a.s.method, "reason", reason)
					a.markStale(gen)
					return
				}
				a.logger.Info("Vault token renewal ended; logging in again", "method", a.s.method, "reason", reason)
				ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
				_, err = a.login(ctx, gen, true)
				cancel()
				if err != nil {
					a.logger.Warn("login after token renewal ended failed; the next read tries again", "error", err.Error())
					a.markStale(gen)
				}
				return
			}
		}
	}()
}

// markStale makes the next read log in, if gen is still the current token.
func (a *authenticator) markStale(gen uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen == gen {
		a.stale = true
	}
}

// close stops renewal; later reads fail.
func (a *authenticator) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	if a.stopWatch != nil {
		a.stopWatch()
		a.stopWatch = nil
	}
}

// readCredential reads a credential file, trimming surrounding space.
func readCredential(path, setting string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("vault backend: %s %q: %v: %w", setting, path, err, plugin.ErrInvalidConfig)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("vault backend: %s %q is empty: %w", setting, path, plugin.ErrInvalidConfig)
	}
	return s, nil
}
