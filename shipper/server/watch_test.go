package server_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/plugin"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/watch"
)

// watchFixture is a server that watches, on a unix socket, over the
// in-process file backend (which has no Versioner: each version check is a
// Get inside the backend, so counting its reads counts the checks).
type watchFixture struct {
	job     *filetest.Job
	backend *counting
	watcher *watch.Watcher
	client  *server.Client
	srv     *server.Server
}

func newWatchFixture(t testing.TB, refresh time.Duration, opts ...server.Option) *watchFixture {
	t.Helper()
	root := t.TempDir()
	f := &watchFixture{job: filetest.Seed(t, root, "store-pass-1"), backend: &counting{Backend: file.New()}}
	cfg := &config.Config{DefaultBackend: "file", Backends: map[string]config.Backend{"file": {Config: map[string]string{"root": root}}}}
	h := host.New(cfg, host.WithBuiltin("file", func() plugin.Backend { return f.backend }))
	t.Cleanup(func() { _ = h.Close() })
	f.watcher = watch.NewWatcher(h, refresh)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.watcher.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	f.srv = server.New(h, nil, append([]server.Option{server.WithWatch(server.WatchConfig{Host: h, Watcher: f.watcher})}, opts...)...)
	sock := "unix://" + filepath.Join(t.TempDir(), "keyship.sock")
	l, err := server.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := server.HTTPServer(server.Handler(f.srv), nil) // as keyship serve serves it
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })
	if f.client, err = server.Dial(sock, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.client.Close() })
	return f
}

// rotate writes a new keystore for the same key passwords: a new leaf from
// the same CA.
func (f *watchFixture) rotate(t *testing.T) string {
	t.Helper()
	leaf, err := f.job.CA.Issue("node1.example.com")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.JKSKeystore("node", leaf.Key, leaf.Chain, []byte(f.job.StorePassword), []byte(f.job.KeyPassword))
	if err != nil {
		t.Fatal(err)
	}
	filetest.Put(t, f.job.Root, "spark/keystore", ks)
	return leaf.Chain[0].SerialNumber.Text(16)
}

func keystoreVersion(resp *hostv1.WatchResponse) string {
	for _, fl := range resp.GetShipment().GetFiles() {
		if fl.GetRole() == string(materialize.RoleKeystore) {
			return fl.GetVersion()
		}
	}
	return ""
}

// pass makes the Watcher refresh now and waits for the pass to end.
func (f *watchFixture) pass(t *testing.T) {
	t.Helper()
	n := f.watcher.Passes()
	f.watcher.RefreshNow()
	deadline := time.Now().Add(time.Minute)
	for f.watcher.Passes() == n {
		if time.Now().After(deadline) {
			t.Fatal("no refresh pass within a minute of RefreshNow")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatchStreamsRotationToEveryWatcher: five watchers of one job and one
// of a second job with the same secrets get their bundle, then the new one
// after the keystore is rotated; an unchanged refresh reads each ref once
// whatever the watchers and jobs, and the refresh that finds the rotation
// reads each ref once more for both jobs' rebuilds; Ship gets the new bundle
// too.
func TestWatchStreamsRotationToEveryWatcher(t *testing.T) {
	f := newWatchFixture(t, time.Hour) // passes on RefreshNow only: the counts are exact
	reqs := []*hostv1.WatchRequest{
		{Ship: shipReq("job-w", tasks("tm", 2), hostv1.Target_TARGET_FILES)},
		{Ship: shipReq("job-w2", tasks("tm", 1), hostv1.Target_TARGET_FILES)},
	}
	const watchers = 6 // the last one watches job-w2
	got := make([]chan *hostv1.WatchResponse, watchers)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range got {
		got[i] = make(chan *hostv1.WatchResponse, 10)
		req := reqs[0]
		if i == watchers-1 {
			req = reqs[1]
		}
		wg.Go(func() {
			err := f.client.WatchJob(ctx, req, func(r *hostv1.WatchResponse) error { got[i] <- r; return nil })
			if err != nil && ctx.Err() == nil {
				t.Errorf("watcher %d: %v", i, err)
			}
		})
	}
	recv := func(i int) *hostv1.WatchResponse {
		t.Helper()
		select {
		case r := <-got[i]:
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("watcher %d: nothing within 10s", i)
			return nil
		}
	}
	var initial string
	for i := range got {
		r := recv(i)
		if r.GetReason() != hostv1.WatchReason_WATCH_REASON_INITIAL || keystoreVersion(r) == "" {
			t.Fatalf("watcher %d: first message %v, keystore version %q", i, r.GetReason(), keystoreVersion(r))
		}
		if initial == "" {
			initial = keystoreVersion(r)
		} else if keystoreVersion(r) != initial {
			t.Fatalf("watcher %d got another initial keystore version", i)
		}
	}
	if n := f.backend.reads.Load(); n != 2*distinctRefs {
		t.Errorf("two jobs cost %d reads to start, want %d (one build per job reading every ref once; the build's inputs are the versions to watch)", n, 2*distinctRefs)
	}

	reads0 := f.backend.reads.Load()
	f.pass(t)
	if n := f.backend.reads.Load() - reads0; n != distinctRefs {
		t.Errorf("an unchanged refresh of 2 jobs and 6 watchers read %d refs, want %d (each distinct ref once)", n, distinctRefs)
	}

	f.rotate(t)
	reads0 = f.backend.reads.Load()
	f.pass(t)
	for i := range got {
		r := recv(i)
		if r.GetReason() != hostv1.WatchReason_WATCH_REASON_CHANGED || keystoreVersion(r) == initial || keystoreVersion(r) == "" {
			t.Fatalf("watcher %d after the rotation: %v, keystore version %q (was %q)", i, r.GetReason(), keystoreVersion(r), initial)
		}
		if len(r.GetChanges()) != 1 || !strings.HasPrefix(r.GetChanges()[0], "security.tls.keystore_secret (/spark/keystore): ") {
			t.Errorf("watcher %d: changes %q, want the keystore's", i, r.GetChanges())
		}
	}
	if n := f.backend.reads.Load() - reads0; n != 2*distinctRefs {
		t.Errorf("the refresh that found the rotation read %d refs, want %d (the version check, and one read per ref for both jobs' rebuilds)", n, 2*distinctRefs)
	}
	resp, err := f.client.Ship(context.Background(), reqs[0].GetShip())
	if err != nil {
		t.Fatal(err)
	}
	if v := keystoreVersion(&hostv1.WatchResponse{Shipment: resp}); v == initial {
		t.Errorf("Ship of the watched job after the rotation returned the old keystore version %q", v)
	}
}

// TestWatchEndsAtTTL: a bundle past its TTL is no longer refreshed: the
// stream ends (OK) and the Watcher drops the job.
func TestWatchEndsAtTTL(t *testing.T) {
	f := newWatchFixture(t, time.Second)
	ship := shipReq("job-ttl", tasks("tm", 1), hostv1.Target_TARGET_FILES)
	ship.TtlSeconds = 2
	var n int
	start := time.Now()
	err := f.client.WatchJob(context.Background(), &hostv1.WatchRequest{Ship: ship}, func(*hostv1.WatchResponse) error { n++; return nil })
	if err != nil || n != 1 {
		t.Fatalf("Watch of a 2s bundle: %d messages, %v; want the initial one and a clean end", n, err)
	}
	if d := time.Since(start); d < time.Second { // no upper bound: a loaded machine may be late
		t.Errorf("the stream of a 2s bundle ended after %s", d)
	}
	deadline := time.Now().Add(time.Minute)
	for f.watcher.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if f.watcher.Len() != 0 {
		t.Error("the Watcher still refreshes a job past its TTL")
	}
}

// TestWatchRefusesBadRequests: the request is checked as Ship's is; a
// server without watching says so.
func TestWatchRefusesBadRequests(t *testing.T) {
	f := newWatchFixture(t, time.Second)
	each := func(*hostv1.WatchResponse) error { return errors.New("no message expected") }
	for name, req := range map[string]*hostv1.WatchRequest{
		"no ship":           {},
		"no tasks":          {Ship: shipReq("j", nil)},
		"bad spark version": {Ship: shipReq("j", tasks("t", 1)), ConsumerVersion: "four"},
	} {
		if err := f.client.WatchJob(context.Background(), req, each); err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
}

// TestConcurrentWatchesOfANewJobAllFollowIt: Watch calls racing to start
// the same new job all follow it. The first bundle makes the job visible a
// moment before its watch is registered; a Watch that found it then failed
// with "the job was built without its watch" (seen once in a make test
// under load).
func TestConcurrentWatchesOfANewJobAllFollowIt(t *testing.T) {
	f := newWatchFixture(t, time.Hour)
	const rounds, watchers = 40, 8
	for round := range rounds {
		req := &hostv1.WatchRequest{Ship: shipReq(fmt.Sprint("job-race-", round), tasks("tm", 1), hostv1.Target_TARGET_FILES)}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		errs := make(chan error, watchers)
		for range watchers {
			wg.Go(func() {
				first := true
				err := f.client.WatchJob(ctx, req, func(*hostv1.WatchResponse) error {
					if first {
						first = false
						errs <- nil
					}
					return nil
				})
				if first {
					errs <- err
				}
			})
		}
		for w := range watchers {
			select {
			case err := <-errs:
				if err != nil {
					t.Fatalf("round %d, watcher %d: %v", round, w, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("round %d: a watcher got nothing within 30s", round)
			}
		}
		cancel()
		wg.Wait()
	}
}
