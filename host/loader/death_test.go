package loader_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyship/keyship/plugin/launch"
)

// hostHelperEnv makes the test binary a plugin host (hostHelper) instead of
// running the tests; its value is the plugin binary to load.
const hostHelperEnv = "KEYSHIP_LOADER_TEST_HOST"

// hostHelper is a host process for TestPluginsDieWithTheirHost: it installs
// the CLI's signal handling, says "starting", starts the plugin, says
// "ready", and waits to be killed.
func hostHelper(pluginPath string) {
	defer launch.HandleSignals()()
	fmt.Println("starting")
	s, err := launch.Start(context.Background(), "kv", pluginPath, "", nil)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready", s.Pid())
	time.Sleep(time.Minute)
	os.Exit(3)
}

// TestPluginsDieWithTheirHost kills a host process 50 times (SIGKILL,
// SIGTERM, SIGINT; after its plugin is up, and for SIGTERM and SIGINT also
// while the plugin is starting) and counts what is left: plugin processes
// and entries in the hosts' TMPDIR.
func TestPluginsDieWithTheirHost(t *testing.T) {
	if testing.Short() {
		t.Skip("50 host processes")
	}
	pluginPath := testPlugin(t, "kv") // records the pid of every start
	tmp := t.TempDir()
	signals := []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT}
	midStart := 0
	for i := range 50 {
		sig := signals[i%3]
		early := sig != syscall.SIGKILL && i%2 == 1
		if early {
			midStart++
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), hostHelperEnv+"="+pluginPath, "TMPDIR="+tmp)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		want := "ready"
		if early {
			want = "starting"
		}
		deadline := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
		for lines.Scan() && !strings.HasPrefix(lines.Text(), want) {
		}
		deadline.Stop()
		if early {
			time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
		}
		_ = cmd.Process.Signal(sig)
		_ = cmd.Wait()
		// The host dies of the signal; one killed while its plugin was
		// starting may first fail that start (exit status 1).
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !(ws.Signaled() && ws.Signal() == sig || early && ws.Exited() && ws.ExitStatus() == 1) {
			t.Errorf("kill %d: the host did not die of %v: %v", i, sig, cmd.ProcessState)
		}
	}
	// Every plugin process any host started, alive or dead.
	data, _ := os.ReadFile(pluginPath + ".starts")
	pids := strings.Fields(string(data))
	var alive []string
	for _, f := range pids {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(time.Minute); !gone(pid) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if !gone(pid) {
			alive = append(alive, f)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var stale []string
	for _, e := range entries {
		stale = append(stale, filepath.Join(tmp, e.Name()))
	}
	t.Logf("50 host kills (%d while the plugin was starting), %d plugin processes started: %d left running, %d stale entries in TMPDIR", midStart, len(pids), len(alive), len(stale))
	if len(alive) > 0 {
		t.Errorf("plugin processes outlived their host: %v", alive)
	}
	if len(stale) > 0 {
		t.Errorf("stale sockets or socket directories in TMPDIR: %v", stale)
	}
}
