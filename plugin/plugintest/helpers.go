package plugintest

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Build compiles main packages (import paths) with `go build` into a fresh
// temporary directory, for a TestMain that runs plugins as subprocesses the
// way a host does. It returns the directory and a function that removes it,
// and panics when the build fails (TestMain has no *testing.T):
//
//	func TestMain(m *testing.M) {
//		dir, cleanup := plugintest.Build("example.com/mystore/cmd/keyship-backend-mystore")
//		pluginBin = filepath.Join(dir, "keyship-backend-mystore")
//		code := m.Run()
//		cleanup()
//		os.Exit(code)
//	}
func Build(pkgs ...string) (dir string, cleanup func()) {
	dir, err := os.MkdirTemp("", "plugintest-build")
	if err != nil {
		panic(err)
	}
	cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(dir)
		panic("plugintest.Build: go build " + err.Error())
	}
	return dir, func() { _ = os.RemoveAll(dir) }
}

// LogBuffer collects log output (hclog, a plugin's stderr) safely from many
// goroutines, so that a test can check that no secret reached a log line.
type LogBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // closed and replaced by each Write
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written != nil {
		close(b.written)
		b.written = nil
	}
	return b.buf.Write(p)
}

// WaitFor waits until everything written holds each of want, or until
// timeout has passed, and returns what was written and whether all of want
// is in it. It wakes on each Write, so a test waits for a log line that a
// plugin's stderr delivers late (after Close, under load) instead of
// reading the buffer too early; timeout only bounds a line that never
// comes.
func (b *LogBuffer) WaitFor(timeout time.Duration, want ...string) (string, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		text := b.buf.String()
		all := true
		for _, w := range want {
			all = all && strings.Contains(text, w)
		}
		if all {
			b.mu.Unlock()
			return text, true
		}
		if b.written == nil {
			b.written = make(chan struct{})
		}
		written := b.written
		b.mu.Unlock()
		select {
		case <-written:
		case <-deadline.C:
			return b.String(), false
		}
	}
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// CopyExecutable copies the plugin binary src to dst, mode 0755: a test
// that swaps, pins or renames a plugin works on its own copy.
func CopyExecutable(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
