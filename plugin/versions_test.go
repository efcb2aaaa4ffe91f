package plugin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/keyship/keyship/plugin"
	backendv1 "github.com/keyship/keyship/proto/keyship/backend/v1"
)

// store is a backend over a map whose versions count the writes, that
// records which refs each Get and Versions call asked for. With metadata
// true it implements Versioner for refs under "/v2/" only (the others get
// ErrUnsupported, as Vault KV v1 refs do).
type store struct {
	mu       sync.Mutex
	data     map[string][]byte
	versions map[string]int
	gets     [][]string
	asked    [][]string
}

func newStore() *store { return &store{data: map[string][]byte{}, versions: map[string]int{}} }

func (s *store) put(path string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[path] = data
	s.versions[path]++
}

func (s *store) Info(context.Context) (plugin.Info, error) {
	return plugin.Info{Name: "store", Version: "1", ProtocolVersions: []uint32{plugin.ProtocolVersion}}, nil
}
func (s *store) Configure(context.Context, map[string]string) error { return nil }
func (s *store) Get(_ context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var asked []string
	out := make([]plugin.Result, len(refs))
	for i, r := range refs {
		asked = append(asked, r.Path)
		d, ok := s.data[r.Path]
		if !ok {
			out[i].Err = fmt.Errorf("ref %s: %w", r.Path, plugin.ErrNotFound)
			continue
		}
		out[i].Secret = plugin.Secret{Data: bytes.Clone(d), Version: fmt.Sprintf("%s@%d", r.Path, s.versions[r.Path])}
	}
	s.gets = append(s.gets, asked)
	return out, nil
}

// versioned adds Versions to store.
type versioned struct{ *store }

func (v versioned) Versions(_ context.Context, refs []plugin.Ref) ([]plugin.VersionResult, error) {
	s := v.store
	s.mu.Lock()
	defer s.mu.Unlock()
	var asked []string
	out := make([]plugin.VersionResult, len(refs))
	for i, r := range refs {
		asked = append(asked, r.Path)
		switch _, ok := s.data[r.Path]; {
		case len(r.Path) < 4 || r.Path[:4] != "/v2/":
			out[i].Err = fmt.Errorf("ref %s keeps no versions: %w", r.Path, plugin.ErrUnsupported)
		case !ok:
			out[i].Err = fmt.Errorf("ref %s: %w", r.Path, plugin.ErrNotFound)
		default:
			out[i].Version = fmt.Sprintf("%s@%d", r.Path, s.versions[r.Path])
		}
	}
	s.asked = append(s.asked, asked)
	return out, nil
}

func versionsOver(t *testing.T, b plugin.Backend, refs ...plugin.Ref) []plugin.VersionResult {
	t.Helper()
	res, err := plugin.VersionsOf(context.Background(), dial(t, b), refs)
	if err != nil {
		t.Fatalf("VersionsOf: %v", err)
	}
	if len(res) != len(refs) {
		t.Fatalf("VersionsOf: %d results for %d refs", len(res), len(refs))
	}
	return res
}

// TestVersionsWithoutVersionerReadsInThePlugin: the SDK answers Versions
// for a backend without Versioner with a Get inside the plugin, and the
// versions are Get's.
func TestVersionsWithoutVersionerReadsInThePlugin(t *testing.T) {
	s := newStore()
	s.put("/a", []byte("secret-a"))
	s.put("/a", []byte("secret-a2"))
	res := versionsOver(t, s, plugin.Ref{Path: "/a"}, plugin.Ref{Path: "/missing"})
	if res[0].Err != nil || res[0].Version != "/a@2" {
		t.Errorf("version of /a: %+v, want /a@2", res[0])
	}
	if !errors.Is(res[1].Err, plugin.ErrNotFound) {
		t.Errorf("version of a missing ref: %v, want ErrNotFound", res[1].Err)
	}
	if len(s.gets) != 1 || len(s.gets[0]) != 2 {
		t.Errorf("the plugin's Get calls: %v, want one Get of both refs", s.gets)
	}
}

// TestVersionsFallsBackPerRef: refs the backend cannot tell (ErrUnsupported)
// are read with one Get; the others are not read at all.
func TestVersionsFallsBackPerRef(t *testing.T) {
	s := newStore()
	s.put("/v2/a", []byte("a"))
	s.put("/v1/b", []byte("b"))
	res := versionsOver(t, versioned{s}, plugin.Ref{Path: "/v2/a"}, plugin.Ref{Path: "/v1/b"}, plugin.Ref{Path: "/v2/missing"})
	if res[0].Version != "/v2/a@1" || res[1].Version != "/v1/b@1" || !errors.Is(res[2].Err, plugin.ErrNotFound) {
		t.Errorf("versions: %+v", res)
	}
	if len(s.asked) != 1 || len(s.gets) != 1 || len(s.gets[0]) != 1 || s.gets[0][0] != "/v1/b" {
		t.Errorf("Versions calls %v, Get calls %v: want one Versions of all three and one Get of /v1/b only", s.asked, s.gets)
	}
	// A new version shows without a read.
	s.put("/v2/a", []byte("a2"))
	if res := versionsOver(t, versioned{s}, plugin.Ref{Path: "/v2/a"}); res[0].Version != "/v2/a@2" {
		t.Errorf("version after a write: %+v", res[0])
	}
	if len(s.gets) != 1 {
		t.Errorf("a ref the backend can tell was read: Get calls %v", s.gets)
	}
}

// oldPlugin is a backend server built before the Versions rpc: only Get.
type oldPlugin struct {
	backendv1.UnimplementedBackendServiceServer
	gets int
}

func (o *oldPlugin) Get(_ context.Context, req *backendv1.GetRequest) (*backendv1.GetResponse, error) {
	o.gets++
	out := &backendv1.GetResponse{}
	for range req.GetRefs() {
		out.Results = append(out.Results, &backendv1.Result{Outcome: &backendv1.Result_Secret{Secret: &backendv1.Secret{Data: []byte("d"), Version: "v7"}}})
	}
	return out, nil
}

// TestVersionsOfAnOldPluginUsesGet: a plugin without the rpc answers
// UNIMPLEMENTED, which the host reads as "use Get", not as a failure.
func TestVersionsOfAnOldPluginUsesGet(t *testing.T) {
	l := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	old := &oldPlugin{}
	backendv1.RegisterBackendServiceServer(srv, old)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient("passthrough:///old", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	b := plugin.NewGRPCClient(cc)
	if _, err := b.(plugin.Versioner).Versions(context.Background(), []plugin.Ref{{Path: "/a"}}); !errors.Is(err, plugin.ErrUnsupported) {
		t.Fatalf("Versions on an old plugin: %v, want ErrUnsupported", err)
	}
	res, err := plugin.VersionsOf(context.Background(), b, []plugin.Ref{{Path: "/a"}, {Path: "/b"}})
	if err != nil || len(res) != 2 || res[0].Version != "v7" || res[1].Version != "v7" {
		t.Fatalf("VersionsOf an old plugin: %+v, %v", res, err)
	}
	if old.gets != 1 {
		t.Errorf("old plugin saw %d Gets, want 1", old.gets)
	}
}

// TestVersionsShortBatchIsAnError: a Versioner that returns fewer results
// than refs is refused, as a short Get is.
func TestVersionsShortBatchIsAnError(t *testing.T) {
	if _, err := plugin.VersionsOf(context.Background(), shortVersions{newStore()}, []plugin.Ref{{Path: "/a"}}); err == nil {
		t.Fatal("a Versioner returning 0 results for 1 ref was accepted")
	}
}

type shortVersions struct{ *store }

func (shortVersions) Versions(context.Context, []plugin.Ref) ([]plugin.VersionResult, error) {
	return nil, nil
}
