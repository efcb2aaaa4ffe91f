package health_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/grpchealth"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/shipper/server/health"
)

// proc is a backend that counts its process starts, as a plugin
// subprocess does, and can be made to fail its Info.
type proc struct {
	starts atomic.Int32
	fail   atomic.Bool
}

func (p *proc) Info(context.Context) (plugin.Info, error) {
	if p.fail.Load() {
		return plugin.Info{}, errors.New("plugin exited: " + plugin.ErrPluginExited.Error())
	}
	return plugin.Info{Name: "proc", Version: "1.0"}, nil
}
func (p *proc) Configure(context.Context, map[string]string) error { return nil }
func (p *proc) Get(context.Context, []plugin.Ref) ([]plugin.Result, error) {
	return nil, nil
}
func (p *proc) Starts() int { return int(p.starts.Load()) }

type backends map[string]plugin.Backend

func (b backends) Backend(_ context.Context, name string) (plugin.Backend, error) {
	if be, ok := b[name]; ok {
		return be, nil
	}
	return nil, errors.New("backend " + name + " is not in the config")
}

func readyz(t *testing.T, p *health.Prober) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	p.Readiness().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

// TestReadiness walks a Prober through a backend's life: not probed, ready,
// restarted (unready for one probe, then ready), failing, and shutting
// down; gRPC health follows it.
func TestReadiness(t *testing.T) {
	p1 := &proc{}
	p1.starts.Store(1)
	p := health.New(backends{"a": p1, "b": &proc{}}, []string{"b", "a"})
	ctx := context.Background()
	serving := func() grpchealth.Status {
		resp, err := p.Check(ctx, &grpchealth.CheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}
	if code, body := readyz(t, p); code != 503 || !strings.Contains(body, "not probed yet") {
		t.Errorf("before the first probe: %d %q", code, body)
	}
	p.Probe(ctx)
	if code, body := readyz(t, p); code != 200 || body != "backend a: ok (proc 1.0)\nbackend b: ok (proc 1.0)\n" {
		t.Errorf("after a probe: %d %q", code, body)
	}
	if serving() != grpchealth.StatusServing {
		t.Error("gRPC health not SERVING when ready")
	}
	p1.starts.Store(2) // the plugin died and was started again
	p.Probe(ctx)
	if code, body := readyz(t, p); code != 503 || !strings.Contains(body, "backend a: not ready (the plugin process exited and was started again (1 restarts))") {
		t.Errorf("after a restart: %d %q", code, body)
	}
	if serving() != grpchealth.StatusNotServing || p.Restarts() != 1 {
		t.Errorf("after a restart: gRPC %v, %d restarts", serving(), p.Restarts())
	}
	p.Probe(ctx)
	if code, _ := readyz(t, p); code != 200 {
		t.Errorf("the probe after the restart: %d, want ready", code)
	}
	p1.fail.Store(true)
	p.Probe(ctx)
	if code, body := readyz(t, p); code != 503 || !strings.Contains(body, "backend a: not ready (plugin exited") {
		t.Errorf("a failing backend: %d %q", code, body)
	}
	p1.fail.Store(false)
	p.Probe(ctx)
	p.ShuttingDown()
	if code, body := readyz(t, p); code != 503 || !strings.HasPrefix(body, "shutting down\n") {
		t.Errorf("shutting down: %d %q", code, body)
	}
	if _, err := p.Check(ctx, &grpchealth.CheckRequest{Service: "other"}); err == nil {
		t.Error("gRPC health of an unknown service answered")
	}
}

// TestReadinessChecks: a check added with AddCheck (keyship serve --ha's
// shared state) makes the Prober not ready while its last call failed,
// and ready again once it passes; /readyz names it.
func TestReadinessChecks(t *testing.T) {
	p := health.New(backends{"a": &proc{}}, []string{"a"})
	var down atomic.Bool
	p.AddCheck("the shared state", func(context.Context) error {
		if down.Load() {
			return errors.New("shared state unavailable")
		}
		return nil
	})
	ctx := context.Background()
	p.Probe(ctx)
	if code, body := readyz(t, p); code != 200 || body != "backend a: ok (proc 1.0)\nthe shared state: ok\n" {
		t.Errorf("with the check passing: %d %q", code, body)
	}
	down.Store(true)
	p.Probe(ctx)
	if code, body := readyz(t, p); code != 503 || !strings.Contains(body, "the shared state: not ready (shared state unavailable)") {
		t.Errorf("with the check failing: %d %q", code, body)
	}
	if ready, _ := p.Ready(); ready {
		t.Error("Ready with the check failing")
	}
	down.Store(false)
	p.Probe(ctx)
	if code, _ := readyz(t, p); code != 200 {
		t.Errorf("the check passing again: %d, want ready", code)
	}
}
