package plugintest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/keyship/keyship/plugin"
)

// versions checks the Versions rpc, which every backend answers through the
// SDK (a Get inside the plugin when the backend has no Versioner): each
// version is the one Get returns, a missing ref is ErrNotFound, a change
// shows, the batch keeps its order. A backend that declares
// CapabilityVersions must implement plugin.Versioner, and its own answers
// must be Get's versions or ErrUnsupported, never another version.
func (k *kit) versions(t *testing.T) {
	b := k.configured(t)
	v, ok := b.(plugin.Versioner)
	if !ok {
		t.Fatal("the gRPC client does not implement plugin.Versioner")
	}
	one, two := k.cfg.Ref("versions-one"), k.cfg.Ref("versions-two")
	missing := k.cfg.Ref("versions-missing")
	k.cfg.Put(t, one, k.fixture("versions-one", 30))
	k.cfg.Put(t, two, k.fixture("versions-two", 31))
	refs := []plugin.Ref{two, missing, one, two}
	check := func(when string, got []plugin.VersionResult) {
		t.Helper()
		want := k.get(t, b, refs...)
		for i := range refs {
			switch {
			case i == 1:
				if !errors.Is(got[i].Err, plugin.ErrNotFound) {
					t.Errorf("%s: Versions of a missing ref: error %v, want %s", when, got[i].Err, k.want(plugin.ErrNotFound))
				}
			case got[i].Err != nil:
				t.Errorf("%s: Versions of %v: %v", when, refs[i], got[i].Err)
			case got[i].Version != want[i].Secret.Version:
				t.Errorf("%s: Versions of %v = %q, Get's version is %q (batch order not kept, or not Get's version)", when, refs[i], got[i].Version, want[i].Secret.Version)
			}
		}
	}
	res, err := v.Versions(context.Background(), refs)
	if err != nil || len(res) != len(refs) {
		t.Fatalf("Versions(%d refs): %d results, %v", len(refs), len(res), err)
	}
	check("before a change", res)
	before := res[2].Version
	k.cfg.Put(t, one, k.fixture("changed-one", 30))
	if res, err = v.Versions(context.Background(), refs); err != nil || len(res) != len(refs) {
		t.Fatalf("Versions after a change: %d results, %v", len(res), err)
	}
	check("after a change", res)
	if res[2].Version == before {
		t.Errorf("Versions of %v: %q did not change when the content changed", one, before)
	}

	info, err := b.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(info.Capabilities, plugin.CapabilityVersions) || k.cfg.New == nil {
		return
	}
	direct := k.cfg.New()
	dv, ok := direct.(plugin.Versioner)
	if !ok {
		t.Fatalf("the backend declares %q but does not implement plugin.Versioner", plugin.CapabilityVersions)
	}
	if err := direct.Configure(context.Background(), k.cfg.Config); err != nil {
		t.Fatal(err)
	}
	res, err = dv.Versions(context.Background(), refs)
	if err != nil || len(res) != len(refs) {
		t.Fatalf("in-process Versions(%d refs): %d results, %v", len(refs), len(res), err)
	}
	// A ref the backend cannot tell is read with Get by the SDK and the
	// host: stand Get's answer in for it.
	for i := range res {
		if errors.Is(res[i].Err, plugin.ErrUnsupported) {
			r := k.get(t, b, refs[i])[0]
			res[i] = plugin.VersionResult{Version: r.Secret.Version, Err: r.Err}
		}
	}
	check("in-process", res)
}
