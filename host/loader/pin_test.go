package loader_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
	"github.com/keyship/keyship/plugin/plugintest"
)

// TestPinCannotBeRaced starts a pinned plugin 100 times while another
// goroutine keeps renaming a different binary over the pinned path. Every
// start must either run the pinned binary or refuse: the other binary (the
// test plugin, which records each start beside the path it was run as) must
// never run.
func TestPinCannotBeRaced(t *testing.T) {
	dir := t.TempDir()
	pinned, other := filepath.Join(dir, "pinned"), filepath.Join(dir, "other")
	plugintest.CopyExecutable(t, pluginBin, pinned)
	plugintest.CopyExecutable(t, testPluginBin, other)
	target := filepath.Join(dir, "keyship-backend-file")
	plugintest.CopyExecutable(t, pluginBin, target)
	pin := start(t, nil).SHA256()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var swaps atomic.Int64
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			src := []string{pinned, other}[i%2]
			tmp := filepath.Join(dir, "swap.tmp")
			_ = os.Remove(tmp)
			if err := os.Link(src, tmp); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, target); err != nil {
				t.Error(err)
				return
			}
			swaps.Add(1)
			time.Sleep(200 * time.Microsecond) // leave the CPU to the starts
		}
	})
	var ran, refused int
	for range 100 {
		s, err := launch.Start(context.Background(), "file", target, pin, nil)
		switch {
		case err == nil:
			ran++
			_ = s.Close()
		case errors.Is(err, plugin.ErrInvalidConfig) && strings.Contains(err.Error(), "sha256 mismatch"):
			refused++
		default:
			t.Errorf("start: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	unpinned := 0
	if data, err := os.ReadFile(target + ".starts"); err == nil {
		unpinned = strings.Count(string(data), "\n")
	}
	t.Logf("100 starts during %d swaps: %d ran the pinned binary, %d refused, %d ran the unpinned one", swaps.Load(), ran, refused, unpinned)
	if unpinned != 0 {
		t.Errorf("the unpinned binary ran %d times", unpinned)
	}
	if ran == 0 || refused == 0 {
		t.Errorf("the race did not happen (ran %d, refused %d): the test proves nothing", ran, refused)
	}
}

// TestPinnedBinaryWritableByOthersRefused: a pinned binary that group or
// others can write could be changed between the check and the exec.
func TestPinnedBinaryWritableByOthersRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyship-backend-file")
	plugintest.CopyExecutable(t, pluginBin, path)
	pin := start(t, nil).SHA256()
	if err := os.Chmod(path, 0o775); err != nil {
		t.Fatal(err)
	}
	_, err := launch.Start(context.Background(), "file", path, pin, nil)
	if !errors.Is(err, plugin.ErrInvalidConfig) || !strings.Contains(err.Error(), "writable by group or others") || !strings.Contains(err.Error(), path) {
		t.Fatalf("a group-writable pinned plugin: %v", err)
	}
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := launch.Start(context.Background(), "file", path, pin, nil)
	if err != nil {
		t.Fatalf("the same binary, mode 0755: %v", err)
	}
	_ = s.Close()
}

// TestPinIgnoresAForgedSumCache is the attack on the sum cache keyship kept
// until it hashed at every start (~/.cache/keyship/plugin-sums/<dev>-<ino>: "v1 size mtime_ns ctime_ns
// sum"): a process of keyship's uid overwrites the pinned binary in place
// (renames another over it) and writes an entry giving the new file the
// pinned sum. The pin must hash
// what it executes, so the start is refused and the other binary never runs.
func TestPinIgnoresAForgedSumCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	// The test plugin named ...-unpinned records that it ran and exits.
	path := filepath.Join(t.TempDir(), "keyship-backend-unpinned")
	plugintest.CopyExecutable(t, pluginBin, path)
	pin := start(t, nil).SHA256()
	s, err := launch.Start(context.Background(), "file", path, pin, nil)
	if err != nil {
		t.Fatalf("the pinned binary: %v", err)
	}
	_ = s.Close()

	plugintest.CopyExecutable(t, testPluginBin, path+".new")
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "keyship", "plugin-sums")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	forged := fmt.Sprintf("v1 %d %d %d %s\n", st.Size, st.Mtim.Nano(), st.Ctim.Nano(), pin)
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%x-%x", st.Dev, st.Ino)), []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}

	_, err = launch.Start(context.Background(), "file", path, pin, nil)
	if !errors.Is(err, plugin.ErrInvalidConfig) || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Errorf("the swapped binary with a forged cache entry: %v, want a sha256 mismatch", err)
	}
	if data, err := os.ReadFile(path + ".starts"); err == nil {
		t.Errorf("the unpinned binary ran %d time(s)", strings.Count(string(data), "\n"))
	}
}
