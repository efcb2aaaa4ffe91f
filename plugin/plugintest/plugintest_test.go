package plugintest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/plugintest"
)

// memory is an in-memory backend; its flaw, when set, breaks one rule of the
// contract so that the kit can be shown to catch it.
type memory struct {
	store *sync.Map
	flaw  string
}

func (m *memory) Info(context.Context) (plugin.Info, error) {
	info := plugin.Info{Name: "memory", Version: "1", ProtocolVersions: []uint32{plugin.ProtocolVersion}}
	if m.flaw == "no-version" {
		info.Version = ""
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
	out := make([]plugin.Result, len(refs))
	for i, r := range refs {
		v, ok := m.store.Load(r.Path)
		if !ok {
			out[i].Err = fmt.Errorf("memory: %s: %w", r.Path, plugin.ErrNotFound)
			if m.flaw == "fails-batch" {
				return nil, out[i].Err
			}
			continue
		}
		data := v.([]byte)
		sum := sha256.Sum256(data)
		out[i].Secret = plugin.Secret{Data: bytes.Clone(data), Version: hex.EncodeToString(sum[:8])}
		switch m.flaw {
		case "constant-version":
			out[i].Secret.Version = "1"
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
	store := &sync.Map{}
	return plugintest.Config{
		New:        func() plugin.Backend { return &memory{store: store, flaw: flaw} },
		Config:     map[string]string{"ok": "yes"},
		BadConfigs: []map[string]string{{}},
		Ref:        func(name string) plugin.Ref { return plugin.Ref{Path: "/" + name} },
		Put:        func(_ testing.TB, ref plugin.Ref, data []byte) { store.Store(ref.Path, bytes.Clone(data)) },
		Binary:     true,
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
		"no-version":         "Info.Version is empty",
		"accepts-bad-config": "want ErrInvalidConfig",
		"ignores-cancel":     "want context.Canceled",
		"fails-batch":        "batch failed",
		"constant-version":   "did not change when the content changed",
		"text-only":          "not byte-exact",
		"reversed":           "batch order not kept",
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
