package file_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/plugintest"
)

// KitConfig returns a conformance-kit configuration for a file backend rooted
// at a fresh temporary directory.
func kitConfig(t *testing.T) plugintest.Config {
	root := t.TempDir()
	return plugintest.Config{
		New:        file.New,
		Config:     map[string]string{"root": root},
		BadConfigs: []map[string]string{{}, {"root": filepath.Join(root, "missing")}, {"root": root, "colour": "blue"}},
		Ref:        func(name string) plugin.Ref { return plugin.Ref{Path: "/kit/" + name} },
		Put: func(t testing.TB, ref plugin.Ref, data []byte) {
			p := filepath.Join(root, filepath.FromSlash(ref.Path))
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		Binary: true,
	}
}

func TestConformance(t *testing.T) {
	plugintest.Run(t, kitConfig(t))
}

func configured(t *testing.T, root string) plugin.Backend {
	t.Helper()
	b := file.New()
	if err := b.Configure(context.Background(), map[string]string{"root": root}); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRefsStayInsideRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	if err := os.MkdirAll(filepath.Join(root, "spark"), 0o700); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(base, "outside-secret")
	if err := os.WriteFile(outside, []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "spark", "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../outside-secret", filepath.Join(root, "spark", "relescape")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "spark", "keystore"), []byte("ks"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := configured(t, root)
	cases := []struct {
		path string
		want error
		msg  string
	}{
		{"../etc/passwd", plugin.ErrInvalidConfig, "leaves the backend root"},
		{"/spark/../../outside-secret", plugin.ErrInvalidConfig, "leaves the backend root"},
		{"/spark/escape", plugin.ErrInvalidConfig, "leaves the backend root"},
		{"/spark/relescape", plugin.ErrInvalidConfig, "leaves the backend root"},
		{"/etc/passwd", plugin.ErrNotFound, "no such secret"},
		{"/spark", plugin.ErrInvalidConfig, "is a directory"},
		{"/", plugin.ErrInvalidConfig, "names the root"},
	}
	for _, c := range cases {
		res, err := b.Get(context.Background(), []plugin.Ref{{Path: c.path}})
		if err != nil {
			t.Fatalf("%s: batch error %v", c.path, err)
		}
		if !errors.Is(res[0].Err, c.want) || !strings.Contains(res[0].Err.Error(), c.msg) {
			t.Errorf("Get %q: error %v, want %v with %q", c.path, res[0].Err, c.want, c.msg)
		}
		if len(res[0].Secret.Data) != 0 {
			t.Errorf("Get %q returned data", c.path)
		}
	}
	res, _ := b.Get(context.Background(), []plugin.Ref{{Path: "/spark/keystore"}, {Path: "spark/keystore"}})
	for i, r := range res {
		if r.Err != nil || string(r.Secret.Data) != "ks" {
			t.Errorf("result %d: leading / must mean the root: %v", i, r.Err)
		}
	}
}

func TestFieldsAndVersionsRefused(t *testing.T) {
	root := t.TempDir()
	b := configured(t, root)
	res, _ := b.Get(context.Background(), []plugin.Ref{{Path: "/a", Field: "x"}, {Path: "/a", Version: "2"}})
	for i, r := range res {
		if !errors.Is(r.Err, plugin.ErrInvalidConfig) {
			t.Errorf("result %d: %v, want ErrInvalidConfig", i, r.Err)
		}
	}
}

func TestVersionKeyFileGivesStableVersions(t *testing.T) {
	root := t.TempDir()
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "s"), []byte("password1"), 0o600); err != nil {
		t.Fatal(err)
	}
	var versions []string
	for range 2 {
		b := file.New()
		if err := b.Configure(context.Background(), map[string]string{"root": root, "version_key_file": key}); err != nil {
			t.Fatal(err)
		}
		res, _ := b.Get(context.Background(), []plugin.Ref{{Path: "/s"}})
		versions = append(versions, res[0].Secret.Version)
	}
	if versions[0] != versions[1] {
		t.Errorf("two processes with one version key gave versions %q and %q", versions[0], versions[1])
	}
	if strings.Contains(versions[0], "password1") {
		t.Error("version reveals content")
	}
	if _, err := os.Lstat(filepath.Join(root, ".keyship-version-key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("with version_key_file the root got a key of its own: %v", err)
	}
}

// version returns the version the backend gives ref.
func version(t *testing.T, b plugin.Backend, ref string) string {
	t.Helper()
	res, err := b.Get(context.Background(), []plugin.Ref{{Path: ref}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Get %s: %v %v", ref, err, res[0].Err)
	}
	return res[0].Secret.Version
}

// plainDigests are the digests of data a guesser would try against a version.
func plainDigests(data []byte) []string {
	s1, s256, s512, m5 := sha1.Sum(data), sha256.Sum256(data), sha512.Sum512(data), md5.Sum(data)
	empty := hmac.New(sha256.New, nil)
	empty.Write(data)
	return []string{hex.EncodeToString(s1[:]), hex.EncodeToString(s256[:]), hex.EncodeToString(s512[:]),
		hex.EncodeToString(m5[:]), hex.EncodeToString(empty.Sum(nil)),
		base64.StdEncoding.EncodeToString(s256[:]), base64.RawURLEncoding.EncodeToString(s256[:])}
}

// TestVersionsStableForOneRoot: two backends on one root (two plugin
// processes, one run after another) give the same version for the same
// content, a different one for different content, and the version is no
// plain digest of the content.
func TestVersionsStableForOneRoot(t *testing.T) {
	root := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("s1", "password1")
	write("s2", "password2")
	b1, b2 := configured(t, root), configured(t, root)
	v1 := version(t, b1, "/s1")
	if v := version(t, b2, "/s1"); v != v1 {
		t.Errorf("two backends on one root: versions %q and %q for the same content", v1, v)
	}
	if v := version(t, b1, "/s2"); v == v1 {
		t.Errorf("different content, same version %q", v)
	}
	write("s1", "password1") // the same bytes again: a new mtime, the same version
	if v := version(t, configured(t, root), "/s1"); v != v1 {
		t.Errorf("rewritten with the same content: version %q, was %q", v, v1)
	}
	for _, d := range plainDigests([]byte("password1")) {
		hexPart := strings.TrimPrefix(v1, "h1:")
		if strings.Contains(d, hexPart) || strings.Contains(v1, d[:16]) {
			t.Errorf("version %q is a plain digest of the content (%s)", v1, d)
		}
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "s1"), []byte("password1"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v := version(t, configured(t, other), "/s1"); v == v1 {
		t.Errorf("two roots share version %q for the same content: the key is not per root", v)
	}

	// The key: 0600, 32 bytes, never shown as a secret.
	fi, err := os.Lstat(filepath.Join(root, ".keyship-version-key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 || fi.Size() != 32 {
		t.Errorf("version key is %v, %d bytes; want -rw------- and 32", fi.Mode(), fi.Size())
	}
	list, err := b1.(plugin.Lister).List(context.Background(), "/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/s1", "/s2"}; !slices.Equal(list, want) {
		t.Errorf("List / = %v, want %v", list, want)
	}
	res, _ := b1.Get(context.Background(), []plugin.Ref{{Path: "/.keyship-version-key"}, {Path: ".keyship-version-key"}})
	for _, r := range res {
		if !errors.Is(r.Err, plugin.ErrNotFound) || len(r.Secret.Data) != 0 {
			t.Errorf("Get of the version key: %v, %d bytes; want ErrNotFound and none", r.Err, len(r.Secret.Data))
		}
	}
}

// TestVersionKeyRace: backends configuring a fresh root at once all end with
// the one key that was linked into place, and leave no temporary file.
func TestVersionKeyRace(t *testing.T) {
	for round := range 5 {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "s"), []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		const n = 8
		backends := make([]plugin.Backend, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				b := file.New()
				if err := b.Configure(context.Background(), map[string]string{"root": root}); err != nil {
					t.Error(err)
					return
				}
				backends[i] = b
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		want := version(t, backends[0], "/s")
		for i, b := range backends {
			if v := version(t, b, "/s"); v != want {
				t.Errorf("round %d: backend %d: version %q, backend 0: %q", round, i, v, want)
			}
		}
		es, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 {
			t.Errorf("round %d: root holds %d entries, want s and the key", round, len(es))
		}
	}
}

// TestVersionKeyPlanted: a version key that is a link or the wrong size is
// refused with an error naming it, never followed or used.
func TestVersionKeyPlanted(t *testing.T) {
	for name, plant := range map[string]func(root string) error{
		"link to a secret": func(root string) error {
			if err := os.WriteFile(filepath.Join(root, "secret"), bytes.Repeat([]byte("k"), 32), 0o600); err != nil {
				return err
			}
			return os.Symlink("secret", filepath.Join(root, ".keyship-version-key"))
		},
		"short": func(root string) error {
			return os.WriteFile(filepath.Join(root, ".keyship-version-key"), []byte("short"), 0o600)
		},
		"directory": func(root string) error {
			return os.Mkdir(filepath.Join(root, ".keyship-version-key"), 0o700)
		},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if err := plant(root); err != nil {
				t.Fatal(err)
			}
			err := file.New().Configure(context.Background(), map[string]string{"root": root})
			if !errors.Is(err, plugin.ErrInvalidConfig) || !strings.Contains(err.Error(), filepath.Join(root, ".keyship-version-key")) {
				t.Errorf("Configure: %v, want ErrInvalidConfig naming the key", err)
			}
		})
	}
}

// TestVersionKeyFileChecked (issue 20, item 8): a version key that others
// may read or write, or that another user owns, is refused, and a key of the
// wrong size is refused naming its real size; this holds for the root's key
// and for version_key_file alike.
func TestVersionKeyFileChecked(t *testing.T) {
	const big = 1 << 20
	for name, tt := range map[string]struct {
		mode  os.FileMode
		size  int
		owner int // -1: the test's own uid
		want  string
	}{
		"mode 0644":     {0o644, 32, -1, "mode 0644"},
		"mode 0666":     {0o666, 32, -1, "mode 0666"},
		"mode 0640":     {0o640, 32, -1, "mode 0640"},
		"another owner": {0o600, 32, 4242, "owned by uid 4242"},
		"1 MB":          {0o600, big, -1, "holds 1048576 bytes"},
	} {
		for _, where := range []string{"root", "version_key_file"} {
			t.Run(name+" "+where, func(t *testing.T) {
				if tt.owner >= 0 && os.Geteuid() != 0 {
					t.Skip("chown to another user needs root")
				}
				root := t.TempDir()
				key := filepath.Join(root, ".keyship-version-key")
				config := map[string]string{"root": root}
				if where == "version_key_file" {
					key = filepath.Join(t.TempDir(), "key")
					config["version_key_file"] = key
				}
				if err := os.WriteFile(key, bytes.Repeat([]byte("k"), tt.size), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(key, tt.mode); err != nil {
					t.Fatal(err)
				}
				if tt.owner >= 0 {
					if err := os.Chown(key, tt.owner, tt.owner); err != nil {
						t.Fatal(err)
					}
				}
				err := file.New().Configure(context.Background(), config)
				if !errors.Is(err, plugin.ErrInvalidConfig) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Configure: %v; want ErrInvalidConfig naming %s and saying %q", err, key, tt.want)
				}
			})
		}
	}
}

// TestVersionKeyNotServedThroughLinks (issue 20, item 8): a symlink or a
// hard link inside the root that leads to the version key is not a secret:
// Get answers ErrNotFound and no bytes, as for the key's own name.
func TestVersionKeyNotServedThroughLinks(t *testing.T) {
	for _, where := range []string{"root", "version_key_file in the root"} {
		t.Run(where, func(t *testing.T) {
			root := t.TempDir()
			config := map[string]string{"root": root}
			key := filepath.Join(root, ".keyship-version-key")
			if where != "root" {
				key = filepath.Join(root, "keys", "version")
				if err := os.Mkdir(filepath.Dir(key), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(key, []byte("0123456789abcdef0123"), 0o600); err != nil {
					t.Fatal(err)
				}
				config["version_key_file"] = key
			}
			b := file.New()
			if err := b.Configure(context.Background(), config); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(mustRel(t, root, key), filepath.Join(root, "alias")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Base(key), filepath.Join(filepath.Dir(key), "relative-alias")); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(key, filepath.Join(root, "hard")); err != nil {
				t.Fatal(err)
			}
			refs := []plugin.Ref{{Path: "/alias"}, {Path: "/" + filepath.ToSlash(mustRel(t, root, filepath.Join(filepath.Dir(key), "relative-alias")))}, {Path: "/hard"}}
			if where != "root" {
				refs = append(refs, plugin.Ref{Path: "/keys/version"})
			}
			res, err := b.Get(context.Background(), refs)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if !errors.Is(r.Err, plugin.ErrNotFound) || len(r.Secret.Data) != 0 {
					t.Errorf("Get %s: %v, %d bytes; want ErrNotFound and none", refs[i].Path, r.Err, len(r.Secret.Data))
				}
			}
		})
	}
}

func mustRel(t *testing.T, base, target string) string {
	t.Helper()
	rel, err := filepath.Rel(base, target)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}
