package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/plugin/plugintest"
	"github.com/keyship/keyship/shipper/kube/kubetest"
)

// binDir holds keyship, keyship-backend-file and keyship-backend-vault,
// built once by TestMain, so that the CLI runs as users run it and loads the
// real plugin subprocesses.
var binDir string

func TestMain(m *testing.M) {
	dir, cleanup := plugintest.Build("github.com/keyship/keyship/cmd/keyship", "github.com/keyship/keyship/cmd/keyship-backend-file",
		"github.com/keyship/keyship/cmd/keyship-backend-vault")
	binDir = dir
	code := m.Run()
	kubetest.Stop()
	cleanup()
	os.Exit(code)
}

// requirePeer skips when tool is missing, or fails under
// KEYSHIP_REQUIRE_PEERS=1 (make test installs the peers first).
func requirePeer(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("KEYSHIP_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s not found and KEYSHIP_REQUIRE_PEERS=1 (run tools/install-deps.sh)", tool)
		}
		t.Skipf("%s not found; run tools/install-deps.sh", tool)
	}
	return p
}

type result struct {
	code           int
	stdout, stderr string
}

func keyship(t testing.TB, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "keyship"), args...)
	cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// job is a file-backend root with a node keystore, truststore, CA bundle
// and their passwords at seed 000's paths, a host config that loads the real
// file plugin, and a spec.
type job struct {
	dir, root, config, sandbox string
}

// The canary is the keystore password of every job: it must never appear in
// any output of the CLI.
const canary = "canary-Pw-7f3e19c2"

func newJob(t testing.TB) *job {
	t.Helper()
	dir := t.TempDir()
	j := &job{dir: dir, root: filepath.Join(dir, "secrets"), config: filepath.Join(dir, "keyship.yaml"), sandbox: filepath.Join(dir, "sandbox")}
	filetest.Seed(t, j.root, canary)
	cfg := fmt.Sprintf("default_backend: file\nplugin_dir: %s\nbackends:\n  file:\n    plugin: keyship-backend-file\n    config:\n      root: %s\n", binDir, j.root)
	if err := os.WriteFile(j.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return j
}

func (j *job) put(t testing.TB, name string, data []byte) { filetest.Put(t, j.root, name, data) }

// spec writes a security.tls spec with the given settings over seed 000's.
func (j *job) spec(t testing.TB, change map[string]any) string {
	t.Helper()
	tls := map[string]any{
		"enabled": true, "keystore_secret": "/spark/keystore", "keystore_password": "/spark/keystore_password",
		"key_password": "/spark/key_password", "truststore_secret": "/spark/truststore",
		"truststore_password": "/spark/truststore_password", "ca_bundle_secret": "/spark/ca_bundle_truststore",
		"protocol": "TLSv1.2",
	}
	for k, v := range change {
		if v == nil {
			delete(tls, k)
		} else {
			tls[k] = v
		}
	}
	data, _ := json.Marshal(map[string]any{"security": map[string]any{"tls": tls}})
	p := filepath.Join(j.dir, "job.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (j *job) ship(t *testing.T, specPath string, extra ...string) result {
	t.Helper()
	return keyship(t, append([]string{"ship", "--config", j.config, "--spec", specPath, "--sandbox", j.sandbox, "--log-level", "trace"}, extra...)...)
}

func assertNoCanary(t *testing.T, r result) {
	t.Helper()
	if strings.Contains(r.stdout, canary) || strings.Contains(r.stderr, canary) {
		t.Fatalf("the keystore password appeared in the CLI's output")
	}
}

func assertNothingWritten(t *testing.T, j *job) {
	t.Helper()
	if _, err := os.Stat(j.sandbox); !os.IsNotExist(err) {
		t.Fatalf("a failed ship touched the sandbox %s (err %v)", j.sandbox, err)
	}
}

func TestShipWritesStoresAndSparkSettings(t *testing.T) {
	keytool := requirePeer(t, "keytool")
	j := newJob(t)
	r := j.ship(t, j.spec(t, nil))
	if r.code != 0 {
		t.Fatalf("ship exit %d: %s", r.code, r.stderr)
	}
	assertNoCanary(t, r)
	st, err := os.Stat(j.sandbox)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("sandbox dir mode %v (%v), want 0700", st.Mode().Perm(), err)
	}
	for _, name := range []string{"keystore.jks", "truststore.jks"} {
		st, err := os.Stat(filepath.Join(j.sandbox, name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v (%v), want 0600", name, st.Mode().Perm(), err)
		}
	}
	out, err := exec.Command(keytool, "-list", "-keystore", filepath.Join(j.sandbox, "keystore.jks"), "-storepass", canary).CombinedOutput()
	if err != nil {
		t.Fatalf("keytool -list: %v", err)
	}
	if n := strings.Count(string(out), "PrivateKeyEntry"); n != 1 {
		t.Fatalf("keytool lists %d PrivateKeyEntry, want 1", n)
	}
	manifest, err := os.ReadFile(filepath.Join(j.sandbox, "manifest.json"))
	if err != nil || !strings.Contains(string(manifest), `"path": "keystore.jks"`) || strings.Contains(string(manifest), canary) {
		t.Errorf("manifest.json missing, incomplete or holding a password (%v):\n%s", err, manifest)
	}
	want := "spark.ssl.keyStore=" + filepath.Join(j.sandbox, "keystore.jks")
	if !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "spark.ssl.keyStorePassword=${env:KEYSHIP_KEYSTORE_PASSWORD}") {
		t.Errorf("Spark settings missing from output:\n%s", r.stdout)
	}
}

func TestCanaryIsVisibleWhenRevealed(t *testing.T) {
	// The positive control for every canary check: the grep does find the
	// password when the CLI is asked to print it.
	j := newJob(t)
	r := keyship(t, "get", "--config", j.config, "--reveal", "/spark/keystore_password")
	if r.code != 0 || r.stdout != canary {
		t.Fatalf("get --reveal: exit %d, stdout %d bytes", r.code, len(r.stdout))
	}
	r = keyship(t, "get", "--config", j.config, "--log-level", "trace", "/spark/keystore_password")
	if r.code != 0 || !strings.Contains(r.stdout, "version: h1:") {
		t.Fatalf("get: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	assertNoCanary(t, r)
}

// TestShipWithoutARequiredField: a spec without the keystore password, or
// with a truststore but no CA bundle, ships nothing and names the field.
func TestShipWithoutARequiredField(t *testing.T) {
	for _, field := range []string{"keystore_password", "ca_bundle_secret"} {
		j := newJob(t)
		r := j.ship(t, j.spec(t, map[string]any{field: nil}))
		if r.code == 0 || !strings.Contains(r.stderr, "security.tls."+field) {
			t.Fatalf("exit %d, stderr %q: want non-zero naming security.tls.%s", r.code, r.stderr, field)
		}
		assertNothingWritten(t, j)
	}
}

func TestShipWrongStorePassword(t *testing.T) {
	j := newJob(t)
	j.put(t, "spark/wrong_password", []byte(canary+"-wrong"))
	r := j.ship(t, j.spec(t, map[string]any{"keystore_password": "/spark/wrong_password"}))
	if r.code == 0 {
		t.Fatal("ship with a wrong store password succeeded")
	}
	for _, want := range []string{"security.tls.keystore_password (/spark/wrong_password)", "does not open keystore /spark/keystore"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q does not contain %q", r.stderr, want)
		}
	}
	assertNoCanary(t, r)
	assertNothingWritten(t, j)
}

func TestShipRefLeavingTheRoot(t *testing.T) {
	j := newJob(t)
	r := j.ship(t, j.spec(t, map[string]any{"keystore_secret": "../etc/passwd"}))
	if r.code == 0 || !strings.Contains(r.stderr, "security.tls.keystore_secret") || !strings.Contains(r.stderr, "..") {
		t.Fatalf("exit %d, stderr %q: want the ref refused, naming the field", r.code, r.stderr)
	}
	assertNothingWritten(t, j)
}

func TestShipWrongKeyPasswordHidesCanary(t *testing.T) {
	j := newJob(t)
	r := j.ship(t, j.spec(t, map[string]any{"key_password": "/spark/keystore_password"}))
	if r.code == 0 {
		t.Fatal("ship with a wrong key password succeeded")
	}
	if !strings.Contains(r.stderr, "security.tls.key_password") {
		t.Errorf("stderr does not name security.tls.key_password: %q", r.stderr)
	}
	assertNoCanary(t, r)
}

func TestDemo(t *testing.T) {
	keytool := requirePeer(t, "keytool")
	dir := t.TempDir()
	r := keyship(t, "demo", "--dir", dir)
	if r.code != 0 {
		t.Fatalf("demo exit %d: %s", r.code, r.stderr)
	}
	sandbox := filepath.Join(dir, "sandbox")
	pw, err := os.ReadFile(filepath.Join(sandbox, "keystore.password"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(keytool, "-list", "-keystore", filepath.Join(sandbox, "keystore.jks"), "-storepass", string(pw)).CombinedOutput()
	if err != nil || strings.Count(string(out), "PrivateKeyEntry") != 1 {
		t.Fatalf("keytool -list on the demo keystore: %v, %d PrivateKeyEntry", err, strings.Count(string(out), "PrivateKeyEntry"))
	}
	if strings.Contains(r.stdout, string(pw)) {
		t.Error("demo printed the keystore password")
	}
}

func TestPluginsListsPinnableSum(t *testing.T) {
	j := newJob(t)
	r := keyship(t, "plugins", "--config", j.config)
	if r.code != 0 || !regexp.MustCompile(`file\s+0\.1\.0\s+ok\s+\S+keyship-backend-file\s+[0-9a-f]{64}`).MatchString(r.stdout) {
		t.Fatalf("plugins: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{"ship"}, {"nope"}, {"get"}, {"get", "a@"}, {"ship", "--spec", "x", "--bogus"}} {
		if r := keyship(t, args...); r.code != 2 {
			t.Errorf("keyship %v: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
}

// TestTimeoutMustBePositive: a zero or negative --timeout would fail every
// call at once; it is a usage error (exit 2) naming the flag, on a job that
// would otherwise ship.
func TestTimeoutMustBePositive(t *testing.T) {
	j := newJob(t)
	specPath := j.spec(t, nil)
	for _, args := range [][]string{
		{"ship", "--config", j.config, "--spec", specPath, "--sandbox", j.sandbox, "--timeout", "0"},
		{"ship", "--config", j.config, "--spec", specPath, "--sandbox", j.sandbox, "--timeout", "-1s"},
		{"check", "--config", j.config, "--spec", specPath, "--timeout", "0s"},
		{"get", "--config", j.config, "--timeout", "-5m", "/spark/keystore"},
	} {
		r := keyship(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "--timeout") || !strings.Contains(r.stderr, "positive") {
			t.Errorf("keyship %v: exit %d, want 2 with a message naming --timeout\n%s", args[:1], r.code, r.stderr)
		}
	}
	if r := keyship(t, "ship", "--config", j.config, "--spec", specPath, "--sandbox", j.sandbox, "--timeout", "30s"); r.code != 0 {
		t.Fatalf("a positive --timeout: exit %d\n%s", r.code, r.stderr)
	}
}
