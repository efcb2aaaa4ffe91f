package main_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/plugintest"
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
	r := keyship(t, "plugin", "test", filepath.Join(dir, "keyship-backend-pyfile"), "--kit", filepath.Join(dir, "kit.yaml"))
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
	// that does not refuse it. The deny command removes permissions, which
	// denies nothing to root.
	if err := os.WriteFile(kit, []byte("bad_configs: [{root: \"${KEYSHIP_KIT_DIR}/store\"}]\nconfig: {root: \"${KEYSHIP_KIT_DIR}/store\"}\n"+
		"deny: chmod 000 \"store$KEYSHIP_KIT_PATH\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := keyship(t, "plugin", "test", filepath.Join(binDir, "keyship-backend-file"), "--kit", kit)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// A kit file's author may not write Go: gRPC codes and the kit file's
	// keys, not the SDK's errors and Config's fields.
	for _, want := range []string{"--- FAIL: Conformance/BadConfig", "bad_configs: entry 1: Configure error = <nil>, want INVALID_ARGUMENT\n",
		"rule broken: proto/keyship/backend/v1/PROTOCOL.md#configure", "--- PASS: Conformance/Fixtures"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if os.Geteuid() == 0 {
		if want := "but the kit runs as root, and so does the plugin: root reads a file whatever its mode"; !strings.Contains(r.stdout, want) {
			t.Errorf("the deny check run as root does not say why chmod denies nothing (%q):\n%s", want, r.stdout)
		}
	} else if !strings.Contains(r.stdout, "--- PASS: Conformance/PermissionDenied") {
		t.Errorf("the deny check failed as uid %d:\n%s", os.Geteuid(), r.stdout)
	}
	for _, goName := range []string{"ErrInvalidConfig", "ErrPermissionDenied", "ErrNotFound", "Config.", "BadConfigs["} {
		if strings.Contains(r.stdout, goName) {
			t.Errorf("the kit's output names Go's %q:\n%s", goName, r.stdout)
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
	if !regexp.MustCompile(`\[INFO\] .*: configured: `).MatchString(r.stderr) {
		t.Errorf("the plugin's info line is not in keyship's log at INFO:\n%s", r.stderr)
	}
}

// TestPluginPythonExampleRefusesOtherPeers: the Python plugin checks its
// peer itself (grpcio cannot): its parent (this test) is served, another
// process of the same uid is refused.
func TestPluginPythonExampleRefusesOtherPeers(t *testing.T) {
	dir := pythonExample(t)
	sockDir := t.TempDir()
	cmd := exec.Command(filepath.Join(dir, "keyship-backend-pyfile"))
	cmd.Env = []string{"KEYSHIP_BACKEND_PLUGIN=a1c4e2d9-keyship-backend", "PLUGIN_PROTOCOL_VERSIONS=1", "PLUGIN_UNIX_SOCKET_DIR=" + sockDir}
	// The plugin writes its stderr while the test reads it: a LogBuffer.
	var stderr plugintest.LogBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no handshake line: %v\n%s", err, stderr.String())
	}
	parts := strings.Split(strings.TrimSpace(line), "|")
	if len(parts) != 5 || parts[0] != "1" || parts[1] != "1" || parts[2] != "unix" || parts[4] != "grpc" || filepath.Dir(parts[3]) != sockDir {
		t.Fatalf("handshake line %q, want 1|1|unix|%s/…|grpc", line, sockDir)
	}
	sock := parts[3]

	// Another process of this uid: a child of the test, not the plugin's
	// parent. It sends gRPC's connection preface and reads: the plugin
	// closes (or resets) the connection without a byte.
	other := exec.Command("/usr/bin/python3", "-c", `import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
try:
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    print("closed" if s.recv(1024) == b"" else "answered")
except (ConnectionResetError, BrokenPipeError):  # closed before or after the preface
    print("closed")`, sock)
	out, err := other.CombinedOutput()
	if err != nil {
		t.Fatalf("the other process: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "closed" {
		t.Errorf("another process of the same uid: %s, want closed", got)
	}

	// The parent is served.
	conn, err := grpc.NewClient("unix:"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := plugin.NewGRPCClient(conn).Info(ctx)
	if err != nil || info.Name != "pyfile" {
		t.Fatalf("Info from the plugin's parent: %+v, %v", info, err)
	}
	// Health: "" and "plugin" are SERVING, any other name NOT_FOUND, as
	// gRPC's own health server (PROTOCOL.md#health).
	health := grpc_health_v1.NewHealthClient(conn)
	for _, svc := range []string{"", "plugin"} {
		resp, err := health.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
			t.Errorf("health Check(%q): %v, %v; want SERVING", svc, resp.GetStatus(), err)
		}
	}
	if _, err := health.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "keyship.other"}); status.Code(err) != codes.NotFound {
		t.Errorf("health Check of an unknown service: %v, want NOT_FOUND", err)
	}
	// The refusal's log line may still be on its way: wait for it.
	if log, ok := stderr.WaitFor(time.Minute, `"@level": "warn", "@message": "refusing a connection`); !ok {
		t.Errorf("the refusal is not logged as an hclog warn line:\n%s", log)
	}
}

// TestPluginTestKitFileMistakes: a mistake in the kit file is reported as
// one, before any check (exit 2), not as a plugin that fails checks.
func TestPluginTestKitFileMistakes(t *testing.T) {
	for _, c := range []struct{ name, kit, want string }{
		{"config without bad_configs", "config: {root: \"${KEYSHIP_KIT_DIR}/store\"}\n", "config: is set but bad_configs: is not"},
		{"empty bad_configs", "bad_configs: []\n", "bad_configs: is empty"},
		{"ref without {name}", "ref: /kit/fixed\n", `ref: "/kit/fixed" has no {name}`},
		{"ref with a field", "ref: \"/kit/{name}#key\"\n", `has a "#field" or "@version"`},
		{"ref with a backend", "ref: \"vault:kit/{name}\"\n", `"backend:" prefix`},
	} {
		t.Run(c.name, func(t *testing.T) {
			kit := filepath.Join(t.TempDir(), "kit.yaml")
			if err := os.WriteFile(kit, []byte(c.kit), 0o600); err != nil {
				t.Fatal(err)
			}
			r := keyship(t, "plugin", "test", filepath.Join(binDir, "keyship-backend-file"), "--kit", kit)
			if r.code != 2 || !strings.Contains(r.stderr, "kit file "+kit+": ") || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, want 2 and %q on stderr\n%s\n%s", r.code, c.want, r.stdout, r.stderr)
			}
			if strings.Contains(r.stdout, "=== RUN") {
				t.Errorf("checks ran with a broken kit file:\n%s", r.stdout)
			}
		})
	}
}

// TestPluginTestKitFlagIsNotTheHostConfig: the kit file is --kit; the global
// --config (a host config) does not name it.
func TestPluginTestKitFlagIsNotTheHostConfig(t *testing.T) {
	r := keyship(t, "plugin", "test", "--help")
	if !strings.Contains(r.stdout, "--kit string") {
		t.Errorf("plugin test --help has no --kit:\n%s", r.stdout)
	}
}
