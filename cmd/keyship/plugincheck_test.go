package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pythonExample returns the absolute path of examples/python-backend, after
// checking that Debian's Python has grpc and protobuf (make test installs
// them; without KEYSHIP_REQUIRE_PEERS the test is skipped).
func pythonExample(t *testing.T) string {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import grpc, google.protobuf").Run(); err != nil {
		if os.Getenv("KEYSHIP_REQUIRE_PEERS") == "1" {
			t.Fatalf("/usr/bin/python3 cannot import grpc and google.protobuf (%v) and KEYSHIP_REQUIRE_PEERS=1 (run tools/install-deps.sh)", err)
		}
		t.Skipf("/usr/bin/python3 cannot import grpc and google.protobuf (%v); run tools/install-deps.sh", err)
	}
	dir, err := filepath.Abs("../../examples/python-backend")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPluginTestPassesThePythonExample: the conformance kit built into
// keyship passes the plugin written in Python, including the unavailable
// hook of its kit file.
func TestPluginTestPassesThePythonExample(t *testing.T) {
	dir := pythonExample(t)
	r := keyship(t, "plugin", "test", filepath.Join(dir, "keyship-backend-pyfile"), "--config", filepath.Join(dir, "kit.yaml"))
	if r.code != 0 {
		t.Fatalf("keyship plugin test: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"--- PASS: Conformance/Fixtures", "--- PASS: Conformance/Unavailable", "--- PASS: Conformance/Versions", "\nPASS\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestPluginTestNamesTheBrokenRule: a check that fails says which rule and
// where the protocol page describes it, and the command exits 1.
func TestPluginTestNamesTheBrokenRule(t *testing.T) {
	kit := filepath.Join(t.TempDir(), "kit.yaml")
	// A "bad" config the file plugin rightly accepts: the kit sees a plugin
	// that does not refuse it.
	if err := os.WriteFile(kit, []byte("bad_configs: [{root: \"${KEYSHIP_KIT_DIR}/store\"}]\nconfig: {root: \"${KEYSHIP_KIT_DIR}/store\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := keyship(t, "plugin", "test", filepath.Join(binDir, "keyship-backend-file"), "--config", kit)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"--- FAIL: Conformance/BadConfig", "want ErrInvalidConfig", "rule broken: proto/keyship/backend/v1/PROTOCOL.md#configure", "--- PASS: Conformance/Fixtures"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	anchor := "#configure"
	page, err := os.ReadFile("../../proto/keyship/backend/v1/PROTOCOL.md")
	if err != nil || !strings.Contains(string(page), "## Configure") {
		t.Errorf("PROTOCOL.md has no section for %s (%v)", anchor, err)
	}
}

// TestPluginPythonExampleShipsAKeystore: a ship through the Python plugin,
// pinned by the sha256 of its script, writes a keystore keytool opens.
func TestPluginPythonExampleShipsAKeystore(t *testing.T) {
	keytool := requirePeer(t, "keytool")
	dir := pythonExample(t)
	j := newJob(t)
	script, err := os.ReadFile(filepath.Join(dir, "keyship-backend-pyfile"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(script)
	cfg := fmt.Sprintf("default_backend: py\nplugin_dir: %s\nbackends:\n  py:\n    plugin: keyship-backend-pyfile\n    sha256: %s\n    config:\n      root: %s\n",
		dir, hex.EncodeToString(sum[:]), j.root)
	if err := os.WriteFile(j.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := j.ship(t, j.spec(t, nil))
	if r.code != 0 {
		t.Fatalf("ship through the Python plugin: exit %d\n%s", r.code, r.stderr)
	}
	assertNoCanary(t, r)
	out, err := exec.Command(keytool, "-list", "-keystore", filepath.Join(j.sandbox, "keystore.jks"), "-storepass", canary).CombinedOutput()
	if err != nil {
		t.Fatalf("keytool -list: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "PrivateKeyEntry"); n != 1 {
		t.Fatalf("keytool lists %d PrivateKeyEntry, want 1:\n%s", n, out)
	}
	// The plugin's hclog JSON lines keep their level in keyship's log.
	if !strings.Contains(r.stderr, "configured") {
		t.Errorf("the plugin's log line is not in keyship's log:\n%s", r.stderr)
	}
}
