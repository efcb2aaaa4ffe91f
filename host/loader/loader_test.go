package loader_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/host/loader"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
	"github.com/keyship/keyship/plugin/plugintest"
)

var (
	pluginBin     string // the real keyship-backend-file, built by TestMain
	testPluginBin string // internal/testplugin, which misbehaves on request
)

func TestMain(m *testing.M) {
	if plugin := os.Getenv(hostHelperEnv); plugin != "" {
		hostHelper(plugin)
		return
	}
	dir, cleanup := plugintest.Build("github.com/keyship/keyship/cmd/keyship-backend-file", "github.com/keyship/keyship/host/loader/internal/testplugin")
	pluginBin = filepath.Join(dir, "keyship-backend-file")
	testPluginBin = filepath.Join(dir, "testplugin")
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func put(t testing.TB, root, path string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func start(t testing.TB, logger hclog.Logger) *launch.Subprocess {
	t.Helper()
	s, err := launch.Start(context.Background(), "file", pluginBin, "", logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformanceThroughSubprocess(t *testing.T) {
	root := t.TempDir()
	plugintest.Run(t, plugintest.Config{
		Plugin:     pluginBin, // the kit's subprocess launcher: the loader, as the host runs it
		Config:     map[string]string{"root": root},
		BadConfigs: []map[string]string{{}, {"root": filepath.Join(root, "nope")}},
		Ref:        func(name string) plugin.Ref { return plugin.Ref{Path: "/kit/" + name} },
		Put:        func(t testing.TB, ref plugin.Ref, data []byte) { put(t, root, ref.Path, data) },
		Binary:     true,
	})
}

func TestChecksumMismatchRefused(t *testing.T) {
	pin := strings.Repeat("ab", 32)
	_, err := launch.Start(context.Background(), "file", pluginBin, pin, nil)
	if err == nil {
		t.Fatal("a plugin whose sha256 does not match its pin was loaded")
	}
	actual := start(t, nil).SHA256()
	for _, want := range []string{pluginBin, pin, actual, "sha256 mismatch", "refusing to load"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if !errors.Is(err, plugin.ErrInvalidConfig) {
		t.Errorf("error %v is not ErrInvalidConfig", err)
	}
	// The right pin loads.
	s, err := launch.Start(context.Background(), "file", pluginBin, actual, nil)
	if err != nil {
		t.Fatalf("the correct pin was refused: %v", err)
	}
	_ = s.Close()
}

func TestKilledPluginRestartsAndRetries(t *testing.T) {
	root := t.TempDir()
	put(t, root, "/spark/keystore", []byte("ks-bytes"))
	s := start(t, nil)
	if err := s.Configure(context.Background(), map[string]string{"root": root}); err != nil {
		t.Fatal(err)
	}
	get := func() plugin.Result {
		t.Helper()
		res, err := s.Get(context.Background(), []plugin.Ref{{Path: "/spark/keystore"}})
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		return res[0]
	}
	if r := get(); r.Err != nil || string(r.Secret.Data) != "ks-bytes" {
		t.Fatalf("first Get: %v", r.Err)
	}
	pid := s.Pid()
	if pid == 0 {
		t.Fatal("no plugin pid")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Wait until the process is really gone, so the next Get meets a dead plugin.
	for deadline := time.Now().Add(time.Minute); syscall.Kill(pid, 0) == nil && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if r := get(); r.Err != nil || string(r.Secret.Data) != "ks-bytes" {
		t.Fatalf("Get after SIGKILL: %v (the restarted plugin must be reconfigured)", r.Err)
	}
	if s.Starts() != 2 {
		t.Errorf("plugin started %d times, want 2", s.Starts())
	}
	if s.Pid() == pid {
		t.Error("same pid after restart")
	}
}

func TestPluginStderrFoldedIntoHostLog(t *testing.T) {
	t.Setenv("KEYSHIP_PLUGIN_LOG_LEVEL", "debug")
	var buf plugintest.LogBuffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Debug})
	s := start(t, logger)
	if _, err := s.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	// A line the plugin itself wrote on its stderr (its hclog module is
	// "backend"), re-logged by the host under the backend's name.
	found := false
	for line := range strings.SplitSeq(buf.String(), "\n") {
		if strings.Contains(line, " file.keyship-backend-file: ") && strings.Contains(line, "@module=backend") {
			found = true
		}
	}
	if !found {
		t.Fatalf("host log has no plugin stderr line under the backend's name:\n%s", buf.String())
	}
}

func TestLoaderBuiltinAndSubprocess(t *testing.T) {
	root := t.TempDir()
	put(t, root, "/a", []byte("A"))
	cfg := &config.Config{
		DefaultBackend: "file",
		Backends: map[string]config.Backend{
			"file": {Config: map[string]string{"root": root}},
			"sub":  {Plugin: pluginBin, Config: map[string]string{"root": root}},
		},
	}
	l := loader.New(cfg, loader.WithBuiltin("file", file.New))
	defer func() { _ = l.Close() }()
	for _, name := range []string{"", "file", "sub"} {
		b, err := l.Backend(context.Background(), name)
		if err != nil {
			t.Fatalf("backend %q: %v", name, err)
		}
		res, err := b.Get(context.Background(), []plugin.Ref{{Path: "/a"}})
		if err != nil || res[0].Err != nil || string(res[0].Secret.Data) != "A" {
			t.Fatalf("backend %q Get: %v %v", name, err, res)
		}
	}
	if _, err := l.Backend(context.Background(), "vault"); err == nil || !strings.Contains(err.Error(), `"vault" is not in the config`) {
		t.Errorf("unknown backend: %v", err)
	}
	ds := l.Describe(context.Background())
	if len(ds) != 2 || ds[0].Path != "built-in" || ds[1].Path != pluginBin || len(ds[1].SHA256) != 64 || ds[1].Version != file.Version {
		t.Errorf("Describe = %+v", ds)
	}
}
