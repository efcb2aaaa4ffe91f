package plugintest_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/plugintest"
)

// memory is an in-memory backend; its flaw, when set, breaks one rule of the
// contract so that the kit can be shown to catch it.
type memory struct {
	*state
	flaw string
}

// state is the store behind memory: its secrets, the refs its identity may
// not read, and whether it is down.
type state struct {
	store  sync.Map
	denied sync.Map
	down   atomic.Bool
}

// versionKey keys the memory backend's versions (an HMAC, as the contract asks).
var versionKey = []byte("memory-backend-version-key")

func (m *memory) Info(context.Context) (plugin.Info, error) {
	info := plugin.Info{Name: "memory", Version: "1", ProtocolVersions: []uint32{plugin.ProtocolVersion}}
	switch m.flaw {
	case "no-version":
		info.Version = ""
	case "bad-name":
		info.Name = "Memory Store"
	}
	return info, nil
}

func (m *memory) Configure(_ context.Context, cfg map[string]string) error {
	if cfg["ok"] != "yes" && m.flaw != "accepts-bad-config" {
		return fmt.Errorf("memory: setting ok must be yes: %w", plugin.ErrInvalidConfig)
	}
	return nil
}

func (m *memory) Get(ctx context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	if err := ctx.Err(); err != nil && m.flaw != "ignores-cancel" {
		return nil, err
	}
	if m.down.Load() {
		if m.flaw == "unavailable-as-unknown" {
			return nil, errors.New("memory: connection refused")
		}
		return nil, fmt.Errorf("memory: store down: %w", plugin.ErrUnavailable)
	}
	out := make([]plugin.Result, len(refs))
	for i, r := range refs {
		if _, denied := m.denied.Load(r.Path); denied {
			out[i].Err = fmt.Errorf("memory: %s: %w", r.Path, plugin.ErrPermissionDenied)
			if m.flaw == "denied-as-not-found" {
				out[i].Err = fmt.Errorf("memory: %s: %w", r.Path, plugin.ErrNotFound)
			}
			continue
		}
		v, ok := m.store.Load(r.Path)
		if !ok {
			out[i].Err = fmt.Errorf("memory: %s: %w", r.Path, plugin.ErrNotFound)
			if m.flaw == "fails-batch" {
				return nil, out[i].Err
			}
			continue
		}
		data := v.([]byte)
		mac := hmac.New(sha256.New, versionKey)
		mac.Write(data)
		out[i].Secret = plugin.Secret{Data: bytes.Clone(data), Version: hex.EncodeToString(mac.Sum(nil)[:8])}
		switch m.flaw {
		case "constant-version":
			out[i].Secret.Version = "1"
		case "hash-version":
			sum := sha256.Sum256(data)
			out[i].Secret.Version = "v-" + hex.EncodeToString(sum[:])
		case "text-only":
			out[i].Secret.Data = bytes.ToValidUTF8(out[i].Secret.Data, []byte("?"))
		}
	}
	if m.flaw == "reversed" && len(out) > 1 {
		out[0], out[len(out)-1] = out[len(out)-1], out[0]
	}
	return out, nil
}

func kitConfig(flaw string) plugintest.Config {
	st := &state{}
	return plugintest.Config{
		New:        func() plugin.Backend { return &memory{state: st, flaw: flaw} },
		Config:     map[string]string{"ok": "yes"},
		BadConfigs: []map[string]string{{}},
		Ref:        func(name string) plugin.Ref { return plugin.Ref{Path: "/" + name} },
		Put:        func(_ testing.TB, ref plugin.Ref, data []byte) { st.store.Store(ref.Path, bytes.Clone(data)) },
		Deny:       func(_ testing.TB, ref plugin.Ref) { st.denied.Store(ref.Path, true) },
		Unavailable: func(testing.TB) func() {
			st.down.Store(true)
			return func() { st.down.Store(false) }
		},
		Binary: true,
	}
}

func TestKitPassesACorrectBackend(t *testing.T) {
	plugintest.Run(t, kitConfig(""))
}

// TestBrokenBackend is run by TestKitCatchesEveryFlaw in a child process;
// on its own it does nothing.
func TestBrokenBackend(t *testing.T) {
	flaw := os.Getenv("PLUGINTEST_FLAW")
	if flaw == "" {
		t.Skip("run by TestKitCatchesEveryFlaw")
	}
	plugintest.Run(t, kitConfig(flaw))
}

func TestKitCatchesEveryFlaw(t *testing.T) {
	flaws := map[string]string{
		"no-version":             "Info.Version is empty",
		"accepts-bad-config":     "want INVALID_ARGUMENT (ErrInvalidConfig)",
		"ignores-cancel":         "want CANCELLED (context.Canceled)",
		"fails-batch":            "batch failed",
		"constant-version":       "did not change when the content changed",
		"text-only":              "not byte-exact",
		"reversed":               "batch order not kept",
		"bad-name":               "want [a-z0-9_-]+",
		"hash-version":           "is a plain SHA-256 of the content",
		"denied-as-not-found":    "want PERMISSION_DENIED (ErrPermissionDenied)",
		"unavailable-as-unknown": "want UNAVAILABLE (ErrUnavailable)",
	}
	for flaw, want := range flaws {
		t.Run(flaw, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenBackend$", "-test.count=1")
			cmd.Env = append(os.Environ(), "PLUGINTEST_FLAW="+flaw)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the kit passed a backend whose flaw is %q", flaw)
			}
			if !strings.Contains(string(out), want) {
				t.Fatalf("the kit failed %q without saying %q:\n%s", flaw, want, out)
			}
		})
	}
}

// TestBrokenPlugin is run by TestKitNamesTheSectionAStartBreaks in a child
// process; on its own it does nothing.
func TestBrokenPlugin(t *testing.T) {
	path := os.Getenv("PLUGINTEST_PLUGIN")
	if path == "" {
		t.Skip("run by TestKitNamesTheSectionAStartBreaks")
	}
	cfg := kitConfig("")
	cfg.New, cfg.Plugin = nil, path
	plugintest.Run(t, cfg)
}

// TestKitNamesTheSectionAStartBreaks: when the plugin does not even start,
// "rule broken:" points at the section the start error names (the
// handshake, the socket, the peers), not at the section of the check that
// was about to run.
func TestKitNamesTheSectionAStartBreaks(t *testing.T) {
	for _, c := range []struct{ name, body, section string }{
		{"handshake", `echo "hello, host"; sleep 60`, "#handshake"},
		{"socket", `echo "1|1|unix|$PLUGIN_UNIX_SOCKET_DIR/plugin.sock|grpc"; sleep 60`, "#socket"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keyship-backend-script")
			if err := os.WriteFile(path, []byte("#!/bin/sh\n"+c.body+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenPlugin$/^Info$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "PLUGINTEST_PLUGIN="+path)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the kit passed a plugin that does not start:\n%s", out)
			}
			if want := "rule broken: " + plugintest.ProtocolPage + c.section + "\n"; !strings.Contains(string(out), want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
			if strings.Contains(string(out), "#info") {
				t.Errorf("a failed start is blamed on the Info check's section:\n%s", out)
			}
		})
	}
}

// TestKitIsQuiet: a passing run of the kit prints nothing but the test
// framework's own lines (go-plugin's in-process test connection used to log
// dozens of DEBUG lines).
func TestKitIsQuiet(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestKitPassesACorrectBackend$", "-test.count=1", "-test.v")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the kit failed a correct backend: %v\n%s", err, out)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- ") || l == "PASS" || strings.HasPrefix(l, "ok ") ||
			strings.Contains(l, "is not set: the") { // a skipped optional check says why
			continue
		}
		t.Errorf("the kit printed %q", line)
	}
}
