package launch_test

import (
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
