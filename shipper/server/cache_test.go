package server_test

import (
	"context"
	"encoding/pem"
	"io"
	"testing"
	"time"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/plugin"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/server"
)

// TestContentCacheSharesBuild: two jobs of the same spec and secret versions
// cost one build (and one backend read per ref each), and keep their own
// fetch grants; a new version of one ref builds anew.
func TestContentCacheSharesBuild(t *testing.T) {
	f := newFixture(t)
	root := t.TempDir()
	seeded := filetest.Seed(t, root, "store-pass-1")
	cfg := &config.Config{DefaultBackend: "file", Backends: map[string]config.Backend{"file": {Config: map[string]string{"root": root}}}}
	backend := &counting{Backend: file.New()}
	h := host.New(cfg, host.WithBuiltin("file", func() plugin.Backend { return backend }), host.WithBuildCache(time.Hour, 10, nil))
	t.Cleanup(func() { _ = h.Close() })
	srv := server.New(h, f.fetch)

	ship := func(job string) *hostv1.ShipResponse {
		t.Helper()
		resp, err := srv.Ship(context.Background(), shipReq(job, tasks("exec", 2), hostv1.Target_TARGET_FETCH))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	a, b := ship("job-a"), ship("job-b")
	if hits, builds := h.CacheStats(); hits != 1 || builds != 1 {
		t.Fatalf("two jobs of one content: %d builds and %d cache hits, want 1 and 1", builds, hits)
	}
	if got := backend.reads.Load(); got != 2*distinctRefs {
		t.Errorf("%d backend reads for two jobs, want one per ref per job (%d)", got, 2*distinctRefs)
	}
	ua, ub := a.GetTasks()[0].GetUris()[0].GetValue(), b.GetTasks()[0].GetUris()[0].GetValue()
	if ua == ub {
		t.Error("two jobs share a fetch grant")
	}
	fa, fb := fetchBody(t, f, ua), fetchBody(t, f, ub)
	if string(fa) != string(fb) || len(fa) == 0 {
		t.Error("the shared build ships different keystores to the two jobs")
	}

	// A new version of one ref (the CA bundle, now the same CA in PEM)
	// builds anew.
	filetest.Put(t, root, "spark/ca_bundle_truststore", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: seeded.CA.Cert.Raw}))
	ship("job-c")
	if hits, builds := h.CacheStats(); hits != 1 || builds != 2 {
		t.Fatalf("after a new CA bundle version: %d builds and %d hits, want 2 and 1", builds, hits)
	}
	ship("job-d")
	if hits, builds := h.CacheStats(); hits != 2 || builds != 2 {
		t.Fatalf("a fourth job of the new content: %d builds and %d hits, want 2 and 2", builds, hits)
	}
}

// fetchBody fetches a fetch URI from the fixture's HTTPS server.
func fetchBody(t *testing.T, f *fixture, uri string) []byte {
	t.Helper()
	resp, err := f.https.Client().Get(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != 200 {
		t.Fatalf("fetch: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}
