package launch

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSumCacheHitsOnlyTheSameUnchangedFile: a remembered sum is used for
// the same file (device, inode, size, mtime, ctime) only: a write, a chmod
// (any ctime change) or another file at the path misses; so does a cache
// directory others could write.
func TestSumCacheHitsOnlyTheSameUnchangedFile(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	defer func(d time.Duration) { settledAfter = d }(settledAfter)
	settledAfter = 0
	clearMem := func() {
		memSums.Lock()
		clear(memSums.m)
		memSums.Unlock()
	}
	clearMem()
	path := filepath.Join(t.TempDir(), "keyship-backend-x")
	if err := os.WriteFile(path, []byte("plugin bytes"), 0o755); err != nil {
		t.Fatal(err)
	}
	lookup := func() ([]byte, bool) {
		t.Helper()
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		sum, _, ok := cachedSum(f)
		return sum, ok
	}
	remember := func() []byte {
		t.Helper()
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		_, id, _ := cachedSum(f)
		sum, err := hashFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rememberSum(f, id, sum)
		return sum
	}
	if _, ok := lookup(); ok {
		t.Fatal("a hit before anything was remembered")
	}
	want := remember()
	if got, ok := lookup(); !ok || !bytes.Equal(got, want) {
		t.Fatal("no hit (in memory) for the file just hashed")
	}
	clearMem() // a new keyship process: from disk
	if got, ok := lookup(); !ok || !bytes.Equal(got, want) {
		t.Fatal("no hit (on disk) for the file just hashed")
	}

	time.Sleep(10 * time.Millisecond) // a coarse clock must see the change
	if err := os.Chmod(path, 0o750); err != nil {
		t.Fatal(err)
	}
	clearMem()
	if _, ok := lookup(); ok {
		t.Error("a hit after chmod (ctime changed)")
	}
	remember()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("!"))
	_ = f.Close()
	clearMem()
	if _, ok := lookup(); ok {
		t.Error("a hit after the file was written")
	}
	remember()
	other := path + ".new"
	if err := os.WriteFile(other, []byte("plugin bytes!"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	clearMem()
	if _, ok := lookup(); ok {
		t.Error("a hit for another file renamed over the path")
	}

	// A cache directory others can write is not used.
	remember()
	clearMem()
	if err := os.Chmod(sumCacheDir(), 0o777); err != nil {
		t.Fatal(err)
	}
	if _, ok := lookup(); ok {
		t.Error("a hit from a cache directory others can write")
	}
}

// TestSumNotRememberedBeforeItSettles: a file changed less than
// settledAfter ago is hashed at every start.
func TestSumNotRememberedBeforeItSettles(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	path := filepath.Join(t.TempDir(), "keyship-backend-x")
	if err := os.WriteFile(path, []byte("fresh"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	_, id, _ := cachedSum(f)
	sum, _ := hashFile(f)
	rememberSum(f, id, sum)
	if _, _, ok := cachedSum(f); ok {
		t.Fatal("the sum of a file changed just now was remembered")
	}
}
