package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/keyship/keyship/host/materialize"
)

// smallTmpfs mounts a tmpfs of size bytes on a fresh directory and unmounts
// it when the test ends; it skips the test when the process may not mount.
func smallTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestWriteNeedsRoomForTwoGenerations (issue 20, item 15): on a 64 KiB
// tmpfs that holds two sets of 24 KiB but not three, re-ships keep working
// (before, the 3rd failed with ENOSPC: a Write kept the generation before the
// current one while it wrote a new one), at most two generations are ever
// there, and a Write that does not fit fails and leaves no partial
// generation behind, after which a Write that fits works again.
func TestWriteNeedsRoomForTwoGenerations(t *testing.T) {
	dir := filepath.Join(smallTmpfs(t, 64<<10), "sandbox")
	set := func(n, files int) []materialize.File {
		var fs []materialize.File
		for i := range files {
			fs = append(fs, materialize.File{Path: fmt.Sprintf("f%d", i), Contents: bytes.Repeat([]byte{byte('a' + n%26)}, 12<<10)})
		}
		return fs
	}
	var last *Result
	for n := range 10 {
		res, err := Write(t.Context(), dir, set(n, 2), leave)
		if err != nil {
			t.Fatalf("ship %d of a 24 KiB set on a 64 KiB tmpfs: %v", n+1, err)
		}
		if got := generations(t, dir); len(got) > 2 {
			t.Fatalf("after ship %d: %d generations %v, want at most 2", n+1, len(got), got)
		}
		last = res
	}
	// 48 KiB does not fit beside the current 24 KiB set.
	_, err := Write(t.Context(), dir, set(10, 4), leave)
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("a 48 KiB set beside a 24 KiB one on a 64 KiB tmpfs: %v, want ENOSPC", err)
	}
	if got := generations(t, dir); !slices.Equal(got, []string{last.Generation}) {
		t.Errorf("after the failed Write: generations %v, want only the current %s", got, last.Generation)
	}
	if got := readFile(t, filepath.Join(dir, "f0")); got[0] != 'j' {
		t.Errorf("after the failed Write f0 starts %q, want the last set's 'j'", got[0])
	}
	if _, err := Write(t.Context(), dir, set(11, 2), leave); err != nil {
		t.Fatalf("a set that fits, after a failed Write: %v", err)
	}
}
