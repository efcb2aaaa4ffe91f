package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
	backendv1 "github.com/keyship/keyship/proto/keyship/backend/v1"
)

// failing is a backend whose every operation fails with a wrapped sentinel.
type failing struct{ err error }

func (f failing) Info(context.Context) (plugin.Info, error)          { return plugin.Info{}, f.err }
func (f failing) Configure(context.Context, map[string]string) error { return f.err }
func (f failing) Get(_ context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	out := make([]plugin.Result, len(refs))
	for i, r := range refs {
		out[i].Err = fmt.Errorf("ref %s: %w", r, f.err)
	}
	return out, nil
}

func dial(t *testing.T, b plugin.Backend) plugin.Backend {
	t.Helper()
	client, server := goplugin.TestPluginGRPCConn(t, false, goplugin.PluginSet{plugin.PluginName: &launch.GRPCPlugin{Impl: b}})
	t.Cleanup(func() { server.Stop(); _ = client.Close() })
	raw, err := client.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(plugin.Backend)
}

func TestErrorsCrossTheWire(t *testing.T) {
	for _, sentinel := range []error{plugin.ErrNotFound, plugin.ErrPermissionDenied, plugin.ErrInvalidConfig, plugin.ErrUnavailable} {
		b := dial(t, failing{err: fmt.Errorf("store said no: %w", sentinel)})
		if _, err := b.Info(context.Background()); !errors.Is(err, sentinel) {
			t.Errorf("Info: %v is not %v", err, sentinel)
		}
		if err := b.Configure(context.Background(), nil); !errors.Is(err, sentinel) {
			t.Errorf("Configure: %v is not %v", err, sentinel)
		}
		res, err := b.Get(context.Background(), []plugin.Ref{{Path: "/a"}})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res[0].Err, sentinel) || res[0].Err.Error() != "ref /a: store said no: "+sentinel.Error() {
			t.Errorf("Get: per-ref error %q lost its sentinel or message", res[0].Err)
		}
	}
}

func TestListUnsupportedReadsAsNotSupported(t *testing.T) {
	b := dial(t, failing{err: plugin.ErrNotFound})
	_, err := b.(plugin.Lister).List(context.Background(), "/")
	if !errors.Is(err, plugin.ErrUnsupported) {
		t.Fatalf("List on a backend without Lister: %v, want ErrUnsupported", err)
	}
}

// short returns fewer results than refs: the SDK must refuse it.
type short struct{ failing }

func (short) Get(context.Context, []plugin.Ref) ([]plugin.Result, error) { return nil, nil }

func TestShortBatchIsAnError(t *testing.T) {
	b := dial(t, short{})
	if _, err := b.Get(context.Background(), []plugin.Ref{{Path: "/a"}}); err == nil {
		t.Fatal("a backend returning 0 results for 1 ref was accepted")
	}
}

func TestIssueUnsupportedReadsAsNotSupported(t *testing.T) {
	b := dial(t, failing{err: plugin.ErrNotFound})
	_, err := b.(plugin.Issuer).Issue(context.Background(), plugin.IssueRequest{Path: "pki/issue/x", DNSNames: []string{"a"}})
	if !errors.Is(err, plugin.ErrUnsupported) {
		t.Fatalf("Issue on a backend without Issuer: %v, want ErrUnsupported", err)
	}
}

// TestPerRefErrorIsAGoogleRPCStatus reads a Get response with the generated
// client, as a host written in another language would: each failed ref's
// error is a google.rpc.Status with the code of the sentinel it wraps.
func TestPerRefErrorIsAGoogleRPCStatus(t *testing.T) {
	client, server := goplugin.TestPluginGRPCConn(t, false, goplugin.PluginSet{
		plugin.PluginName: &launch.GRPCPlugin{Impl: failing{err: plugin.ErrPermissionDenied}},
	})
	t.Cleanup(func() { server.Stop(); _ = client.Close() })
	c := backendv1.NewBackendServiceClient(client.Conn)
	resp, err := c.Get(context.Background(), &backendv1.GetRequest{Refs: []*backendv1.Ref{{Path: "/a"}, {Path: "/b"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.GetResults() {
		st := status.FromProto(r.GetError())
		if st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "permission denied") {
			t.Errorf("result %d: status %v %q, want PermissionDenied", i, st.Code(), st.Message())
		}
	}
	// A whole-call failure is the rpc's own status, with the same code table.
	_, err = c.Configure(context.Background(), &backendv1.ConfigureRequest{})
	if status.Code(err) != codes.PermissionDenied || plugin.Code(err) != codes.PermissionDenied {
		t.Errorf("Configure: %v, want PermissionDenied", err)
	}
}
