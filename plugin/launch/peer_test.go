package launch_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
	"github.com/keyship/keyship/plugin/plugintest"
)

// dialHelperEnv makes the test binary a would-be client of a plugin
// (dialHelper) instead of running the tests; its value is the socket.
const dialHelperEnv = "KEYSHIP_LAUNCH_TEST_DIAL"

// dialHelper dials the plugin socket addr, plain gRPC, asks for Info and
// prints "answered" or "refused: <why>".
func dialHelper(addr string) {
	conn, err := grpc.NewClient("unix:"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := plugin.NewGRPCClient(conn).Info(ctx); err != nil {
		fmt.Println("refused:", err)
		return
	}
	fmt.Println("answered")
}

// TestOnlyTheHostCanTalkToThePlugin is the successor of
// TestAutoMTLSRefusesPlaintext, for the unix-socket peer check that replaced
// AutoMTLS: the plugin's socket is in a 0700 directory; and even with that
// directory and the socket opened to everyone, another process of the same
// user and a process of another user are refused by the plugin, while the
// host that started it is served.
func TestOnlyTheHostCanTalkToThePlugin(t *testing.T) {
	s, err := launch.StartKeepingSocket(context.Background(), "file", pluginBin, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	addr := launch.Addr(t, s)
	dir := filepath.Dir(addr)
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("the plugin socket's directory %s has mode %v, want 0700", dir, st.Mode().Perm())
	}
	// Open the way: only the plugin's own check is left.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(addr, 0o777); err != nil {
		t.Fatal(err)
	}

	// The helper is this test binary, copied where any user can run it.
	binDir, err := os.MkdirTemp("", "keyship-peer-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(binDir) })
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(binDir, "launch.test")
	plugintest.CopyExecutable(t, os.Args[0], helper)

	dial := func(cred *syscall.Credential) string {
		cmd := exec.Command(helper, "-test.run=^$")
		cmd.Env = []string{dialHelperEnv + "=" + addr}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Stderr = io.Discard
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("dial helper: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	got := dial(nil)
	t.Logf("same user, other process: %s", got)
	if !strings.HasPrefix(got, "refused") {
		t.Errorf("another process of the same user: %q, want refused", got)
	}
	if os.Geteuid() == 0 {
		if got := dial(&syscall.Credential{Uid: 65534, Gid: 65534}); !strings.HasPrefix(got, "refused") {
			t.Errorf("another user (uid 65534): %q, want refused", got)
		}
	} else {
		t.Log("not root: the other-user case needs root to run a process as uid 65534; skipped")
	}
	if _, err := s.Info(context.Background()); err != nil {
		t.Fatalf("the host itself was refused: %v", err)
	}
}
