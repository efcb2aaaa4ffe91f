package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/keyship/keyship/host/materialize"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// leave keeps file ownership as the test process creates it.
var leave = Options{}

func mode(t *testing.T, name string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// entries lists the names in dir, sorted.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// visible lists the names in dir that do not begin with "..".
func visible(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, n := range entries(t, dir) {
		if !strings.HasPrefix(n, "..") {
			out = append(out, n)
		}
	}
	return out
}

// generations lists the generation directories in dir.
func generations(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, n := range entries(t, dir) {
		if generationName.MatchString(n) {
			out = append(out, n)
		}
	}
	return out
}

func TestWriteLayoutAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ssl", "driver")
	res, err := Write(t.Context(), dir, []materialize.File{
		{Path: "keystore.jks", Contents: []byte("ks")},
		{Path: "./truststore.jks", Mode: 0o400, Contents: []byte("ts")},
		{Path: "conf/flink.yaml", Mode: 0o644, Contents: []byte("yaml")},
		{Path: "conf//nested/ca.pem", Mode: 0o600, Contents: []byte("ca")},
		{Path: "empty", Contents: nil},
	}, leave)
	if err != nil {
		t.Fatal(err)
	}
	wantPaths := []string{"keystore.jks", "truststore.jks", "conf/flink.yaml", "conf/nested/ca.pem", "empty"}
	if !slices.Equal(res.Paths, wantPaths) || res.Dir != dir {
		t.Errorf("Result = %+v, want paths %v", res, wantPaths)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("dir mode %v, want 0700", m)
	}
	target, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil || target != res.Generation || !generationName.MatchString(target) {
		t.Fatalf("..data -> %q (%v), want the generation %q", target, err, res.Generation)
	}
	for _, d := range []string{res.Generation, filepath.Join(res.Generation, "conf"), filepath.Join(res.Generation, "conf", "nested")} {
		if m := mode(t, filepath.Join(dir, d)); m != 0o700 {
			t.Errorf("%s mode %v, want 0700", d, m)
		}
	}
	for name, want := range map[string]struct {
		mode     fs.FileMode
		contents string
	}{
		"keystore.jks":       {0o600, "ks"},
		"truststore.jks":     {0o400, "ts"},
		"conf/flink.yaml":    {0o600, "yaml"},
		"conf/nested/ca.pem": {0o600, "ca"},
		"empty":              {0o600, ""},
	} {
		p := filepath.Join(dir, name)
		if m := mode(t, p); m != want.mode {
			t.Errorf("%s mode %v, want %v", name, m, want.mode)
		}
		if got := readFile(t, p); got != want.contents {
			t.Errorf("%s = %q, want %q", name, got, want.contents)
		}
	}
	// Top-level names are links into ..data; nested paths link their first
	// element only.
	for _, name := range []string{"keystore.jks", "truststore.jks", "conf", "empty"} {
		target, err := os.Readlink(filepath.Join(dir, name))
		if err != nil || target != "..data/"+name {
			t.Errorf("%s -> %q (%v), want ..data/%s", name, target, err, name)
		}
	}
	want := []string{"..data", res.Generation, "conf", "empty", "keystore.jks", "truststore.jks"}
	slices.Sort(want)
	if got := entries(t, dir); !slices.Equal(got, want) {
		t.Errorf("dir holds %v, want %v", got, want)
	}
}

func TestWriteTightensExistingDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(t.Context(), dir, []materialize.File{{Path: "a", Contents: []byte("a")}}, leave); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("dir mode %v, want 0700", m)
	}
}

func TestWriteReplacesSet(t *testing.T) {
	dir := t.TempDir()
	// A file of someone else's in the same directory stays.
	if err := os.WriteFile(filepath.Join(dir, "stdout"), []byte("log"), 0o600); err != nil {
		t.Fatal(err)
	}
	first, err := Write(t.Context(), dir, []materialize.File{
		{Path: "a", Contents: []byte("a1")},
		{Path: "b", Contents: []byte("b1")},
		{Path: "sub/c", Contents: []byte("c1")},
	}, leave)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Write(t.Context(), dir, []materialize.File{
		{Path: "a", Mode: 0o400, Contents: []byte("a2")},
		{Path: "d", Contents: []byte("d2")},
	}, leave)
	if err != nil {
		t.Fatal(err)
	}
	if first.Generation == second.Generation {
		t.Fatalf("both writes used generation %s", first.Generation)
	}
	if got := readFile(t, filepath.Join(dir, "a")); got != "a2" {
		t.Errorf("a = %q, want a2", got)
	}
	if m := mode(t, filepath.Join(dir, "a")); m != 0o400 {
		t.Errorf("a mode %v, want 0400", m)
	}
	if got := readFile(t, filepath.Join(dir, "d")); got != "d2" {
		t.Errorf("d = %q, want d2", got)
	}
	if got := visible(t, dir); !slices.Equal(got, []string{"a", "d", "stdout"}) {
		t.Errorf("visible names %v, want [a d stdout]", got)
	}
	// The previous generation stays until the next Write, for readers that
	// resolved ..data just before the swap.
	if got, want := generations(t, dir), sorted(first.Generation, second.Generation); !slices.Equal(got, want) {
		t.Errorf("generations %v, want %v", got, want)
	}

	// An empty set removes every name but keeps the foreign file.
	third, err := Write(t.Context(), dir, nil, leave)
	if err != nil {
		t.Fatal(err)
	}
	if got := visible(t, dir); !slices.Equal(got, []string{"stdout"}) {
		t.Errorf("visible names %v, want [stdout]", got)
	}
	if got, want := generations(t, dir), sorted(second.Generation, third.Generation); !slices.Equal(got, want) {
		t.Errorf("generations %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, first.Generation)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("generation before the previous one still there: %v", err)
	}
}

func sorted(s ...string) []string { return slices.Sorted(slices.Values(s)) }

func TestWriteCleansCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	prev, err := Write(t.Context(), dir, []materialize.File{{Path: "a", Contents: []byte("1")}}, leave)
	if err != nil {
		t.Fatal(err)
	}
	// A Write that crashed after filling a generation, before the swap.
	stale := filepath.Join(dir, "..2020_01_01_00_00_00.42")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, "a"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..2020_01_01_00_00_00.42", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	res, err := Write(t.Context(), dir, []materialize.File{{Path: "a", Contents: []byte("2")}}, leave)
	if err != nil {
		t.Fatal(err)
	}
	want := sorted("..data", prev.Generation, res.Generation, "a")
	if got := entries(t, dir); !slices.Equal(got, want) {
		t.Errorf("dir holds %v, want %v", got, want)
	}
}

func TestWriteRejectsBadFiles(t *testing.T) {
	tests := []struct {
		name  string
		files []materialize.File
		want  string // part of the error, which names the path
	}{
		{"parent", []materialize.File{{Path: "../x"}}, `file "../x": path contains a ".." element`},
		{"absolute", []materialize.File{{Path: "/etc/x"}}, `file "/etc/x": path is absolute`},
		{"escape after cleaning", []materialize.File{{Path: "a/../../b"}}, `file "a/../../b": path contains a ".." element`},
		{"inner parent", []materialize.File{{Path: "a/../b"}}, `file "a/../b": path contains a ".." element`},
		{"..data", []materialize.File{{Path: "..data"}}, `file "..data": path element "..data" begins with ".."`},
		{"..data/x", []materialize.File{{Path: "..data/x"}}, `begins with ".."`},
		{"nested ..name", []materialize.File{{Path: "a/..b"}}, `file "a/..b": path element "..b" begins with ".."`},
		{"generation name", []materialize.File{{Path: "..2020_01_01_00_00_00.1"}}, `begins with ".."`},
		{"empty", []materialize.File{{Path: ""}}, `file "": empty path`},
		{"dot", []materialize.File{{Path: "."}}, `file ".": path names no file`},
		{"dot slash", []materialize.File{{Path: "./"}}, `path names no file`},
		{"NUL", []materialize.File{{Path: "a\x00b"}}, `file "a\x00b": path contains a control character`},
		{"newline", []materialize.File{{Path: "a\nb"}}, `control character`},
		{"duplicate", []materialize.File{{Path: "a"}, {Path: "./a"}}, `file "./a": duplicate path (also given as "a")`},
		{"file and dir", []materialize.File{{Path: "a"}, {Path: "a/b"}}, `file "a/b": "a" is a file, so it cannot also be a directory`},
		{"unreadable mode", []materialize.File{{Path: "a", Mode: 0o200}}, `file "a": mode 0200 leaves the file unreadable by its owner`},
		{"not a permission", []materialize.File{{Path: "a", Mode: fs.ModeSetuid | 0o600}}, `file "a": mode`},
		{"one bad among good", []materialize.File{{Path: "ok"}, {Path: "../bad"}, {Path: "ok2"}}, `"../bad"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			_, err := Write(t.Context(), dir, tt.files, leave)
			if err == nil {
				t.Fatal("Write succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if _, serr := os.Lstat(dir); !errors.Is(serr, fs.ErrNotExist) {
				t.Errorf("Write created %s: %v", dir, serr)
			}
		})
	}

	t.Run("all bad paths reported", func(t *testing.T) {
		_, err := Write(t.Context(), t.TempDir(), []materialize.File{{Path: "../x"}, {Path: "/etc/x"}, {Path: "..data"}}, leave)
		for _, p := range []string{`"../x"`, `"/etc/x"`, `"..data"`} {
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("error %v does not name %s", err, p)
			}
		}
	})

	t.Run("existing set untouched", func(t *testing.T) {
		dir := t.TempDir()
		res, err := Write(t.Context(), dir, []materialize.File{{Path: "a", Contents: []byte("old")}}, leave)
		if err != nil {
			t.Fatal(err)
		}
		before := entries(t, dir)
		if _, err := Write(t.Context(), dir, []materialize.File{{Path: "a", Contents: []byte("new")}, {Path: "a/../../b"}}, leave); err == nil {
			t.Fatal("Write succeeded")
		}
		if got := entries(t, dir); !slices.Equal(got, before) {
			t.Errorf("dir holds %v, had %v", got, before)
		}
		if got := readFile(t, filepath.Join(dir, "a")); got != "old" {
			t.Errorf("a = %q, want old", got)
		}
		if target, _ := os.Readlink(filepath.Join(dir, "..data")); target != res.Generation {
			t.Errorf("..data -> %q, want %q", target, res.Generation)
		}
	})
}

func TestWriteRefusesForeignNames(t *testing.T) {
	for name, setup := range map[string]func(dir string) error{
		"regular file": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "keystore.jks"), []byte("theirs"), 0o600)
		},
		"other link": func(dir string) error {
			return os.Symlink("/etc/passwd", filepath.Join(dir, "keystore.jks"))
		},
		"directory ..data": func(dir string) error {
			return os.Mkdir(filepath.Join(dir, "..data"), 0o700)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o750); err != nil {
				t.Fatal(err)
			}
			if err := setup(dir); err != nil {
				t.Fatal(err)
			}
			before := entries(t, dir)
			_, err := Write(t.Context(), dir, []materialize.File{{Path: "keystore.jks", Contents: []byte("ours")}}, leave)
			if err == nil {
				t.Fatal("Write succeeded")
			}
			if got := entries(t, dir); !slices.Equal(got, before) {
				t.Errorf("dir holds %v, had %v", got, before)
			}
			if m := mode(t, dir); m != 0o750 {
				t.Errorf("dir mode changed to %v", m)
			}
		})
	}
}

// genContents is the contents of every file of generation n: long enough that
// a torn or partial read shows.
func genContents(n int) []byte {
	return bytes.Repeat([]byte("gen "+strconv.Itoa(n)+"\n"), 500)
}

// parseGen returns the generation of contents, or an error when the contents
// are not exactly one complete generation.
func parseGen(b []byte) (int, error) {
	first, _, ok := bytes.Cut(b, []byte("\n"))
	n, err := strconv.Atoi(strings.TrimPrefix(string(first), "gen "))
	if !ok || err != nil || !bytes.Equal(b, genContents(n)) {
		return 0, fmt.Errorf("not one complete generation (%d bytes, starting %.12q)", len(b), b)
	}
	return n, nil
}

// TestWriteConcurrentReaders rewrites a 3-file set while readers read it
// through the top-level links. A file must always hold one complete
// generation; files read one after another never go back in generation; and
// when ..data did not change around the three reads, all three carry the same
// generation. Writing the files in place, or renaming them one by one, fails
// this test.
func TestWriteConcurrentReaders(t *testing.T) {
	dir := t.TempDir()
	names := []string{"keystore.jks", "truststore.jks", "ca.pem"}
	set := func(n int) []materialize.File {
		var fs []materialize.File
		for _, name := range names {
			fs = append(fs, materialize.File{Path: name, Contents: genContents(n)})
		}
		return fs
	}
	if _, err := Write(t.Context(), dir, set(0), leave); err != nil {
		t.Fatal(err)
	}

	const writes = 100
	var (
		done                 atomic.Bool
		wg                   sync.WaitGroup
		consistent, vanished atomic.Int64
		seenMu               sync.Mutex
		seen                 = map[int]bool{}
	)
	readLink := func() string {
		target, err := os.Readlink(filepath.Join(dir, "..data"))
		if err != nil {
			t.Errorf("..data: %v", err)
		}
		return target
	}

	// Readers of the set.
	for range 2 {
		wg.Go(func() {
			for !done.Load() {
				before := readLink()
				var gens []int
				missing := false
				for _, name := range names {
					b, err := os.ReadFile(filepath.Join(dir, name))
					if errors.Is(err, fs.ErrNotExist) {
						// The generation this read resolved was removed
						// under it: only possible once ..data moved on.
						missing = true
						break
					}
					if err != nil {
						t.Errorf("read %s: %v", name, err)
						return
					}
					n, err := parseGen(b)
					if err != nil {
						t.Errorf("%s: %v", name, err)
						return
					}
					gens = append(gens, n)
				}
				after := readLink()
				if missing {
					if before == after {
						t.Errorf("a file vanished while ..data stayed at %s", before)
						return
					}
					vanished.Add(1)
					continue
				}
				if !slices.IsSorted(gens) {
					t.Errorf("generations went back: %v", gens)
					return
				}
				if before == after {
					if gens[0] != gens[2] {
						t.Errorf("mixed set %v while ..data stayed at %s", gens, before)
						return
					}
					consistent.Add(1)
					seenMu.Lock()
					seen[gens[0]] = true
					seenMu.Unlock()
				}
			}
		})
	}

	// A lister: the visible names are always exactly the set, as our links.
	wg.Go(func() {
		want := slices.Sorted(slices.Values(names))
		for !done.Load() {
			es, err := os.ReadDir(dir)
			if err != nil {
				t.Errorf("list: %v", err)
				return
			}
			var got []string
			for _, e := range es {
				n := e.Name()
				switch {
				case n == "..data", n == "..data_tmp", generationName.MatchString(n):
				case strings.HasPrefix(n, ".."):
					t.Errorf("unexpected entry %q", n)
				default:
					got = append(got, n)
					if e.Type() != fs.ModeSymlink {
						t.Errorf("%s is %v, not a link", n, e.Type())
					}
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("visible names %v, want %v", got, want)
				return
			}
		}
	})

	for n := 1; n <= writes; n++ {
		if _, err := Write(t.Context(), dir, set(n), leave); err != nil {
			t.Error(err)
			break
		}
	}
	done.Store(true)
	wg.Wait()

	if consistent.Load() == 0 || len(seen) < 2 {
		t.Errorf("readers saw %d consistent sets of %d generations; the test proved nothing", consistent.Load(), len(seen))
	}
	t.Logf("%d consistent reads over %d generations, %d reads retried after a swap", consistent.Load(), len(seen), vanished.Load())
	for _, name := range names {
		if n, err := parseGen([]byte(readFile(t, filepath.Join(dir, name)))); err != nil || n != writes {
			t.Errorf("%s: generation %d (%v), want %d", name, n, err, writes)
		}
	}
	if g := generations(t, dir); len(g) != 2 {
		t.Errorf("generations left: %v, want the current and the previous one", g)
	}
}

func TestWriteConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := Write(t.Context(), dir, []materialize.File{{Path: "a", Contents: []byte(strconv.Itoa(i))}}, leave); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if g := generations(t, dir); len(g) != 2 {
		t.Errorf("generations left: %v, want the current and the previous one", g)
	}
	if got := readFile(t, filepath.Join(dir, "a")); len(got) != 1 {
		t.Errorf("a = %q", got)
	}
}
