package plugintest

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
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
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
