//go:build unix

package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/keyship/keyship/host/materialize"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The racing-writer test runs this test binary again as a writer process:
// with writerDirEnv set it waits for a line on stdin, writes tagged files
// into that directory and exits (0, or 1 with the error on stderr).
const (
	writerDirEnv = "KEYSHIP_SANDBOX_TEST_WRITER_DIR"
	writerTagEnv = "KEYSHIP_SANDBOX_TEST_WRITER_TAG"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(writerDirEnv); dir != "" {
		os.Exit(writerProcess(dir, os.Getenv(writerTagEnv)))
	}
	os.Exit(m.Run())
}

func writerProcess(dir, tag string) int {
	if _, err := io.ReadAll(io.LimitReader(os.Stdin, 3)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := Write(ctx, dir, taggedSet(tag), Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// taggedContents is what every file of the set tagged tag holds.
func taggedContents(tag string) []byte { return bytes.Repeat([]byte(tag+"\n"), 300) }

// taggedSet is a set of files plus its manifest, whose versions are the tag.
func taggedSet(tag string) []materialize.File {
	files := []materialize.File{
		{Path: "keystore.jks", Contents: taggedContents(tag)},
		{Path: "truststore.jks", Mode: 0o400, Contents: taggedContents(tag)},
		{Path: "conf/app.conf", Contents: taggedContents(tag)},
	}
	for i := range files {
		files[i].Version = tag
	}
	m, err := Manifest(files)
	if err != nil {
		panic(err)
	}
	return append(files, m)
}

// checkComplete says why ..data in dir does not resolve to a complete
// generation whose files match its manifest.json, or returns the tag it holds.
func checkComplete(dir string) (string, error) {
	gen, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil {
		return "", err
	}
	if !generationName.MatchString(gen) {
		return "", fmt.Errorf("..data -> %q, not a generation", gen)
	}
	data, err := os.ReadFile(filepath.Join(dir, gen, ManifestName))
	if err != nil {
		return "", fmt.Errorf("..data -> %s: %w", gen, err)
	}
	var m struct{ Files []ManifestEntry }
	if err := json.Unmarshal(data, &m); err != nil || len(m.Files) == 0 {
		return "", fmt.Errorf("%s: bad manifest (%v)", gen, err)
	}
	tag := m.Files[0].Version
	for _, e := range m.Files {
		p := filepath.Join(dir, gen, filepath.FromSlash(e.Path))
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		if e.Version != tag || !bytes.Equal(b, taggedContents(tag)) {
			return "", fmt.Errorf("%s does not hold the version %s the manifest lists", p, e.Version)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		if got := octal(fi.Mode()); got != e.Mode {
			return "", fmt.Errorf("%s mode %s, manifest says %s", p, got, e.Mode)
		}
	}
	return tag, nil
}

// TestWriteRacingProcesses is issue 10 item 2: pairs of keyship processes
// write one sandbox at the same moment; after each pair ..data resolves to a
// complete generation matching its manifest, and both writers succeeded.
func TestWriteRacingProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 40 processes")
	}
	const pairs = 20
	dir := filepath.Join(t.TempDir(), "sandbox")
	var broken, failed int
	for pair := range pairs {
		tags := []string{fmt.Sprintf("pair%d-a", pair), fmt.Sprintf("pair%d-b", pair)}
		var cmds []*exec.Cmd
		var stdins []io.WriteCloser
		var stderrs []*bytes.Buffer
		for _, tag := range tags {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), writerDirEnv+"="+dir, writerTagEnv+"="+tag)
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, stdins, stderrs = append(cmds, cmd), append(stdins, in), append(stderrs, &stderr)
		}
		for _, in := range stdins { // both start writing now
			_ = in.Close()
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				failed++
				t.Logf("pair %d: writer %s: %v: %s", pair, tags[i], err, strings.TrimSpace(stderrs[i].String()))
			}
		}
		tag, err := checkComplete(dir)
		if err != nil {
			broken++
			t.Logf("pair %d: %v", pair, err)
		} else if !slices.Contains(tags, tag) {
			broken++
			t.Logf("pair %d: ..data holds %s, from neither writer of the pair", pair, tag)
		}
	}
	t.Logf("%d racing pairs: %d left ..data broken, %d writers failed", pairs, broken, failed)
	if broken > 0 || failed > 0 {
		t.Errorf("%d of %d racing pairs left ..data broken and %d writers failed; want 0 and 0", broken, pairs, failed)
	}
	if g := generations(t, dir); len(g) > 2 {
		t.Errorf("generations left: %v, want the current and the previous one", g)
	}
}

// lockSandbox takes the lock a Write takes, as another keyship process would,
// and returns its release.
func lockSandbox(t *testing.T, dir string) (release func()) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	return func() { _ = f.Close() }
}

// TestWriteGivesUpOnHeldLock: a Write that cannot get the sandbox's lock
// before its context ends fails clearly and writes nothing.
func TestWriteGivesUpOnHeldLock(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(t.Context(), dir, []materialize.File{{Path: "a", Contents: []byte("1")}}, leave); err != nil {
		t.Fatal(err)
	}
	release := lockSandbox(t, dir)
	defer release()
	before := entries(t, dir)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := Write(ctx, dir, []materialize.File{{Path: "a", Contents: []byte("2")}}, leave)
	want := "another keyship is writing " + dir + "; gave up after "
	if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want one containing %q and matching context.DeadlineExceeded", err, want)
	}
	if got := entries(t, dir); !slices.Equal(got, before) {
		t.Errorf("dir holds %v, had %v", got, before)
	}
	if got := readFile(t, filepath.Join(dir, "a")); got != "1" {
		t.Errorf("a = %q, want 1", got)
	}
}

// TestWriteWaitsForLock: a Write waits while another holds the sandbox's
// lock and goes ahead once it is released.
func TestWriteWaitsForLock(t *testing.T) {
	dir := t.TempDir()
	release := lockSandbox(t, dir)
	done := make(chan error, 1)
	go func() {
		_, err := Write(t.Context(), dir, []materialize.File{{Path: "a", Contents: []byte("1")}}, leave)
		done <- err
	}()
	select {
	case err := <-done:
		release()
		t.Fatalf("Write returned (%v) while another writer held the lock", err)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Write still waiting 20s after the lock was released")
	}
	if got := readFile(t, filepath.Join(dir, "a")); got != "1" {
		t.Errorf("a = %q, want 1", got)
	}
}

// TestReadersSeeNoDeletion is issue 10 item 3: readers loop over the sandbox
// during 100 re-ships. One opens each file through its top-level link; the
// other resolves ..data once and reads the whole set below it. Neither may
// see a file vanish unless at least two Writes began since the read started
// (the generation it resolved is kept until the Write after next).
func TestReadersSeeNoDeletion(t *testing.T) {
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
	const reships = 100
	var (
		started, completed atomic.Int64 // Writes begun, Writes returned
		done               atomic.Bool
		wg                 sync.WaitGroup
	)
	type counts struct {
		reads, errors, excused int
		first                  error
	}
	read := func(c *counts, oneGeneration bool, resolve func() (paths []string, err error)) {
		for !done.Load() {
			c0 := completed.Load()
			paths, err := resolve()
			var gens []int
			for _, p := range paths {
				if err != nil {
					break
				}
				var b []byte
				if b, err = os.ReadFile(p); err == nil {
					var n int
					n, err = parseGen(b)
					gens = append(gens, n)
				}
			}
			if err == nil && oneGeneration && gens[0] != gens[len(gens)-1] {
				err = fmt.Errorf("mixed generations %v below one ..data", gens)
			}
			c.reads++
			switch {
			case err == nil:
			case errors.Is(err, fs.ErrNotExist) && started.Load()-c0 >= 2:
				c.excused++ // two Writes went by: the generation may go
			default:
				c.errors++
				if c.first == nil {
					c.first = err
				}
			}
		}
	}
	var byLink, bySet counts
	wg.Go(func() {
		read(&byLink, false, func() ([]string, error) {
			var ps []string
			for _, n := range names {
				ps = append(ps, filepath.Join(dir, n))
			}
			return ps, nil
		})
	})
	wg.Go(func() {
		read(&bySet, true, func() ([]string, error) {
			gen, err := os.Readlink(filepath.Join(dir, dataLink))
			var ps []string
			for _, n := range names {
				ps = append(ps, filepath.Join(dir, gen, n))
			}
			return ps, err
		})
	})
	for n := 1; n <= reships; n++ {
		started.Store(int64(n))
		if _, err := Write(t.Context(), dir, set(n), leave); err != nil {
			t.Error(err)
			break
		}
		completed.Store(int64(n))
	}
	done.Store(true)
	wg.Wait()
	for _, r := range []struct {
		name string
		c    counts
	}{{"through the top-level links", byLink}, {"below one resolved ..data", bySet}} {
		t.Logf("%s: %d reads, %d errors, %d excused (two Writes went by)", r.name, r.c.reads, r.c.errors, r.c.excused)
		if r.c.reads == 0 {
			t.Errorf("%s: no reads; the test proved nothing", r.name)
		}
		if r.c.errors > 0 {
			t.Errorf("%s: %d of %d reads failed, first: %v", r.name, r.c.errors, r.c.reads, r.c.first)
		}
	}
}
