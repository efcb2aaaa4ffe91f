package loader_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/host/loader"
	"github.com/keyship/keyship/host/resolve"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
	"github.com/keyship/keyship/plugin/plugintest"
)

// testPlugin copies the misbehaving test plugin into a fresh directory as
// keyship-backend-<mode> and returns its path.
func testPlugin(t testing.TB, mode string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "keyship-backend-"+mode)
	plugintest.CopyExecutable(t, testPluginBin, dst)
	return dst
}

// starts counts the processes a test plugin at path started.
func starts(t testing.TB, path string) int {
	t.Helper()
	data, err := os.ReadFile(path + ".starts")
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}

// TestCrashLoopingPluginRestartsOncePerCall: a plugin that exits in every Get
// is restarted once for the call, then the call fails with
// ErrPluginExited, naming the backend, the plugin and the exit status, and
// the resolver does not retry it.
func TestCrashLoopingPluginRestartsOncePerCall(t *testing.T) {
	path := testPlugin(t, "crashget")
	var logs plugintest.LogBuffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})
	cfg := &config.Config{DefaultBackend: "crashget", Backends: map[string]config.Backend{"crashget": {Plugin: path}}}
	l := loader.New(cfg, loader.WithLogger(logger))
	defer func() { _ = l.Close() }()
	r := resolve.New(l)
	var fields []spec.Field
	for _, name := range []string{"a", "b", "c"} {
		ref, err := spec.ParseRef("/" + name)
		if err != nil {
			t.Fatal(err)
		}
		fields = append(fields, spec.Field{Name: "security.tls." + name, Ref: ref})
	}
	_, err := r.Resolve(context.Background(), fields)
	if !errors.Is(err, plugin.ErrPluginExited) {
		t.Fatalf("err = %v, want ErrPluginExited", err)
	}
	if errors.Is(err, plugin.ErrUnavailable) {
		t.Errorf("err %v still wraps ErrUnavailable: the resolver would retry it", err)
	}
	if want := "backend crashget: plugin keyship-backend-crashget exited (exit status 2)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	for _, raw := range []string{"RST_STREAM", "error reading from server", "rpc error", "EOF"} {
		if strings.Contains(err.Error(), raw) {
			t.Errorf("error %q shows the raw transport error %q", err, raw)
		}
	}
	if n := starts(t, path); n != 2 {
		t.Errorf("the plugin was started %d times for one 3-ref resolve, want 2 (one restart)", n)
	}
	if !strings.Contains(logs.String(), "restarting it and retrying the call once") {
		t.Errorf("the restart is not in the debug log:\n%s", logs.String())
	}
	// A second call restarts the dead plugin once more, and only once.
	_, err = r.Resolve(context.Background(), fields[:1])
	if !errors.Is(err, plugin.ErrPluginExited) {
		t.Fatalf("second resolve: err = %v, want ErrPluginExited", err)
	}
	if n := starts(t, path); n != 3 {
		t.Errorf("after a second call the plugin was started %d times in all, want 3", n)
	}
}

// gone reports whether process pid no longer runs (it is reaped, or a zombie
// waiting for a parent that is not this test).
func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// pidIn reads the pid a test plugin wrote into file (one per line; the last).
func pidIn(t *testing.T, file string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the test plugin did not record its pid: %v", err)
	}
	fields := strings.Fields(string(data))
	pid, err := strconv.Atoi(fields[len(fields)-1])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestStartIsBoundedByTheDeadline: a plugin that never completes the
// handshake, and one whose child holds its stdout open, fail the start when
// the caller's deadline passes (go-plugin alone waits 60s, and forever for
// the second), and leave no process behind.
func TestStartIsBoundedByTheDeadline(t *testing.T) {
	for _, mode := range []string{"nohandshake", "childstdout"} {
		t.Run(mode, func(t *testing.T) {
			path := testPlugin(t, mode)
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			begin := time.Now()
			_, err := launch.Start(ctx, mode, path, "", nil)
			took := time.Since(begin)
			if err == nil {
				t.Fatal("a plugin that never completes the handshake started")
			}
			for _, want := range []string{"backend " + mode, path, "did not start within 1.5s"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
			}
			if took > 10*time.Second {
				t.Errorf("Start returned after %v, long after the 1.5s deadline", took)
			}
			pids := []int{pidIn(t, path+".starts")}
			if mode == "childstdout" {
				pids = append(pids, pidIn(t, path+".child"))
			}
			// Start has SIGKILLed the plugin's process group; a process
			// of it may still be on its way out on a loaded machine: wait
			// for it to go (bounded), as the death tests do.
			for _, pid := range pids {
				for deadline := time.Now().Add(time.Minute); !gone(pid) && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
				if !gone(pid) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					t.Errorf("process %d of the plugin that did not start is still running a minute later", pid)
				}
			}
		})
	}
}

// TestLoaderRetriesAStartThatTimedOut: a load that failed because the
// caller's context ended is not kept: the next caller, with time, loads it.
func TestLoaderRetriesAStartThatTimedOut(t *testing.T) {
	root := t.TempDir()
	put(t, root, "/a", []byte("A"))
	cfg := &config.Config{Backends: map[string]config.Backend{"sub": {Plugin: pluginBin, Config: map[string]string{"root": root}}}}
	l := loader.New(cfg)
	defer func() { _ = l.Close() }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Backend(ctx, "sub"); err == nil {
		t.Fatal("a backend loaded with a cancelled context")
	}
	b, err := l.Backend(context.Background(), "sub")
	if err != nil {
		t.Fatalf("the load after a cancelled one: %v", err)
	}
	if res, err := b.Get(context.Background(), []plugin.Ref{{Path: "/a"}}); err != nil || res[0].Err != nil {
		t.Fatalf("Get: %v %v", err, res)
	}
}
