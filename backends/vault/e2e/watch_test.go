package e2e_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/pavlo-v-chernykh/keystore-go/v4"

	"github.com/keyship/keyship/backends/vault/vaulttest"
	kstore "github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/materialize/jssetest"
	"github.com/keyship/keyship/host/materialize/testca"
	"github.com/keyship/keyship/plugin/plugintest"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/watch"
)

// watchSpec keeps a JKS keystore, its passwords and a truststore in one
// Vault KV v2 secret; every rotation writes a new version of it.
const watchSpec = `{"security": {"tls": {"enabled": true,
  "keystore_secret": "vault:secret/spark/tls#keystore:base64",
  "keystore_password": "vault:secret/spark/tls#keystore_password",
  "key_password": "vault:secret/spark/tls#key_password",
  "truststore_secret": "vault:secret/spark/tls#truststore:base64",
  "truststore_password": "vault:secret/spark/tls#truststore_password",
  "ca_bundle_secret": "vault:secret/spark/tls#truststore:base64",
  "protocol": "TLSv1.2"}}}`

// trustPass is the truststore's password; it never changes.
const trustPass = "trust-pass-1"

// vaultJob is a Vault dev server holding watchSpec's secret, a host config
// that loads the real vault plugin with a token that may read that secret
// and its metadata (nothing else), the spec, and the audit log of every
// request.
type vaultJob struct {
	s                      *vaulttest.Server
	root                   *api.Client
	ca                     *testca.CA
	dir, config, spec, box string
	auditLog               string
	token                  string
	version                int
}

func newVaultJob(t *testing.T) *vaultJob {
	t.Helper()
	j := &vaultJob{s: vaulttest.Start(t, vaulttest.Options{}), dir: t.TempDir()}
	j.root = j.s.Client(t)
	j.auditLog = filepath.Join(j.dir, "audit.log")
	if err := j.root.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": j.auditLog}}); err != nil {
		t.Fatal(err)
	}
	var err error
	if j.ca, err = testca.NewCA("keyship watch test CA"); err != nil {
		t.Fatal(err)
	}
	policy := `path "secret/data/spark/tls" { capabilities = ["read"] }
path "secret/metadata/spark/tls" { capabilities = ["read"] }`
	if err := j.root.Sys().PutPolicy("spark-watch", policy); err != nil {
		t.Fatal(err)
	}
	tok, err := j.root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"spark-watch"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	j.token = tok.Auth.ClientToken
	tokenFile := writeFile(t, j.dir, "vault-token", []byte(j.token+"\n"))
	cfg := fmt.Sprintf("plugin_dir: %s\nbackends:\n  vault:\n    plugin: keyship-backend-vault\n    config:\n      address: %s\n      kv_mounts: secret=2\n      auth:\n        token_file: %s\n",
		binDir, j.s.Addr, tokenFile)
	j.config = writeFile(t, j.dir, "keyship.yaml", []byte(cfg))
	j.spec = writeFile(t, j.dir, "job.json", []byte(watchSpec))
	j.box = filepath.Join(j.dir, "sandbox")
	return j
}

// rotate writes a new version of the secret: a keystore for localhost with
// a new key and certificate, opened by storePass (keyPass for the key),
// whose keystore_password field says fieldPass. It returns the new leaf's
// serial.
func (j *vaultJob) rotate(t *testing.T, storePass, keyPass, fieldPass string) string {
	t.Helper()
	leaf, err := j.ca.Issue("localhost", testca.WithDNS("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := kstore.JKSKeystore("node", leaf.Key, leaf.Chain, []byte(storePass), []byte(keyPass))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := kstore.JKSTruststore(kstore.AliasCertificates([]*x509.Certificate{j.ca.Cert}), []byte(trustPass))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.root.KVv2("secret").Put(context.Background(), "spark/tls", map[string]any{
		"keystore": base64.StdEncoding.EncodeToString(ks), "keystore_password": fieldPass, "key_password": keyPass,
		"truststore": base64.StdEncoding.EncodeToString(ts), "truststore_password": trustPass,
	}); err != nil {
		t.Fatal(err)
	}
	j.version++
	return leaf.Chain[0].SerialNumber.Text(16)
}

// rotateGood rotates with fresh, matching passwords.
func (j *vaultJob) rotateGood(t *testing.T) string {
	t.Helper()
	pw := fmt.Sprintf("store-pass-v%d", j.version+1)
	return j.rotate(t, pw, pw+"-key", pw)
}

// reads counts the audited reads of a Vault path.
func (j *vaultJob) reads(t *testing.T, p string) int { return auditRequests(t, j.auditLog, p) }

// proc is a running keyship command.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *plugintest.LogBuffer
	done           chan struct{}
	err            error
}

// startKeyship runs keyship with args; it is sent SIGTERM when the test
// ends, if still running.
func startKeyship(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{stdout: &plugintest.LogBuffer{}, stderr: &plugintest.LogBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, "keyship"), args...)
	p.cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=", "VAULT_TOKEN=", "VAULT_ADDR=")
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM and waits (at most 20s) for the process to end.
func (p *proc) stop(t *testing.T) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("keyship did not end within 20s of SIGTERM")
		return p.err
	}
}

// waitFor polls cond every 20ms until it holds or within passes; it
// returns how long it took, or fails t saying what.
func waitFor(t *testing.T, p *proc, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if p != nil {
			select {
			case <-p.done:
				t.Fatalf("keyship exited (%v) while waiting for %s\nstdout:\n%s\nstderr:\n%s", p.err, what, p.stdout, p.stderr)
			default:
			}
		}
		if time.Since(start) > within {
			var logs string
			if p != nil {
				logs = "\nstderr:\n" + p.stderr.String()
			}
			t.Fatalf("no %s within %s%s", what, within, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// shippedSet is one generation of a sandbox, read as a consumer that needs
// several files from one set reads it: ..data resolved once.
type shippedSet struct {
	gen                               string
	keystore, truststore              []byte
	storePass, keyPass, trustPassword []byte
	leaf                              *x509.Certificate
}

// errVanished is a generation removed while it was read: the reader
// retries; it is neither mixed nor partial.
var errVanished = errors.New("generation removed while reading")

// readSet reads the set ..data points at and opens its keystore with its
// own passwords. Any error but errVanished means a mixed or partial set.
func readSet(dir string) (*shippedSet, error) {
	gen, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		return nil, err
	}
	s := &shippedSet{gen: gen}
	for name, dst := range map[string]*[]byte{"keystore.jks": &s.keystore, "truststore.jks": &s.truststore,
		"keystore.password": &s.storePass, "key.password": &s.keyPass, "truststore.password": &s.trustPassword} {
		b, err := os.ReadFile(filepath.Join(dir, gen, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errVanished
		}
		if err != nil {
			return nil, err
		}
		*dst = b
	}
	ks := keystore.New()
	if err := ks.Load(bytes.NewReader(s.keystore), s.storePass); err != nil {
		return nil, fmt.Errorf("generation %s: the keystore does not open with the keystore.password beside it: %v", gen, err)
	}
	aliases := ks.Aliases()
	if len(aliases) != 1 {
		return nil, fmt.Errorf("generation %s: %d aliases", gen, len(aliases))
	}
	e, err := ks.GetPrivateKeyEntry(aliases[0], s.keyPass)
	if err != nil {
		return nil, fmt.Errorf("generation %s: the key does not open with the key.password beside it: %v", gen, err)
	}
	if s.leaf, err = x509.ParseCertificate(e.CertificateChain[0].Content); err != nil {
		return nil, err
	}
	ts := keystore.New()
	if err := ts.Load(bytes.NewReader(s.truststore), s.trustPassword); err != nil {
		return nil, fmt.Errorf("generation %s: the truststore does not open with the truststore.password beside it: %v", gen, err)
	}
	return s, nil
}

// currentSerial is the leaf serial of the set in dir, or "" when it cannot
// be read whole now.
func currentSerial(dir string) string {
	s, err := readSet(dir)
	if err != nil {
		return ""
	}
	return s.leaf.SerialNumber.Text(16)
}

// handshake has JSSE accept set's stores as localhost.
func handshake(t *testing.T, s *shippedSet, protocol string) {
	t.Helper()
	if err := jssetest.Handshake(t, s.keystore, "JKS", s.storePass, s.keyPass, s.truststore, s.trustPassword, "localhost", protocol); err != nil {
		t.Fatalf("JSSE handshake with generation %s (serial %s): %v", s.gen, s.leaf.SerialNumber.Text(16), err)
	}
}

// TestWatchShipsNewVersion: keyship ship --watch against a real Vault: 20
// rotations of a KV v2 secret (a new certificate and new passwords each
// time) each reach the sandbox within two refresh intervals; a reader
// looping over the sandbox all along never sees a mixed or partial set;
// --on-change runs once per swap; unchanged refreshes read only the
// secret's metadata; JSSE accepts the last keystore, whose serial is the
// last one written.
func TestWatchShipsNewVersion(t *testing.T) {
	jssetest.Require(t, "java")
	j := newVaultJob(t)
	written := map[string]bool{j.rotateGood(t): true}
	var mu sync.Mutex
	const refresh = time.Second
	onChange := filepath.Join(j.dir, "on-change.log")
	p := startKeyship(t, "ship", "--config", j.config, "--spec", j.spec, "--sandbox", j.box, "--watch", "--refresh", refresh.String(),
		"--on-change", `echo "$KEYSHIP_REASON $KEYSHIP_MANIFEST" >> `+onChange, "--log-level", "info")
	waitFor(t, p, time.Minute, "first ship", func() bool { return currentSerial(j.box) != "" })

	// The reader: whole sets only, each a set that was written.
	var reads, vanished atomic.Int64
	var bad []string
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			time.Sleep(time.Millisecond) // bounded: the machine is shared
			s, err := readSet(j.box)
			switch {
			case errors.Is(err, errVanished):
				vanished.Add(1)
			case err != nil:
				bad = append(bad, err.Error())
			default:
				reads.Add(1)
				mu.Lock()
				ok := written[s.leaf.SerialNumber.Text(16)]
				mu.Unlock()
				if !ok {
					bad = append(bad, "a set with a certificate that was never written: "+s.leaf.SerialNumber.Text(16))
				}
			}
		}
	}()

	var slowest time.Duration
	last := ""
	for i := range 20 {
		mu.Lock()
		serial := j.rotateGood(t)
		written[serial] = true
		mu.Unlock()
		last = serial
		d := waitFor(t, p, 2*refresh, fmt.Sprintf("rotation %d (serial %s) in the sandbox", i+1, serial), func() bool { return currentSerial(j.box) == serial })
		slowest = max(slowest, d)
	}
	close(stop)
	<-readerDone
	t.Logf("20 rotations: slowest reached the sandbox in %s (refresh %s); the reader read %d whole sets (%d reads met a removed generation and retried)",
		slowest.Round(time.Millisecond), refresh, reads.Load(), vanished.Load())
	if len(bad) > 0 {
		t.Fatalf("the reader saw %d mixed or partial sets, e.g. %s", len(bad), bad[0])
	}
	if reads.Load() < 20 {
		t.Fatalf("the reader read only %d sets", reads.Load())
	}
	waitFor(t, p, 2*refresh, "20 on-change runs", func() bool {
		b, _ := os.ReadFile(onChange)
		return bytes.Count(b, []byte("\n")) >= 20
	})
	log, _ := os.ReadFile(onChange)
	if n := bytes.Count(log, []byte("changed "+filepath.Join(j.box, "manifest.json")+"\n")); n != 20 {
		t.Errorf("--on-change ran %d times with reason and manifest for 20 swaps:\n%s", n, log)
	}

	// Unchanged refreshes read the metadata, never the data.
	data0, meta0 := j.reads(t, "secret/data/spark/tls"), j.reads(t, "secret/metadata/spark/tls")
	time.Sleep(3 * refresh)
	data1, meta1 := j.reads(t, "secret/data/spark/tls"), j.reads(t, "secret/metadata/spark/tls")
	if data1 != data0 || meta1-meta0 < 2 {
		t.Errorf("3 unchanged refresh intervals: %d data reads, %d metadata reads; want 0 and about 3", data1-data0, meta1-meta0)
	}
	t.Logf("Vault reads of the secret: %d of its data (1 first ship + 20 rotations), %d of its metadata", data1, meta1)

	s, err := readSet(j.box)
	if err != nil {
		t.Fatal(err)
	}
	handshake(t, s, "TLSv1.2")
	if got := s.leaf.SerialNumber.Text(16); got != last {
		t.Fatalf("the sandbox's keystore has serial %s, the last rotation wrote %s", got, last)
	}
	for _, secret := range []string{"store-pass-v", j.token, j.s.RootToken} {
		if strings.Contains(p.stdout.String(), secret) || strings.Contains(p.stderr.String(), secret) {
			t.Fatal("a password or Vault token appeared in keyship's output")
		}
	}
	if err := p.stop(t); err != nil {
		t.Errorf("keyship ship --watch after SIGTERM: %v (want exit 0)\n%s", err, p.stderr)
	}
	if currentSerial(j.box) != last {
		t.Error("the sandbox changed when the watch stopped")
	}
}

// issueRole mounts Vault's PKI engine with a root CA and a role "spark-node"
// that issues certificates for localhost valid for ttl, backdated by
// backdate (Vault's not_before_duration).
func issueRole(t *testing.T, root *api.Client, ttl, backdate time.Duration) {
	t.Helper()
	if err := root.Sys().Mount("pki", &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "48h"}}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		path string
		body map[string]any
	}{
		{"pki/root/generate/internal", map[string]any{"common_name": "keyship watch root", "ttl": "24h", "key_type": "ec", "key_bits": 256}},
		{"pki/roles/spark-node", map[string]any{"allowed_domains": "localhost", "allow_bare_domains": true, "allow_localhost": true,
			"key_type": "ec", "key_bits": 256, "ttl": ttl.String(), "max_ttl": ttl.String(), "not_before_duration": backdate.String()}},
	} {
		if _, err := root.Logical().Write(w.path, w.body); err != nil {
			t.Fatalf("%s: %v", w.path, err)
		}
	}
}

// TestWatchRenewsIssuedCertificate: keyship ship --watch with a keystore
// issued by a Vault PKI role with a 30s TTL: the certificate is renewed
// between 2/3 of its lifetime and its expiry, every time, at least three
// times, and JSSE accepts each renewed keystore.
func TestWatchRenewsIssuedCertificate(t *testing.T) {
	jssetest.Require(t, "java")
	s := vaulttest.Start(t, vaulttest.Options{})
	root := s.Client(t)
	const ttl, backdate = 30 * time.Second, 3 * time.Second // lifetime 33s: renewal at 22s, expiry at 33s
	issueRole(t, root, ttl, backdate)
	dir := t.TempDir()
	cfg := fmt.Sprintf("plugin_dir: %s\nbackends:\n  vault:\n    plugin: keyship-backend-vault\n    config:\n      address: %s\n      auth:\n        token_file: %s\n",
		binDir, s.Addr, writeFile(t, dir, "token", []byte(s.RootToken)))
	config := writeFile(t, dir, "keyship.yaml", []byte(cfg))
	spec := writeFile(t, dir, "job.json", []byte(`{"security": {"tls": {"enabled": true,
		"keystore_issue": "vault:pki/issue/spark-node", "keystore_issue_ttl": "30s", "protocol": "TLSv1.3"}}}`))
	box := filepath.Join(dir, "sandbox")
	p := startKeyship(t, "ship", "--config", config, "--spec", spec, "--sandbox", box, "--hosts", "localhost",
		"--watch", "--refresh", "1s", "--log-level", "info")
	waitFor(t, p, time.Minute, "first ship", func() bool { return currentSerial(box) != "" })
	prev, err := readSet(box)
	if err != nil {
		t.Fatal(err)
	}
	handshake(t, prev, "TLSv1.3")
	for renewal := 1; renewal <= 3; renewal++ {
		old := prev.leaf
		renewAt := watch.RenewalTime(old.NotBefore, old.NotAfter, 0)
		var cur *shippedSet
		waitFor(t, p, time.Until(old.NotAfter)+5*time.Second, fmt.Sprintf("renewal %d", renewal), func() bool {
			s, err := readSet(box)
			if err == nil && s.leaf.SerialNumber.Cmp(old.SerialNumber) != 0 {
				cur = s
			}
			return cur != nil
		})
		seen := time.Now()
		issued := cur.leaf.NotBefore.Add(backdate) // Vault backdates NotBefore from the issue time (second precision)
		t.Logf("renewal %d: old certificate %s..%s (renewal point %s); new one issued %s, in the sandbox by %s",
			renewal, old.NotBefore.Format("15:04:05"), old.NotAfter.Format("15:04:05"), renewAt.Format("15:04:05"), issued.Format("15:04:05"), seen.Format("15:04:05.000"))
		if issued.Add(time.Second).Before(renewAt) {
			t.Errorf("renewal %d: issued at %s, before the renewal point %s (2/3 of the lifetime)", renewal, issued, renewAt)
		}
		if !seen.Before(old.NotAfter) {
			t.Errorf("renewal %d: in the sandbox at %s, not before the old certificate's expiry %s", renewal, seen, old.NotAfter)
		}
		if lifetime := cur.leaf.NotAfter.Sub(cur.leaf.NotBefore); lifetime < ttl+backdate-time.Second || lifetime > ttl+backdate+time.Second {
			t.Errorf("renewal %d: lifetime %s, want %s", renewal, lifetime, ttl+backdate)
		}
		handshake(t, cur, "TLSv1.3")
		prev = cur
	}
	if n := strings.Count(p.stdout.String(), "the issued certificate was renewed"); n < 3 {
		t.Errorf("keyship reported %d renewals on stdout, want at least 3:\n%s", n, p.stdout)
	}
	if strings.Contains(p.stderr.String(), "refresh failed") {
		t.Errorf("a refresh failed:\n%s", p.stderr)
	}
}

// attempts returns the attempt numbers of the "refresh failed" lines of a
// keyship log, in order.
func attempts(log string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`refresh failed; the stores in place stay: job=\S+ attempt=(\d+)`).FindAllStringSubmatch(log, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestWatchKeepsOldSetOnFailure: Vault sealed during refreshes, then a
// rotated keystore whose password does not open it: the old set stays in
// the sandbox, each failed attempt is logged once with the setting and the
// ref, --on-change does not run, and the watch recovers when Vault does:
// the next good rotation is shipped and --on-change runs once.
func TestWatchKeepsOldSetOnFailure(t *testing.T) {
	j := newVaultJob(t)
	first := j.rotateGood(t)
	onChange := filepath.Join(j.dir, "on-change.log")
	p := startKeyship(t, "ship", "--config", j.config, "--spec", j.spec, "--sandbox", j.box, "--watch", "--refresh", "1s",
		"--on-change", `echo "$KEYSHIP_REASON" >> `+onChange, "--log-level", "info")
	waitFor(t, p, time.Minute, "first ship", func() bool { return currentSerial(j.box) == first })
	gen0, _ := os.Readlink(filepath.Join(j.box, "..data"))

	// 1. Vault sealed.
	j.s.Seal(t)
	waitFor(t, p, 20*time.Second, "three failed attempts while sealed", func() bool { return len(attempts(p.stderr.String())) >= 3 })
	log := p.stderr.String()
	if a := attempts(log); a[0] != "1" || a[1] != "2" || a[2] != "3" {
		t.Errorf("attempts logged %v: want each attempt once, numbered 1, 2, 3", a)
	}
	for _, want := range []string{"security.tls.keystore_secret (vault:secret/spark/tls#keystore:base64)", "sealed"} {
		if !strings.Contains(log, want) {
			t.Errorf("the failure log does not say %q:\n%s", want, log)
		}
	}
	if gen, _ := os.Readlink(filepath.Join(j.box, "..data")); gen != gen0 || currentSerial(j.box) != first {
		t.Fatal("the sandbox changed while Vault was sealed")
	}
	j.s.Unseal(t)
	waitFor(t, p, 20*time.Second, "recovery after the unseal", func() bool {
		return strings.Contains(p.stderr.String(), "refresh works again")
	})
	sealedAttempts := len(attempts(p.stderr.String()))

	// 2. A rotated keystore whose password does not open it.
	j.rotate(t, "the-real-store-pass", "key-pass-2", "a-wrong-store-pass")
	waitFor(t, p, 20*time.Second, "two failed attempts with the wrong password", func() bool { return len(attempts(p.stderr.String())) >= sealedAttempts+2 })
	log = p.stderr.String()
	if !strings.Contains(log, "security.tls.keystore_password (vault:secret/spark/tls#keystore_password)") || !strings.Contains(log, "password was incorrect") {
		t.Errorf("the failure log does not name the setting, the ref and the reason:\n%s", log)
	}
	if gen, _ := os.Readlink(filepath.Join(j.box, "..data")); gen != gen0 || currentSerial(j.box) != first {
		t.Fatal("the sandbox changed after a rotation whose password does not open the keystore")
	}
	if _, err := os.Stat(onChange); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("--on-change ran after a failed refresh")
	}

	// 3. The store is fixed: shipped, --on-change runs once.
	good := j.rotateGood(t)
	waitFor(t, p, 10*time.Second, "the fixed rotation in the sandbox", func() bool { return currentSerial(j.box) == good })
	waitFor(t, p, 5*time.Second, "--on-change after the swap", func() bool { b, _ := os.ReadFile(onChange); return len(b) > 0 })
	time.Sleep(2 * time.Second)
	if b, _ := os.ReadFile(onChange); string(b) != "changed\n" {
		t.Errorf("--on-change log %q, want one run for the one swap", b)
	}
	for _, secret := range []string{"the-real-store-pass", "a-wrong-store-pass", j.token} {
		if strings.Contains(p.stderr.String(), secret) || strings.Contains(p.stdout.String(), secret) {
			t.Fatal("a password or token appeared in keyship's output")
		}
	}
}

// TestServeWatchStreamsNewBundle: keyship serve with the real vault plugin;
// 50 AppMaster-like watchers of one job (and 5 of a second job sharing its
// secret) receive the job's bundle, then the new one after a rotation in
// Vault: keystores that open with the passwords they came with and hold the
// new certificate. The refreshes ask Vault once per refresh however many
// watchers and jobs there are, and the secret's data is read once per
// change for both jobs.
func TestServeWatchStreamsNewBundle(t *testing.T) {
	j := newVaultJob(t)
	j.rotateGood(t)
	const refresh = time.Second
	sock := "unix://" + filepath.Join(j.dir, "keyship.sock")
	p := startKeyship(t, "serve", "--config", j.config, "--listen", sock, "--refresh", refresh.String(), "--log-level", "info")
	waitFor(t, p, 30*time.Second, "keyship serve listening", func() bool { return strings.Contains(p.stdout.String(), "listening ") })
	c, err := server.Dial(sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()

	spec, _ := os.ReadFile(j.spec)
	watchReq := func(job string) *hostv1.WatchRequest {
		return &hostv1.WatchRequest{Ship: &hostv1.ShipRequest{JobId: job, Spec: spec,
			Tasks:   []*hostv1.Task{{Id: "tm-1", Role: "taskmanager", Hosts: []string{"localhost"}}},
			Targets: []hostv1.Target{hostv1.Target_TARGET_FILES, hostv1.Target_TARGET_MESOS}, TtlSeconds: 600}}
	}
	type watcher struct {
		job string
		got chan *hostv1.WatchResponse
	}
	var ws []watcher
	for i := range 55 {
		job := "flink-job-1"
		if i >= 50 {
			job = "flink-job-2"
		}
		ws = append(ws, watcher{job: job, got: make(chan *hostv1.WatchResponse, 4)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i, w := range ws {
		wg.Go(func() {
			err := c.WatchJob(ctx, watchReq(w.job), func(r *hostv1.WatchResponse) error { w.got <- r; return nil })
			if err != nil && ctx.Err() == nil {
				t.Errorf("watcher %d: %v", i, err)
			}
		})
	}
	recv := func(i int, within time.Duration) *hostv1.WatchResponse {
		t.Helper()
		select {
		case r := <-ws[i].got:
			return r
		case <-time.After(within):
			t.Fatalf("watcher %d (%s): nothing within %s\n%s", i, ws[i].job, within, p.stderr)
			return nil
		}
	}
	for i := range ws {
		if r := recv(i, time.Minute); r.GetReason() != hostv1.WatchReason_WATCH_REASON_INITIAL {
			t.Fatalf("watcher %d: first message %v", i, r.GetReason())
		}
	}
	data0, meta0 := j.reads(t, "secret/data/spark/tls"), j.reads(t, "secret/metadata/spark/tls")
	if data0 != 2 {
		t.Errorf("two jobs, 55 watchers: %d reads of the secret's data to start, want 2 (one build per job)", data0)
	}

	// Unchanged: about one metadata read per refresh, whatever the watchers.
	const window = 5 * refresh
	time.Sleep(window)
	data1, meta1 := j.reads(t, "secret/data/spark/tls"), j.reads(t, "secret/metadata/spark/tls")
	if data1 != data0 || meta1-meta0 > int(window/refresh)+2 || meta1-meta0 < int(window/refresh)-2 {
		t.Errorf("%s of unchanged refreshes (every %s), 55 watchers of 2 jobs: %d data reads, %d metadata reads; want 0 and one per refresh",
			window, refresh, data1-data0, meta1-meta0)
	}
	t.Logf("%s unchanged, 55 watchers of 2 jobs sharing one secret: %d metadata reads, %d data reads", window, meta1-meta0, data1-data0)

	serial := j.rotateGood(t)
	start := time.Now()
	for i := range ws {
		r := recv(i, 2*refresh+5*time.Second)
		if r.GetReason() != hostv1.WatchReason_WATCH_REASON_CHANGED {
			t.Fatalf("watcher %d after the rotation: %v", i, r.GetReason())
		}
		if got := bundleSerial(t, r.GetShipment()); got != serial {
			t.Fatalf("watcher %d: the new bundle's keystore has serial %s, the rotation wrote %s", i, got, serial)
		}
	}
	t.Logf("the rotation reached 55 watchers in %s", time.Since(start).Round(time.Millisecond))
	data2 := j.reads(t, "secret/data/spark/tls")
	if n := data2 - data1; n != 1 {
		t.Errorf("one rotation watched by 55 watchers of 2 jobs sharing the secret cost %d data reads, want 1 (the jobs rebuilt in one refresh share their reads)", n)
	}
}

// bundleSerial opens the keystore a Watch response carries with the
// passwords it carries (the Mesos secret environment) and returns its
// leaf's serial.
func bundleSerial(t *testing.T, resp *hostv1.ShipResponse) string {
	t.Helper()
	var ks []byte
	for _, f := range resp.GetFiles() {
		if f.GetRole() == string(materialize.RoleKeystore) {
			ks = f.GetContents()
		}
	}
	pw := map[string][]byte{}
	for _, e := range resp.GetTasks()[0].GetEnv() {
		pw[e.GetName()] = e.GetSecret().GetValue()
	}
	store := keystore.New()
	if err := store.Load(bytes.NewReader(ks), pw["KEYSHIP_KEYSTORE_PASSWORD"]); err != nil {
		t.Fatalf("the bundle's keystore does not open with its password: %v", err)
	}
	e, err := store.GetPrivateKeyEntry(store.Aliases()[0], pw["KEYSHIP_KEY_PASSWORD"])
	if err != nil {
		t.Fatalf("the bundle's key does not open with its password: %v", err)
	}
	leaf, err := x509.ParseCertificate(e.CertificateChain[0].Content)
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Text(16)
}
