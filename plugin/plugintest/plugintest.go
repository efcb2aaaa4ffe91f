// Package plugintest is the conformance kit for keyship backends. Run it from
// a backend's own tests; it drives the backend through real gRPC, the way the
// keyship host does, and checks the contract documented in package plugin:
//
//	func TestConformance(t *testing.T) {
//		root := t.TempDir()
//		plugintest.Run(t, plugintest.Config{
//			New:    mystore.New,
//			Config: map[string]string{"root": root},
//			BadConfigs: []map[string]string{{}},
//			Ref:    func(name string) plugin.Ref { return plugin.Ref{Path: "/kit/" + name} },
//			Put:    func(t testing.TB, ref plugin.Ref, data []byte) { /* write into the store */ },
//		})
//	}
//
// It imports only package plugin and go-plugin, so third parties can use it.
package plugintest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/keyship/keyship/plugin"
)

// Config tells the kit how to reach and feed the backend under test.
type Config struct {
	// New returns a fresh, unconfigured backend; the kit serves it in-process
	// over real gRPC. Set New or Connect.
	New func() plugin.Backend
	// Connect returns a fresh, unconfigured backend reached some other way,
	// for example a plugin subprocess started by the host loader. The caller
	// arranges its cleanup (t.Cleanup). Used when New is nil.
	Connect func(t testing.TB) plugin.Backend
	// Config is a valid configuration for the backend. Required.
	Config map[string]string
	// BadConfigs are configurations that Configure must refuse with
	// ErrInvalidConfig. At least one.
	BadConfigs []map[string]string
	// Ref maps a fixture name (letters, digits, '-') to a ref in the store.
	// Required.
	Ref func(name string) plugin.Ref
	// Put writes data into the store at ref, creating or replacing it.
	// Required: the kit makes and changes its own fixtures.
	Put func(t testing.TB, ref plugin.Ref, data []byte)
	// Binary reports that the store keeps arbitrary bytes. When false the
	// kit's fixtures are printable text only.
	Binary bool
}

// Run runs every conformance check as a subtest of t.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if (cfg.New == nil && cfg.Connect == nil) || cfg.Ref == nil || cfg.Put == nil || cfg.Config == nil {
		t.Fatal("plugintest: Config needs New or Connect, and Config, Ref and Put")
	}
	k := &kit{cfg: cfg}
	t.Run("Info", k.info)
	t.Run("BadConfig", k.badConfig)
	t.Run("Fixtures", k.fixtures)
	t.Run("ChangedFixtureChangesVersion", k.changedVersion)
	t.Run("NotFound", k.notFound)
	t.Run("BatchOrderAndIsolation", k.batch)
	t.Run("CancelledContext", k.cancelled)
	t.Run("LargeSecret", k.large)
	t.Run("Concurrent", k.concurrent)
	t.Run("List", k.list)
	t.Run("Versions", k.versions)
}

type kit struct{ cfg Config }

// backend returns a fresh unconfigured backend reached through gRPC.
func (k *kit) backend(t *testing.T) plugin.Backend {
	t.Helper()
	if k.cfg.New == nil {
		return k.cfg.Connect(t)
	}
	client, server := goplugin.TestPluginGRPCConn(t, false, goplugin.PluginSet{
		plugin.PluginName: &plugin.GRPCPlugin{Impl: k.cfg.New()},
	})
	t.Cleanup(func() { server.Stop(); _ = client.Close() })
	raw, err := client.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatalf("dispense backend: %v", err)
	}
	b, ok := raw.(plugin.Backend)
	if !ok {
		t.Fatalf("dispensed %T, not a plugin.Backend", raw)
	}
	return b
}

// configured returns a backend configured with cfg.Config.
func (k *kit) configured(t *testing.T) plugin.Backend {
	t.Helper()
	b := k.backend(t)
	if err := b.Configure(context.Background(), k.cfg.Config); err != nil {
		t.Fatalf("Configure with the valid config: %v", err)
	}
	return b
}

// fixture makes distinct content for name; binary when the store allows it.
func (k *kit) fixture(name string, size int) []byte {
	out := make([]byte, size)
	seed := []byte("keyship-conformance-" + name + "-")
	for i := range out {
		c := seed[i%len(seed)] + byte(i/len(seed))
		if !k.cfg.Binary {
			c = ' ' + c%95
		}
		out[i] = c
	}
	if k.cfg.Binary && size > 2 {
		out[0], out[1] = 0x00, 0xFE // bytes a text-only path would mangle
	}
	return out
}

func (k *kit) get(t *testing.T, b plugin.Backend, refs ...plugin.Ref) []plugin.Result {
	t.Helper()
	res, err := b.Get(context.Background(), refs)
	if err != nil {
		t.Fatalf("Get(%v): batch failed: %v", refs, err)
	}
	if len(res) != len(refs) {
		t.Fatalf("Get(%d refs) returned %d results", len(refs), len(res))
	}
	return res
}

func (k *kit) info(t *testing.T) {
	b := k.backend(t)
	info, err := b.Info(context.Background())
	if err != nil {
		t.Fatalf("Info before Configure: %v", err)
	}
	if info.Name == "" {
		t.Error("Info.Name is empty")
	}
	if info.Version == "" {
		t.Error("Info.Version is empty")
	}
	if !slices.Contains(info.ProtocolVersions, plugin.ProtocolVersion) {
		t.Errorf("Info.ProtocolVersions = %v, want it to contain %d", info.ProtocolVersions, plugin.ProtocolVersion)
	}
}

func (k *kit) badConfig(t *testing.T) {
	if len(k.cfg.BadConfigs) == 0 {
		t.Fatal("Config.BadConfigs is empty: give at least one configuration the backend must refuse")
	}
	for i, bad := range k.cfg.BadConfigs {
		err := k.backend(t).Configure(context.Background(), bad)
		if !errors.Is(err, plugin.ErrInvalidConfig) {
			t.Errorf("BadConfigs[%d]: Configure error = %v, want ErrInvalidConfig", i, err)
		}
	}
}

func (k *kit) fixtures(t *testing.T) {
	b := k.configured(t)
	names := []string{"alpha", "beta", "gamma"}
	want := map[string][]byte{}
	for _, n := range names {
		want[n] = k.fixture(n, 64+len(n))
		k.cfg.Put(t, k.cfg.Ref(n), want[n])
	}
	var versions [2][]string
	for round := range versions {
		for _, n := range names {
			r := k.get(t, b, k.cfg.Ref(n))[0]
			if r.Err != nil {
				t.Fatalf("Get %s: %v", n, r.Err)
			}
			if !bytes.Equal(r.Secret.Data, want[n]) {
				t.Errorf("Get %s: %d bytes back, not byte-exact with the %d bytes put", n, len(r.Secret.Data), len(want[n]))
			}
			if r.Secret.Version == "" {
				t.Errorf("Get %s: empty Version", n)
			}
			if bytes.Contains([]byte(r.Secret.Version), want[n]) {
				t.Errorf("Get %s: Version contains the secret", n)
			}
			versions[round] = append(versions[round], r.Secret.Version)
		}
	}
	if !slices.Equal(versions[0], versions[1]) {
		t.Errorf("versions changed between two reads of unchanged fixtures: %v then %v", versions[0], versions[1])
	}
}

func (k *kit) changedVersion(t *testing.T) {
	b := k.configured(t)
	ref := k.cfg.Ref("changing")
	k.cfg.Put(t, ref, k.fixture("before", 40))
	before := k.get(t, b, ref)[0]
	k.cfg.Put(t, ref, k.fixture("after", 40))
	after := k.get(t, b, ref)[0]
	if before.Err != nil || after.Err != nil {
		t.Fatalf("Get changing fixture: %v / %v", before.Err, after.Err)
	}
	if !bytes.Equal(after.Secret.Data, k.fixture("after", 40)) {
		t.Error("Get after a change returned the old content")
	}
	if before.Secret.Version == after.Secret.Version {
		t.Errorf("Version %q did not change when the content changed", after.Secret.Version)
	}
}

func (k *kit) notFound(t *testing.T) {
	b := k.configured(t)
	ref := k.cfg.Ref("never-written")
	r := k.get(t, b, ref)[0]
	if !errors.Is(r.Err, plugin.ErrNotFound) {
		t.Fatalf("Get of a missing ref: error %v, want ErrNotFound", r.Err)
	}
}

func (k *kit) batch(t *testing.T) {
	b := k.configured(t)
	one, two, three := k.cfg.Ref("batch-one"), k.cfg.Ref("batch-two"), k.cfg.Ref("batch-three")
	k.cfg.Put(t, one, k.fixture("batch-one", 20))
	k.cfg.Put(t, two, k.fixture("batch-two", 30))
	k.cfg.Put(t, three, k.fixture("batch-three", 40))
	missing := k.cfg.Ref("batch-missing")
	// Distinct refs at the ends and around the missing one, so that any
	// reordering of the results shows; a repeated ref is allowed.
	res := k.get(t, b, three, two, missing, one, two)
	for i, want := range [][]byte{k.fixture("batch-three", 40), k.fixture("batch-two", 30), nil, k.fixture("batch-one", 20), k.fixture("batch-two", 30)} {
		if want == nil {
			if !errors.Is(res[i].Err, plugin.ErrNotFound) {
				t.Errorf("result %d (missing ref): error %v, want ErrNotFound", i, res[i].Err)
			}
			continue
		}
		if res[i].Err != nil {
			t.Errorf("result %d: %v (one missing ref must not fail the others)", i, res[i].Err)
		} else if !bytes.Equal(res[i].Secret.Data, want) {
			t.Errorf("result %d: content of another ref (batch order not kept)", i)
		}
	}
}

func (k *kit) cancelled(t *testing.T) {
	ref := k.cfg.Ref("cancel")
	k.cfg.Put(t, ref, k.fixture("cancel", 10))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(via string, b plugin.Backend) {
		res, err := b.Get(ctx, []plugin.Ref{ref})
		if err == nil {
			for _, r := range res {
				err = errors.Join(err, r.Err)
			}
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Get with a cancelled context (%s): error %v, want context.Canceled", via, err)
		}
	}
	check("through gRPC", k.configured(t))
	// gRPC refuses a cancelled call before the backend sees it, so an
	// in-process backend is also asked directly.
	if k.cfg.New != nil {
		b := k.cfg.New()
		if err := b.Configure(context.Background(), k.cfg.Config); err != nil {
			t.Fatal(err)
		}
		check("in-process", b)
	}
}

func (k *kit) large(t *testing.T) {
	b := k.configured(t)
	ref := k.cfg.Ref("large")
	want := k.fixture("large", 1<<20)
	k.cfg.Put(t, ref, want)
	r := k.get(t, b, ref)[0]
	if r.Err != nil {
		t.Fatalf("Get 1 MiB secret: %v", r.Err)
	}
	if !bytes.Equal(r.Secret.Data, want) {
		t.Fatalf("1 MiB secret: %d bytes back, not byte-exact", len(r.Secret.Data))
	}
}

func (k *kit) concurrent(t *testing.T) {
	b := k.configured(t)
	const n = 8
	refs := make([]plugin.Ref, n)
	for i := range refs {
		refs[i] = k.cfg.Ref(fmt.Sprintf("conc-%d", i))
		k.cfg.Put(t, refs[i], k.fixture(fmt.Sprintf("conc-%d", i), 50))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n*10)
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				j := (g + i) % n
				res, err := b.Get(context.Background(), []plugin.Ref{refs[j]})
				switch {
				case err != nil:
					errs <- err
				case res[0].Err != nil:
					errs <- res[0].Err
				case !bytes.Equal(res[0].Secret.Data, k.fixture(fmt.Sprintf("conc-%d", j), 50)):
					errs <- fmt.Errorf("concurrent Get of %v returned another ref's content", refs[j])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func (k *kit) list(t *testing.T) {
	b := k.configured(t)
	info, err := b.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l, ok := b.(plugin.Lister)
	if !ok {
		t.Fatal("the gRPC client does not implement plugin.Lister")
	}
	ref := k.cfg.Ref("listed")
	k.cfg.Put(t, ref, k.fixture("listed", 10))
	paths, err := l.List(context.Background(), "")
	if !slices.Contains(info.Capabilities, plugin.CapabilityList) {
		if !errors.Is(err, plugin.ErrUnsupported) {
			t.Fatalf("List on a backend without the %q capability: error %v, want ErrUnsupported", plugin.CapabilityList, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if !slices.IsSorted(paths) {
		t.Errorf("List returned unsorted paths %v", paths)
	}
	if len(paths) == 0 {
		t.Errorf("List of the root is empty after writing %v", ref)
	}
}
