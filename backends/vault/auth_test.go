package vault_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyship/keyship/backends/vault"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
)

// kvReadPolicy may read (and list) everything in secret/ and kv1/.
const kvReadPolicy = `
path "secret/data/*" { capabilities = ["read", "list"] }
path "secret/metadata/*" { capabilities = ["list"] }
path "kv1/*" { capabilities = ["read", "list"] }
`

func write(t testing.TB, c *api.Client, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

func randomHex(t testing.TB) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// appRole enables AppRole at mount, creates role with the kv-read policy
// and settings, and returns the role id.
func appRole(t testing.TB, root *api.Client, mount, role string, settings map[string]any) string {
	t.Helper()
	if err := root.Sys().EnableAuthWithOptions(mount, &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("kv-read", kvReadPolicy); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"token_policies": "kv-read"}
	for k, v := range settings {
		body[k] = v
	}
	write(t, root, "auth/"+mount+"/role/"+role, body)
	s, err := root.Logical().Read("auth/" + mount + "/role/" + role + "/role-id")
	if err != nil || s == nil {
		t.Fatalf("read role id: %v", err)
	}
	return s.Data["role_id"].(string)
}

func secretID(t testing.TB, root *api.Client, mount, role string) string {
	t.Helper()
	return write(t, root, "auth/"+mount+"/role/"+role+"/secret-id", nil).Data["secret_id"].(string)
}

// revokeLogins revokes every token issued by logins at auth mount.
func revokeLogins(t testing.TB, root *api.Client, mount string) {
	t.Helper()
	write(t, root, "sys/leases/revoke-prefix/auth/"+mount+"/login", nil)
}

func TestAppRoleLogin(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	roleID := appRole(t, root, "approle-login", "spark", nil)
	putKV2(t, root, "secret", "approle/tls", map[string]any{"password": "pw"})
	b := configured(t, map[string]string{
		"address":             s.Addr,
		"auth.method":         vault.MethodAppRole,
		"auth.mount":          "approle-login",
		"auth.role_id":        roleID,
		"auth.secret_id_file": secretFile(t, secretID(t, root, "approle-login", "spark")),
	})
	if r := get(t, b, plugin.Ref{Path: "secret/approle/tls", Field: "password"}); r.Err != nil || string(r.Secret.Data) != "pw" {
		t.Fatalf("read with an AppRole token: %q %v", r.Secret.Data, r.Err)
	}
	if n := vault.Logins(b); n != 1 {
		t.Errorf("%d logins, want 1", n)
	}
	// A revoked token is replaced by one new login, and the read succeeds.
	revokeLogins(t, root, "approle-login")
	if r := get(t, b, plugin.Ref{Path: "secret/approle/tls", Field: "password"}); r.Err != nil {
		t.Fatalf("read after the token was revoked: %v", r.Err)
	}
	if n := vault.Logins(b); n != 2 {
		t.Errorf("%d logins after revocation, want 2", n)
	}
}

func TestAppRoleWrappedSecretID(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	roleID := appRole(t, root, "approle-wrapped", "spark", nil)
	wrapper, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	wrapper.SetToken(s.RootToken)
	wrapper.SetWrappingLookupFunc(func(string, string) string { return "120s" })
	ws, err := wrapper.Logical().Write("auth/approle-wrapped/role/spark/secret-id", nil)
	if err != nil || ws == nil || ws.WrapInfo == nil {
		t.Fatalf("wrapped secret id: %v", err)
	}
	putKV2(t, root, "secret", "wrapped/tls", map[string]any{"password": "pw"})
	b := configured(t, map[string]string{
		"address":                s.Addr,
		"auth.method":            vault.MethodAppRole,
		"auth.mount":             "approle-wrapped",
		"auth.role_id_file":      secretFile(t, roleID),
		"auth.secret_id_file":    secretFile(t, ws.WrapInfo.Token),
		"auth.secret_id_wrapped": "true",
	})
	ref := plugin.Ref{Path: "secret/wrapped/tls", Field: "password"}
	if r := get(t, b, ref); r.Err != nil || string(r.Secret.Data) != "pw" {
		t.Fatalf("read with a wrapped secret id: %v", r.Err)
	}
	// The wrapping token is spent; a second login reuses the unwrapped id.
	revokeLogins(t, root, "approle-wrapped")
	if r := get(t, b, ref); r.Err != nil {
		t.Fatalf("read after re-login with a spent wrapping token: %v", r.Err)
	}
	if n := vault.Logins(b); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
	// A fresh backend with the spent wrapping token is refused, clearly.
	b2 := configured(t, map[string]string{
		"address": s.Addr, "auth.method": vault.MethodAppRole, "auth.mount": "approle-wrapped",
		"auth.role_id": roleID, "auth.secret_id_file": secretFile(t, ws.WrapInfo.Token), "auth.secret_id_wrapped": "true",
	})
	r := get(t, b2, ref)
	if !errors.Is(r.Err, plugin.ErrPermissionDenied) || !strings.Contains(r.Err.Error(), "wrapping token") {
		t.Errorf("spent wrapping token: %v", r.Err)
	}
	if strings.Contains(r.Err.Error(), ws.WrapInfo.Token) {
		t.Error("the error quotes the wrapping token")
	}
}

// TestTokenRenewedThenReplacedByLogin runs reads for longer than the
// token's max TTL: the token is renewed, then replaced by a new login, and
// no read fails.
func TestTokenRenewedThenReplacedByLogin(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	roleID := appRole(t, root, "approle-short", "short", map[string]any{"token_ttl": "10s", "token_max_ttl": "20s"})
	putKV2(t, root, "secret", "renew/tls", map[string]any{"password": "pw"})
	logger, logs := captureLogger()
	b := vault.NewWithLogger(logger)
	if err := b.Configure(context.Background(), map[string]string{
		"address": s.Addr, "auth.method": vault.MethodAppRole, "auth.mount": "approle-short",
		"auth.role_id": roleID, "auth.secret_id_file": secretFile(t, secretID(t, root, "approle-short", "short")),
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ref := plugin.Ref{Path: "secret/renew/tls", Field: "password"}
	// Read until the first token's max TTL (20s) has passed and a second
	// login happened, within a bound.
	start := time.Now()
	deadline := start.Add(40 * time.Second)
	reads := 0
	for time.Since(start) < 22*time.Second || vault.Logins(b) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no second login %s after the first, with a 20s max TTL", time.Since(start))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := b.Get(ctx, []plugin.Ref{ref})
		cancel()
		if err == nil {
			err = res[0].Err
		}
		if err != nil {
			t.Fatalf("read %d, %s after the first: %v", reads, time.Since(start), err)
		}
		reads++
		time.Sleep(250 * time.Millisecond)
	}
	if n := vault.Renewals(b); n < 1 {
		t.Errorf("token renewed %d times, want at least 1", n)
	}
	if n := vault.Logins(b); n < 2 {
		t.Errorf("%d logins in %s with a 20s max TTL, want at least 2", n, time.Since(start))
	}
	if !strings.Contains(logs.String(), "Vault token renewal ended; logging in again") {
		t.Errorf("no log line says renewal ended and the backend logged in again:\n%s", logs)
	}
	t.Logf("%d reads, %d renewals, %d logins", reads, vault.Renewals(b), vault.Logins(b))
}

func TestPermissionDeniedNamesPathAndCapability(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	if err := root.Sys().PutPolicy("allowed-only", `
path "secret/data/allowed/*" { capabilities = ["read"] }
path "kv1/allowed/*" { capabilities = ["read"] }
`); err != nil {
		t.Fatal(err)
	}
	tok := write(t, root, "auth/token/create", map[string]any{"policies": "allowed-only", "ttl": "1h"}).Auth.ClientToken
	putKV2(t, root, "secret", "allowed/tls", map[string]any{"password": "pw"})
	putKV2(t, root, "secret", "denied/tls", map[string]any{"password": "pw"})
	putKV1(t, root, "kv1", "denied/tls", map[string]any{"password": "pw"})
	b := configured(t, map[string]string{"address": s.Addr, "auth.token_file": secretFile(t, tok)})
	if r := get(t, b, plugin.Ref{Path: "secret/allowed/tls", Field: "password"}); r.Err != nil {
		t.Fatalf("allowed read: %v", r.Err)
	}
	for ref, want := range map[plugin.Ref]string{
		{Path: "secret/denied/tls", Field: "password"}: `"read" capability on "secret/data/denied/tls"`,
		{Path: "kv1/denied/tls", Field: "password"}:    `"read" capability on "kv1/denied/tls"`,
	} {
		r := get(t, b, ref)
		if !errors.Is(r.Err, plugin.ErrPermissionDenied) || !strings.Contains(r.Err.Error(), want) {
			t.Errorf("%v: %v, want ErrPermissionDenied saying %s", ref, r.Err, want)
		}
	}
	// The token is valid, so a 403 is the policy's answer: no new login.
	if n := vault.Logins(b); n != 1 {
		t.Errorf("%d logins after 403s with a valid token, want 1", n)
	}
	// A token with no access to a mount at all fails the mount detection.
	r := get(t, b, plugin.Ref{Path: "cubbyhole/x", Field: "f"})
	if r.Err == nil {
		t.Error("read in another token's cubbyhole succeeded")
	}
}

func TestRevokedTokenOneReloginNoLoop(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	if err := root.Sys().PutPolicy("kv-read", kvReadPolicy); err != nil {
		t.Fatal(err)
	}
	tok := write(t, root, "auth/token/create", map[string]any{"policies": "kv-read", "ttl": "1h"}).Auth.ClientToken
	putKV2(t, root, "secret", "noloop/tls", map[string]any{"password": "pw"})
	b := configured(t, map[string]string{"address": s.Addr, "auth.token_file": secretFile(t, tok)})
	ref := plugin.Ref{Path: "secret/noloop/tls", Field: "password"}
	if r := get(t, b, ref); r.Err != nil {
		t.Fatal(r.Err)
	}
	if err := root.Auth().Token().RevokeTree(tok); err != nil {
		t.Fatal(err)
	}
	res, err := b.Get(context.Background(), []plugin.Ref{ref, {Path: "secret/noloop/other", Field: "f"}, {Path: "kv1/noloop", Field: "f"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !errors.Is(r.Err, plugin.ErrPermissionDenied) {
			t.Errorf("result %d, read with a revoked token and no other: %v, want ErrPermissionDenied", i, r.Err)
		}
	}
	if n := vault.Logins(b); n != 2 {
		t.Errorf("%d logins for a batch of 3 refs, want 2: the first and exactly one after the 403", n)
	}
}

// es256 signs claims as a compact JWS with key.
func es256(t testing.TB, key *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "ES256", "typ": "JWT"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestJWTFileReadAtEveryLogin runs the jwt method, and the kubernetes
// method's login against a JWT engine standing in for Kubernetes (the
// request is the same: role and jwt); the JWT file is read at every login.
func TestJWTFileReadAtEveryLogin(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	if err := root.Sys().PutPolicy("kv-read", kvReadPolicy); err != nil {
		t.Fatal(err)
	}
	putKV2(t, root, "secret", "jwt/tls", map[string]any{"password": "pw"})
	jwt := func(k *ecdsa.PrivateKey) string {
		now := time.Now().Unix()
		return es256(t, k, map[string]any{"sub": "spark-driver", "aud": "keyship", "iat": now, "nbf": now - 5, "exp": now + 600})
	}
	for _, method := range []string{vault.MethodJWT, vault.MethodKubernetes} {
		mount := "jwt-for-" + method
		if err := root.Sys().EnableAuthWithOptions(mount, &api.EnableAuthOptions{Type: "jwt"}); err != nil {
			t.Fatal(err)
		}
		write(t, root, "auth/"+mount+"/config", map[string]any{"jwt_validation_pubkeys": []string{pubPEM}})
		write(t, root, "auth/"+mount+"/role/spark", map[string]any{
			"role_type": "jwt", "user_claim": "sub", "bound_audiences": "keyship", "token_policies": "kv-read", "token_ttl": "1h",
		})
		jwtFile := secretFile(t, jwt(key))
		b := configured(t, map[string]string{
			"address": s.Addr, "auth.method": method, "auth.mount": mount, "auth.role": "spark", "auth.jwt_file": jwtFile,
		})
		ref := plugin.Ref{Path: "secret/jwt/tls", Field: "password"}
		if r := get(t, b, ref); r.Err != nil || string(r.Secret.Data) != "pw" {
			t.Fatalf("%s: read: %v", method, r.Err)
		}
		// A JWT signed by an unknown key in the file: the next login uses it, and fails.
		bad := jwt(other)
		writeFile(t, jwtFile, bad)
		revokeLogins(t, root, mount)
		r := get(t, b, ref)
		if !errors.Is(r.Err, plugin.ErrPermissionDenied) || !strings.Contains(r.Err.Error(), "refused the credentials") {
			t.Errorf("%s: login with a bad JWT: %v", method, r.Err)
		} else if strings.Contains(r.Err.Error(), bad) {
			t.Errorf("%s: the error quotes the JWT", method)
		}
		// A rotated, valid JWT: picked up by the next read's login.
		writeFile(t, jwtFile, jwt(key))
		if r := get(t, b, ref); r.Err != nil {
			t.Errorf("%s: read after the JWT file was rotated: %v", method, r.Err)
		}
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCanariesNeverLogged plants a canary token, role id and secret ids,
// drives successes and every kind of failure in-process and through the
// plugin subprocess, and checks that no log line and no error contains them.
func TestCanariesNeverLogged(t *testing.T) {
	// Not parallel: it sets the plugin log level in the environment.
	t.Setenv("KEYSHIP_PLUGIN_LOG_LEVEL", "trace")
	s := sharedServer(t)
	root := s.Client(t)
	canaryToken := "canary-token-" + randomHex(t)
	canarySecretID := "canary-secret-id-" + randomHex(t)
	canaryWrongID := "canary-wrong-secret-id-" + randomHex(t)
	canaryRoleID := "canary-role-id-" + randomHex(t)
	canaries := []string{canaryToken, canarySecretID, canaryWrongID, canaryRoleID}

	appRole(t, root, "approle-canary", "spark", nil)
	write(t, root, "auth/approle-canary/role/spark/role-id", map[string]any{"role_id": canaryRoleID})
	write(t, root, "auth/approle-canary/role/spark/custom-secret-id", map[string]any{"secret_id": canarySecretID})
	// The wrong secret id goes to another role: Vault locks a role's
	// credentials out after a few failed logins.
	write(t, root, "auth/approle-canary/role/wrong", map[string]any{"token_policies": "kv-read"})
	write(t, root, "auth/approle-canary/role/wrong/role-id", map[string]any{"role_id": canaryRoleID + "-wrong"})
	write(t, root, "auth/token/create", map[string]any{"id": canaryToken, "policies": "kv-read", "ttl": "1h"})
	putKV2(t, root, "secret", "canary/tls", map[string]any{"password": "pw"})

	configs := map[string]map[string]string{
		"token": {"address": s.Addr, "auth.token_file": secretFile(t, canaryToken)},
		"approle": {"address": s.Addr, "auth.method": vault.MethodAppRole, "auth.mount": "approle-canary",
			"auth.role_id": canaryRoleID, "auth.secret_id_file": secretFile(t, canarySecretID)},
		"approle-wrong": {"address": s.Addr, "auth.method": vault.MethodAppRole, "auth.mount": "approle-canary",
			"auth.role_id": canaryRoleID + "-wrong", "auth.secret_id_file": secretFile(t, canaryWrongID)},
		"token-inline": {"address": s.Addr, "auth.token": canaryToken},
	}
	refs := []plugin.Ref{
		{Path: "secret/canary/tls", Field: "password"},
		{Path: "secret/canary/tls", Field: "missing"},
		{Path: "secret/absent/tls", Field: "password"},
		{Path: "nomount/x", Field: "f"},
		{Path: "sys/policy/root", Field: "f"},
		{Path: "secret/canary/tls", Field: "password", Version: "7"},
	}
	var texts []string
	exercise := func(name string, b plugin.Backend, cfg map[string]string) {
		if err := b.Configure(context.Background(), cfg); err != nil {
			texts = append(texts, err.Error())
			return
		}
		res, err := b.Get(context.Background(), refs)
		if err != nil {
			texts = append(texts, err.Error())
			return
		}
		for _, r := range res {
			if r.Err != nil {
				texts = append(texts, r.Err.Error())
			}
		}
		if _, err := b.(plugin.Issuer).Issue(context.Background(), plugin.IssueRequest{Path: "nopki/issue/x", DNSNames: []string{"a.test"}}); err != nil {
			texts = append(texts, err.Error())
		}
		if name == "approle" {
			revokeLogins(t, root, "approle-canary") // force a re-login, logged
			if res, err := b.Get(context.Background(), refs[:1]); err != nil || res[0].Err != nil {
				t.Errorf("%s: read after re-login: %v %v", name, err, res[0].Err)
			}
		}
	}
	logger, logs := captureLogger()
	for name, cfg := range configs {
		b := vault.NewWithLogger(logger.Named(name))
		exercise(name, b, cfg)
		_ = b.Close()
	}
	hostLogger, hostLogs := captureLogger()
	for name, cfg := range configs {
		sub, err := launch.Start(context.Background(), "vault", pluginBin, "", hostLogger)
		if err != nil {
			t.Fatal(err)
		}
		exercise(name, sub, cfg)
		_ = sub.Close()
	}
	all := logs.String() + hostLogs.String() + strings.Join(texts, "\n")
	for _, must := range []string{"logged in to Vault", "login to Vault failed", "Vault rejected the token", "refused the credentials", "permission denied", "no secret at"} {
		if !strings.Contains(all, must) {
			t.Errorf("the captured logs and errors never say %q: the test did not exercise what it should", must)
		}
	}
	if !strings.Contains(hostLogs.String(), "logged in to Vault") {
		t.Error("no plugin log line reached the host log")
	}
	for _, c := range canaries {
		for _, line := range strings.Split(all, "\n") {
			if strings.Contains(line, c) {
				t.Errorf("a canary credential appears in a log line or error (line redacted here, %d bytes)", len(line))
			}
		}
	}
	t.Logf("checked %d log bytes and %d errors", len(logs.String())+len(hostLogs.String()), len(texts))
}
