package dcostest_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyship/keyship/backends/dcos/dcostest"
)

// client trusts only the server's CA.
func client(s *dcostest.Server) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(s.CA.Cert)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func do(t *testing.T, s *dcostest.Server, method, path, token, accept string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "token="+token)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := client(s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

func loginSA(t *testing.T, s *dcostest.Server, uid string, key *rsa.PrivateKey, exp time.Time) (int, string) {
	t.Helper()
	lt, err := dcostest.SignRS256(dcostest.Claims{UID: uid, Exp: exp.Unix()}, key)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, s, http.MethodPost, "/acs/api/v1/auth/login", "", "", map[string]string{"uid": uid, "token": lt})
	var out struct {
		Token string `json:"token"`
	}
	_ = json.Unmarshal(body, &out)
	return resp.StatusCode, out.Token
}

func saKey(t *testing.T, s *dcostest.Server, uid string) *rsa.PrivateKey {
	t.Helper()
	var sa dcostest.ServiceAccountSecret
	if err := json.Unmarshal(s.NewServiceAccount(t, uid), &sa); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

func TestLoginIsStrict(t *testing.T) {
	s := dcostest.New(t)
	key := saKey(t, s, "sa")
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cases := []struct {
		name string
		key  *rsa.PrivateKey
		exp  time.Time
		want int
	}{
		{"valid", key, now.Add(5 * time.Minute), http.StatusOK},
		{"exp more than 10 minutes ahead", key, now.Add(11 * time.Minute), http.StatusUnauthorized},
		{"exp in the past", key, now.Add(-time.Minute), http.StatusUnauthorized},
		{"signed with another key", other, now.Add(time.Minute), http.StatusUnauthorized},
	}
	for _, c := range cases {
		if got, _ := loginSA(t, s, "sa", c.key, c.exp); got != c.want {
			t.Errorf("%s: login status %d, want %d", c.name, got, c.want)
		}
	}
	if got, _ := loginSA(t, s, "nobody", key, now.Add(time.Minute)); got != http.StatusUnauthorized {
		t.Errorf("unknown uid: %d", got)
	}
	s.AddUser("alice", "pw")
	if resp, _ := do(t, s, http.MethodPost, "/acs/api/v1/auth/login", "", "", map[string]string{"uid": "alice", "password": "wrong"}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", resp.StatusCode)
	}
	if resp, _ := do(t, s, http.MethodPost, "/acs/api/v1/auth/login", "", "", map[string]string{"uid": "alice", "password": "pw"}); resp.StatusCode != http.StatusOK {
		t.Errorf("right password: %d", resp.StatusCode)
	}
	if s.Logins("sa") != 4 || s.Logins("alice") != 2 {
		t.Errorf("logins counted sa=%d alice=%d", s.Logins("sa"), s.Logins("alice"))
	}
}

func TestSecretsAPIIsStrict(t *testing.T) {
	s := dcostest.New(t, dcostest.WithTokenLifetime(2*time.Second))
	key := saKey(t, s, "sa")
	s.Grant("sa", "dcos:secrets:default:/spark/pw", "read")
	s.Grant("sa", "dcos:secrets:default:/spark/ks", "read")
	s.Grant("sa", "dcos:secrets:list:default:/spark", "read")
	s.PutText("/spark/pw", "changeit")
	s.PutBinary("spark/ks", []byte{0, 1, 2, 0xFE})
	s.PutText("/spark/secret", "x")
	s.PutText("/other/x", "y")

	resp, _ := do(t, s, http.MethodGet, "/secrets/v1/secret/default/spark/pw", "", "", nil)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "acsjwt" {
		t.Fatalf("no token: %d %q, want 401 with WWW-Authenticate: acsjwt", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp, _ := do(t, s, http.MethodGet, "/secrets/v1/secret/default/spark/pw", "forged.token.x", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged token: %d", resp.StatusCode)
	}
	_, tok := loginSA(t, s, "sa", key, time.Now().Add(time.Minute))

	resp, body := do(t, s, http.MethodGet, "/secrets/v1/secret/default/spark/pw", tok, "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"value":"changeit"`) {
		t.Errorf("text secret: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = do(t, s, http.MethodGet, "/secrets/v1/secret/default/spark/ks", tok, "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" || !bytes.Equal(body, []byte{0, 1, 2, 0xFE}) {
		t.Errorf("binary secret: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := do(t, s, http.MethodGet, "/secrets/v1/secret/default/spark/ks", tok, "application/json", nil); resp.StatusCode != http.StatusNotAcceptable {
		t.Errorf("binary secret as JSON: %d, want 406", resp.StatusCode)
	}
	if resp, body := do(t, s, http.MethodGet, "/secrets/v1/secret/default/spark/pw", tok, "application/octet-stream", nil); resp.StatusCode != 200 || string(body) != "changeit" {
		t.Errorf("text secret as octet-stream: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do(t, s, http.MethodGet, "/secrets/v1/secret/default/spark/secret", tok, "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("ungranted secret: %d, want 403", resp.StatusCode)
	}
	s.Grant("sa", "dcos:secrets:default:/spark/missing", "read")
	if resp, _ := do(t, s, http.MethodGet, "/secrets/v1/secret/default/spark/missing", tok, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing secret: %d, want 404", resp.StatusCode)
	}
	resp, body = do(t, s, http.MethodGet, "/secrets/v1/secret/default/spark?list=true", tok, "", nil)
	if resp.StatusCode != 200 || string(bytes.TrimSpace(body)) != `{"array":["ks","pw","secret"]}` {
		t.Errorf("list: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, s, http.MethodGet, "/secrets/v1/secret/default/?list=true", tok, "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("ungranted list of the root: %d, want 403", resp.StatusCode)
	}
	s.FailNext(1, http.StatusServiceUnavailable)
	if resp, _ := do(t, s, http.MethodGet, "/secrets/v1/secret/default/spark/pw", tok, "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("injected failure: %d", resp.StatusCode)
	}
	time.Sleep(2100 * time.Millisecond)
	if resp, _ := do(t, s, http.MethodGet, "/secrets/v1/secret/default/spark/pw", tok, "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired token: %d, want 401", resp.StatusCode)
	}
}

func TestSignHonoursCSRNames(t *testing.T) {
	s := dcostest.New(t)
	key := saKey(t, s, "sa")
	_, tok := loginSA(t, s, "sa", key, time.Now().Add(time.Minute))
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"a.example.com"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]string{"certificate_request": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))}
	if resp, _ := do(t, s, http.MethodPost, "/ca/api/v2/sign", "", "", body); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("sign without a token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := do(t, s, http.MethodPost, "/ca/api/v2/sign", tok, "", body); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign without dcos:adminrouter:ops:ca:rw: %d, want 403", resp.StatusCode)
	}
	s.Grant("sa", "dcos:adminrouter:ops:ca:rw", "full")
	resp, out := do(t, s, http.MethodPost, "/ca/api/v2/sign", tok, "", body)
	var env struct {
		Success bool `json:"success"`
		Result  struct {
			Certificate string `json:"certificate"`
		} `json:"result"`
	}
	if err := json.Unmarshal(out, &env); err != nil || resp.StatusCode != 200 || !env.Success {
		t.Fatalf("sign: %d %s", resp.StatusCode, out)
	}
	block, _ := pem.Decode([]byte(env.Result.Certificate))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != "a.example.com" || len(cert.IPAddresses) != 0 {
		t.Errorf("signed names %v %v, want exactly the CSR's", cert.DNSNames, cert.IPAddresses)
	}
	if err := cert.CheckSignatureFrom(s.CA.Cert); err != nil {
		t.Errorf("not signed by the CA: %v", err)
	}
	body["profile"] = "nope"
	if resp, _ := do(t, s, http.MethodPost, "/ca/api/v2/sign", tok, "", body); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown profile: %d, want 400", resp.StatusCode)
	}
}
