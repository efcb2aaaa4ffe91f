package daemon_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/plugin"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/server/daemon"
)

// gated is the file backend whose reads wait until open is closed; entered
// gets a value when a read starts waiting.
type gated struct {
	plugin.Backend
	entered chan struct{}
	open    chan struct{}
}

func (g *gated) Get(ctx context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.open
	return g.Backend.Get(ctx, refs)
}

// timeline records the daemon's stages and the test's own steps in the
// order they happen, and lets the test wait for one.
type timeline struct {
	mu    sync.Mutex
	steps []string
	addr  map[daemon.Stage]string
	seen  map[string]chan struct{}
}

func newTimeline() *timeline {
	return &timeline{addr: map[daemon.Stage]string{}, seen: map[string]chan struct{}{}}
}

func (tl *timeline) ch(step string) chan struct{} {
	if tl.seen[step] == nil {
		tl.seen[step] = make(chan struct{})
	}
	return tl.seen[step]
}

func (tl *timeline) add(step string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.steps = append(tl.steps, step)
	select {
	case <-tl.ch(step):
	default:
		close(tl.ch(step))
	}
}

func (tl *timeline) event(ev daemon.Event) {
	tl.mu.Lock()
	if ev.Addr != "" {
		tl.addr[ev.Stage] = ev.Addr
	}
	tl.mu.Unlock()
	tl.add(string(ev.Stage))
}

// wait waits for step, at most a minute.
func (tl *timeline) wait(t *testing.T, step daemon.Stage) string {
	t.Helper()
	tl.mu.Lock()
	c := tl.ch(string(step))
	tl.mu.Unlock()
	select {
	case <-c:
	case <-time.After(time.Minute):
		t.Fatalf("no %q within a minute; steps so far: %q", step, tl.list())
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.addr[step]
}

func (tl *timeline) list() []string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return slices.Clone(tl.steps)
}

// TestDaemonShutdownOrder runs a daemon with every listener, holds a Ship
// in flight inside the backend, and stops the daemon: the API stops
// accepting at once (a new connection is refused) while the Ship is still
// running; the drain waits for that Ship, which succeeds; then the fetch
// server closes and stops, the metrics endpoint stops, probes and sweeps
// stop, the plugins are closed, and the audit log, which by then holds the
// Ship's line, is closed last. On the way, SIGHUP reopens the audit log at
// its path after a rotation.
func TestDaemonShutdownOrder(t *testing.T) {
	root := t.TempDir()
	filetest.Seed(t, root, "store-pass-1")
	backend := &gated{Backend: file.New(), entered: make(chan struct{}, 1), open: make(chan struct{})}
	dir := t.TempDir()
	sock := filepath.Join(dir, "keyship.sock")
	auditPath := filepath.Join(dir, "audit.log")
	tl := newTimeline()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() {
		ran <- daemon.Run(ctx, daemon.Config{
			Host:        &config.Config{DefaultBackend: "file", Backends: map[string]config.Backend{"file": {Config: map[string]string{"root": root}}}},
			HostOptions: []host.Option{host.WithBuiltin("file", func() plugin.Backend { return backend })},
			Listen:      "unix://" + sock, FetchListen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", AuditLog: auditPath,
			Signals: true, Events: tl.event,
		})
	}()
	tl.wait(t, daemon.APIListening)
	if tl.addr[daemon.FetchListening] == "" || tl.addr[daemon.MetricsListening] == "" {
		t.Fatalf("listening without a fetch or metrics address: %v", tl.addr)
	}

	// logrotate moves the log away; SIGHUP makes the daemon write at the
	// path again.
	if err := os.Rename(auditPath, auditPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	tl.wait(t, daemon.AuditReopened)

	client, err := server.Dial("unix://"+sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	shipped := make(chan error, 1)
	go func() {
		_, err := client.Ship(context.Background(), &hostv1.ShipRequest{JobId: "in-flight", Spec: []byte(filetest.Spec),
			Tasks: []*hostv1.Task{{Id: "exec-0", Role: "executor", Hosts: []string{"node1.example.com"}}}, Targets: []hostv1.Target{hostv1.Target_TARGET_FETCH}})
		shipped <- err
	}()
	select {
	case <-backend.entered:
	case <-time.After(time.Minute):
		t.Fatal("the Ship did not reach the backend within a minute")
	}

	cancel()
	tl.wait(t, daemon.APIClosed)
	if c, err := net.Dial("unix", sock); err == nil {
		_ = c.Close()
		t.Error("the API accepted a connection after it closed")
	}
	tl.add("ship released")
	close(backend.open)
	if err := <-shipped; err != nil {
		t.Errorf("the in-flight Ship was cut: %v", err)
	}
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("Run did not return within a minute; steps: %q", tl.list())
	}

	want := []string{
		string(daemon.ShuttingDown), string(daemon.APIClosed), "ship released", string(daemon.APIDrained),
		string(daemon.FetchClosed), string(daemon.FetchStopped), string(daemon.MetricsStopped),
		string(daemon.BackgroundStopped), string(daemon.PluginsClosed), string(daemon.AuditClosed),
	}
	got := tl.list()
	got = got[slices.Index(got, string(daemon.ShuttingDown)):]
	if !slices.Equal(got, want) {
		t.Errorf("stop order\n got %q\nwant %q", got, want)
	}
	data, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Event, JobID, Outcome string }
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		if err := json.Unmarshal([]byte(line), &rec); err == nil && rec.Event == "ship" {
			break
		}
	}
	if rec.Event != "ship" || rec.Outcome != "ok" {
		t.Errorf("the reopened audit log holds no ok ship line:\n%s", data)
	}
}

// TestDaemonRefusesAPerSourceCapNotBelowTheListeners: a per-source cap at
// or above the listener's cap would let one address take every
// connection; Run refuses it, naming both flags, before it opens anything.
func TestDaemonRefusesAPerSourceCapNotBelowTheListeners(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "keyship.sock")
	err := daemon.Run(context.Background(), daemon.Config{
		Host: &config.Config{}, Listen: "unix://" + sock,
		Limits: daemon.Limits{MaxConns: 8, MaxConnsPerSource: 8},
	})
	if err == nil || !strings.Contains(err.Error(), "--max-conns-per-source 8") || !strings.Contains(err.Error(), "--max-conns 8") {
		t.Errorf("a per-source cap equal to the listener's: %v", err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the API socket was created: %v", err)
	}
}
