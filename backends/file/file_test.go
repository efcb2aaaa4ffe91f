package file_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
}
