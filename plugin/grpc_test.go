package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/keyship/keyship/plugin"
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
	client, server := goplugin.TestPluginGRPCConn(t, false, goplugin.PluginSet{plugin.PluginName: &plugin.GRPCPlugin{Impl: b}})
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
