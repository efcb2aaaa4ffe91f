package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyship/keyship/plugin"
)

// TestOpenBeneathReadsAsOSRoot: every ref reads the same through
// openBeneath (one openat2) as through os.Root, symlinks and escapes
// included: the same bytes, version and metadata, or the same sentinel and
// message. The fast path must really be taken, or the comparison proves
// nothing.
func TestOpenBeneathReadsAsOSRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	write := func(p, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		t.Helper()
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "spark", "keystore"), "keystore bytes")
	write(filepath.Join(root, "other", "password"), "pw")
	write(outside, "outside bytes")
	link("keystore", filepath.Join(root, "spark", "same-dir"))
	link("../other/password", filepath.Join(root, "spark", "up-and-in"))
	link("../../outside", filepath.Join(root, "spark", "up-and-out"))
	link(outside, filepath.Join(root, "spark", "absolute-out"))
	link(filepath.Join(root, "other", "password"), filepath.Join(root, "spark", "absolute-in"))
	link("other", filepath.Join(root, "dirlink"))
	link("loop-b", filepath.Join(root, "loop-a"))
	link("loop-a", filepath.Join(root, "loop-b"))
	link("/proc/self/root/etc/hostname", filepath.Join(root, "magic"))

	b := &Backend{}
	if err := b.Configure(context.Background(), map[string]string{"root": root}); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, versionKeyName), filepath.Join(root, "key-hardlink")); err != nil {
		t.Fatal(err)
	}
	link(versionKeyName, filepath.Join(root, "key-symlink"))
	if b.rootFile == nil {
		t.Fatal("Configure kept no root directory open: openBeneath is never used")
	}
	if f, err := openBeneath(int(b.rootFile.Fd()), "spark/keystore"); err != nil {
		t.Fatalf("openBeneath: %v (the kernel or a filter refuses openat2: this test cannot compare)", err)
	} else {
		_ = f.Close()
	}
	slow := &Backend{root: b.root, rootDir: b.rootDir, versionKey: b.versionKey, keyFile: b.keyFile}

	refs := []string{"/spark/keystore", "/other/password", "/spark/same-dir", "/spark/up-and-in",
		"/spark/up-and-out", "/spark/absolute-out", "/spark/absolute-in", "/dirlink/password",
		"/dirlink", "/spark", "/missing", "/spark/missing/deeper", "/loop-a", "/magic",
		"/key-hardlink", "/key-symlink", "/spark/keystore/under-a-file"}
	sentinels := []error{plugin.ErrNotFound, plugin.ErrInvalidConfig, plugin.ErrPermissionDenied, plugin.ErrUnavailable}
	for _, ref := range refs {
		fast, slowRes := b.read(plugin.Ref{Path: ref}), slow.read(plugin.Ref{Path: ref})
		if (fast.Err == nil) != (slowRes.Err == nil) {
			t.Errorf("%s: openBeneath: %v; os.Root: %v", ref, fast.Err, slowRes.Err)
			continue
		}
		if fast.Err != nil {
			for _, s := range sentinels {
				if errors.Is(fast.Err, s) != errors.Is(slowRes.Err, s) {
					t.Errorf("%s: openBeneath: %v; os.Root: %v (not the same sentinel)", ref, fast.Err, slowRes.Err)
				}
			}
			if fast.Err.Error() != slowRes.Err.Error() && !errors.Is(fast.Err, plugin.ErrUnavailable) {
				t.Errorf("%s: openBeneath: %q; os.Root: %q", ref, fast.Err, slowRes.Err)
			}
			continue
		}
		if string(fast.Secret.Data) != string(slowRes.Secret.Data) || fast.Secret.Version != slowRes.Secret.Version ||
			fast.Secret.Metadata["modified"] != slowRes.Secret.Metadata["modified"] {
			t.Errorf("%s: openBeneath read %q %s %v; os.Root %q %s %v", ref, fast.Secret.Data, fast.Secret.Version,
				fast.Secret.Metadata, slowRes.Secret.Data, slowRes.Secret.Version, slowRes.Secret.Metadata)
		}
	}
}
