package launch_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyship/keyship/plugin/plugintest"
)

var pluginBin string // the real keyship-backend-file, built by TestMain

func TestMain(m *testing.M) {
	if addr := os.Getenv(dialHelperEnv); addr != "" {
		dialHelper(addr)
		return
	}
	if bin := os.Getenv(badStderrEnv); bin != "" {
		badStderrHost(bin)
		return
	}
	dir, cleanup := plugintest.Build("github.com/keyship/keyship/cmd/keyship-backend-file")
	pluginBin = filepath.Join(dir, "keyship-backend-file")
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// copyFile copies src to dst, executable by everyone.
func copyFile(t testing.TB, src, dst string) {
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
