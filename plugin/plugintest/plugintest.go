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
//			// Optional, to check the ErrPermissionDenied and ErrUnavailable mapping:
//			Deny:        func(t testing.TB, ref plugin.Ref) { /* make ref unreadable for the backend */ },
//			Unavailable: func(t testing.TB) (restore func()) { /* stop the store */ },
//		})
//	}
//
// A failed check names the section of the protocol page
// (proto/keyship/backend/v1/PROTOCOL.md) whose rule it broke.
//
// To run the built plugin binary the way the host runs it (plugin/launch: a
// subprocess, minimal environment, restarts), set Plugin instead of New:
//
//	var pluginBin string
//
//	func TestMain(m *testing.M) {
//		dir, cleanup := plugintest.Build("example.com/mystore/cmd/keyship-backend-mystore")
//		pluginBin = filepath.Join(dir, "keyship-backend-mystore")
//		code := m.Run()
//		cleanup()
//		os.Exit(code)
//	}
//
//	// in the test: plugintest.Config{Plugin: pluginBin, ...}
//
// A plugin in another language, with no Go toolchain at hand, is checked by
// the same kit built into keyship: `keyship plugin test PATH [--kit
// FILE]` (RunPlugin, KitFile).
//
// The kit is quiet: it logs nothing unless Config.Logger is set.
package plugintest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
)

// Config tells the kit how to reach and feed the backend under test.
type Config struct {
	// New returns a fresh, unconfigured backend; the kit serves it in-process
	// over real gRPC. Set one of New, Plugin and Connect.
	New func() plugin.Backend
	// Plugin is the path of a built plugin binary (see Build); the kit starts
	// it for each check as the keyship host does (plugin/launch, as keyship's host/loader: a
	// subprocess with a minimal environment, restarted if it dies) and stops
	// it at the end of the check.
	Plugin string
	// PluginEnv lists host environment variables the plugin may read, as the
	// env setting of a backend in the host config does (names, or a prefix
	// and "*"). Used with Plugin.
	PluginEnv []string
	// Connect returns a fresh, unconfigured backend reached some other way.
	// The caller arranges its cleanup (t.Cleanup).
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
	// Deny makes ref, which exists, unreadable for the identity the backend
	// uses (a policy, an ACL). The kit then checks that Get returns
	// ErrPermissionDenied for it, not ErrNotFound. Optional: without it
	// the check is skipped (and says so).
	Deny func(t testing.TB, ref plugin.Ref)
	// Unavailable makes the store unreachable (stopped, sealed, ...) and
	// returns a function that brings it back. The kit checks that a Get
	// meanwhile fails with ErrUnavailable (for the batch or for each ref:
	// the only error the host retries) and that reads work again once it is
	// back. Optional: without it the check is skipped (and says so).
	Unavailable func(t testing.TB) (restore func())
	// Binary reports that the store keeps arbitrary bytes. When false the
	// kit's fixtures are printable text only.
	Binary bool
	// Logger receives the plugin's log lines when Plugin is set. Default:
	// nothing is logged.
	Logger hclog.Logger

	// kitFile says that the Config comes from a KitFile (keyship plugin
	// test): the kit's messages then name gRPC codes and the kit file's
	// keys, not the Go SDK's errors and Config's fields.
	kitFile bool
}

// Run runs every conformance check as a subtest of t.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	ways := 0
	for _, set := range []bool{cfg.New != nil, cfg.Plugin != "", cfg.Connect != nil} {
		if set {
			ways++
		}
	}
	if ways != 1 || cfg.Ref == nil || cfg.Put == nil || cfg.Config == nil {
		t.Fatal("plugintest: Config needs one of New, Plugin and Connect, and Config, Ref and Put")
	}
	k := &kit{cfg: cfg, broken: map[string]string{}}
	for _, c := range []struct {
		name  string
		check func(*testing.T)
	}{
		{"Info", k.info},
		{"BadConfig", k.badConfig},
		{"Fixtures", k.fixtures},
		{"ChangedFixtureChangesVersion", k.changedVersion},
		{"NotFound", k.notFound},
		{"BatchOrderAndIsolation", k.batch},
		{"PermissionDenied", k.denied},
		{"Unavailable", k.unavailable},
		{"CancelledContext", k.cancelled},
		{"LargeSecret", k.large},
		{"Concurrent", k.concurrent},
		{"List", k.list},
		{"Versions", k.versions},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("rule broken: %s#%s", ProtocolPage, k.section(t, c.name))
				}
			}()
			c.check(t)
		})
	}
}

// sections maps each check to the anchor of the section of ProtocolPage
// whose rule it checks.
var sections = map[string]string{
	"Info":                         "info",
	"BadConfig":                    "configure",
	"Fixtures":                     "get",
	"ChangedFixtureChangesVersion": "secret-versions",
	"NotFound":                     "errors",
	"BatchOrderAndIsolation":       "get",
	"PermissionDenied":             "errors",
	"Unavailable":                  "errors",
	"CancelledContext":             "cancellation-and-deadlines",
	"LargeSecret":                  "message-size",
	"Concurrent":                   "concurrency",
	"List":                         "optional-rpcs",
	"Versions":                     "optional-rpcs",
}

type kit struct {
	cfg Config

	mu     sync.Mutex
	broken map[string]string // test name: the section a failed start named
}

// startSection finds the section of ProtocolPage that a start error names
// (launch points at #handshake, #socket, #peers).
var startSection = regexp.MustCompile(regexp.QuoteMeta(ProtocolPage) + `#([a-z0-9-]+)`)

// section returns the anchor of the rule the check name broke in t: the
// section its plugin's failed start named, else the check's own.
func (k *kit) section(t *testing.T, name string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if a, ok := k.broken[t.Name()]; ok {
		return a
	}
	return sections[name]
}

// codes names the errors the checks want, as gRPC codes and as the Go
// SDK's errors.
var codes = []struct {
	err        error
	code, name string
}{
	{plugin.ErrInvalidConfig, "INVALID_ARGUMENT", "ErrInvalidConfig"},
	{plugin.ErrNotFound, "NOT_FOUND", "ErrNotFound"},
	{plugin.ErrPermissionDenied, "PERMISSION_DENIED", "ErrPermissionDenied"},
	{plugin.ErrUnavailable, "UNAVAILABLE", "ErrUnavailable"},
	{plugin.ErrUnsupported, "UNIMPLEMENTED", "ErrUnsupported"},
	{context.Canceled, "CANCELLED", "context.Canceled"},
}

// want names the error err for the reader: the gRPC code for a kit file's
// author, who may not write Go, and the code and the SDK's error for a Go
// author.
func (k *kit) want(err error) string {
	for _, c := range codes {
		if c.err == err {
			if k.cfg.kitFile {
				return c.code
			}
			return c.code + " (" + c.name + ")"
		}
	}
	return err.Error()
}

// unset says that a setting of the kit is not given (see key).
func (k *kit) unset(field, kitKey string) string {
	if k.cfg.kitFile {
		return "the kit file has no `" + kitKey + "`"
	}
	return field + " is not set"
}

// key names a setting of the kit: the kit file's key (kitKey, "deny:") or
// Config's field (field, "Config.Deny").
func (k *kit) key(field, kitKey string) string {
	if k.cfg.kitFile {
		return "the kit file's `" + kitKey + "`"
	}
	return field
}

// backend returns a fresh unconfigured backend reached through gRPC.
func (k *kit) backend(t *testing.T) plugin.Backend {
	t.Helper()
	switch {
	case k.cfg.Plugin != "":
		s, err := launch.Start(context.Background(), "kit", k.cfg.Plugin, "", k.cfg.Logger, launch.WithEnv(k.cfg.PluginEnv...))
		if err != nil {
			if m := startSection.FindStringSubmatch(err.Error()); m != nil {
				k.mu.Lock()
				k.broken[t.Name()] = m[1]
				k.mu.Unlock()
			}
			t.Fatalf("start plugin %s: %v", k.cfg.Plugin, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	case k.cfg.Connect != nil:
		return k.cfg.Connect(t)
	}
	return serve(t, k.cfg.New())
}

// serve serves b on an in-memory gRPC connection with the plugin SDK's
// server and client, and returns the client.
func serve(t *testing.T, b plugin.Backend) plugin.Backend {
	t.Helper()
	ln := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(plugin.ServerOptions()...)
	if err := plugin.RegisterBackendServer(srv, b); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	conn, err := grpc.NewClient("passthrough:///kit",
		append(plugin.DialOptions(),
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); srv.Stop() })
	return plugin.NewGRPCClient(conn)
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
	if !nameRE.MatchString(info.Name) {
		t.Errorf("Info.Name %q: want [a-z0-9_-]+, like the name in the host config", info.Name)
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
		t.Fatalf("%s is empty: give at least one configuration the backend must refuse", k.key("Config.BadConfigs", "bad_configs:"))
	}
	for i, bad := range k.cfg.BadConfigs {
		err := k.backend(t).Configure(context.Background(), bad)
		if !errors.Is(err, plugin.ErrInvalidConfig) {
			which := fmt.Sprintf("BadConfigs[%d]", i)
			if k.cfg.kitFile {
				which = fmt.Sprintf("bad_configs: entry %d", i+1)
			}
			t.Errorf("%s: Configure error = %v, want %s", which, err, k.want(plugin.ErrInvalidConfig))
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
			if h := plainHash(r.Secret.Version, want[n]); h != "" {
				t.Errorf("Get %s: Version %q is a plain %s of the content: anyone who sees versions can test guesses of a secret; use a keyed HMAC or the store's own version", n, r.Secret.Version, h)
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
		t.Fatalf("Get of a missing ref: error %v, want %s", r.Err, k.want(plugin.ErrNotFound))
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
				t.Errorf("result %d (missing ref): error %v, want %s", i, res[i].Err, k.want(plugin.ErrNotFound))
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

func (k *kit) denied(t *testing.T) {
	if k.cfg.Deny == nil {
		t.Skipf("%s: the %s mapping is not checked", k.unset("Config.Deny", "deny:"), k.want(plugin.ErrPermissionDenied))
	}
	b := k.configured(t)
	ref := k.cfg.Ref("denied")
	k.cfg.Put(t, ref, k.fixture("denied", 10))
	k.cfg.Deny(t, ref)
	res, err := b.Get(context.Background(), []plugin.Ref{ref})
	if err == nil {
		err = res[0].Err
	}
	if !errors.Is(err, plugin.ErrPermissionDenied) {
		hint := ""
		if err == nil && os.Geteuid() == 0 {
			// The plugin runs as the kit's uid.
			hint = fmt.Sprintf("; but the kit runs as root, and so does the plugin: root reads a file whatever its mode, so a %s that removes permissions (chmod 000) denies nothing: run the kit as another user, or make %s deny through the store's own access control (a policy, an ACL the plugin obeys)",
				k.key("Config.Deny", "deny:"), k.key("Config.Deny", "deny:"))
		}
		t.Fatalf("Get of a ref the backend may not read: error %v, want %s (not found and denied must stay apart)%s", err, k.want(plugin.ErrPermissionDenied), hint)
	}
}

func (k *kit) unavailable(t *testing.T) {
	if k.cfg.Unavailable == nil {
		t.Skipf("%s: the %s mapping is not checked", k.unset("Config.Unavailable", "unavailable:` and `restore:"), k.want(plugin.ErrUnavailable))
	}
	b := k.configured(t)
	ref := k.cfg.Ref("unavailable")
	k.cfg.Put(t, ref, k.fixture("unavailable", 10))
	restore := k.cfg.Unavailable(t)
	res, err := b.Get(context.Background(), []plugin.Ref{ref})
	if err == nil {
		err = res[0].Err
	}
	restore()
	if !errors.Is(err, plugin.ErrUnavailable) {
		t.Fatalf("Get while the store is unavailable: error %v, want %s (the only error the host retries)", err, k.want(plugin.ErrUnavailable))
	}
	if r := k.get(t, b, ref)[0]; r.Err != nil {
		t.Fatalf("Get once the store is back: %v", r.Err)
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
			t.Errorf("Get with a cancelled context (%s): error %v, want %s", via, err, k.want(context.Canceled))
		}
	}
	check("through gRPC", k.configured(t))
	// gRPC refuses a cancelled call before the backend sees it, so an
	// in-process backend is also asked directly: a backend must return an
	// error matching context.Canceled itself.
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
			t.Fatalf("List on a backend without the %q capability: error %v, want %s", plugin.CapabilityList, err, k.want(plugin.ErrUnsupported))
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

// nameRE is what Info.Name must match.
var nameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// plainHash returns the name of a common unkeyed hash of data whose hex or
// base64 form (its first 8 characters are enough) appears in version, or "".
func plainHash(version string, data []byte) string {
	lower := strings.ToLower(version)
	for name, h := range map[string]func() hash.Hash{
		"MD5": md5.New, "SHA-1": sha1.New, "SHA-224": sha256.New224, "SHA-256": sha256.New,
		"SHA-384": sha512.New384, "SHA-512": sha512.New,
	} {
		d := h()
		d.Write(data)
		sum := d.Sum(nil)
		if strings.Contains(lower, hex.EncodeToString(sum)[:8]) {
			return name
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			if strings.Contains(version, enc.EncodeToString(sum)[:8]) {
				return name
			}
		}
	}
	return ""
}
