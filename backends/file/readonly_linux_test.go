package file_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/keyship/keyship/backends/file"
)

// readOnlyRoot returns a root that holds secret s and cannot take a new file:
// a read-only bind mount as root (who ignores permission bits), mode 0500
// otherwise.
func readOnlyRoot(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "s"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(src, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(src, 0o700) })
		return src
	}
	dst := t.TempDir()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount a read-only root here (%v); the read-only case needs CAP_SYS_ADMIN or a non-root run", err)
	}
	// Detached: the backend still holds the root open.
	t.Cleanup(func() { _ = unix.Unmount(dst, unix.MNT_DETACH) })
	if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only (%v)", err)
	}
	return dst
}

// TestVersionKeyReadOnlyRoot: a root that cannot take the key still works,
// with a key random per process (documented), and gets no file.
func TestVersionKeyReadOnlyRoot(t *testing.T) {
	root := readOnlyRoot(t)
	b := file.New()
	if err := b.Configure(context.Background(), map[string]string{"root": root}); err != nil {
		t.Fatalf("Configure on a read-only root: %v", err)
	}
	if v := version(t, b, "/s"); v == "" {
		t.Error("no version")
	}
	if _, err := os.Lstat(filepath.Join(root, ".keyship-version-key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key appeared in the read-only root: %v", err)
	}
}
