package watch_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize/testca"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/plugintest"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/watch"
)

func TestRenewalTime(t *testing.T) {
	nb := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name        string
		lifetime    time.Duration
		renewBefore time.Duration
		want        time.Duration // after notBefore
	}{
		{"default: 2/3 of 90 days", 90 * 24 * time.Hour, 0, 60 * 24 * time.Hour},
		{"default: 2/3 of 30s", 30 * time.Second, 0, 20 * time.Second},
		{"renew-before shorter than the lifetime", 90 * 24 * time.Hour, 7 * 24 * time.Hour, 83 * 24 * time.Hour},
		{"renew-before as long as the lifetime: default", time.Hour, time.Hour, 40 * time.Minute},
		{"renew-before longer than the lifetime: default", time.Hour, 2 * time.Hour, 40 * time.Minute},
		{"negative renew-before: default", time.Hour, -time.Minute, 40 * time.Minute},
		{"truncated to the second", 10 * time.Second, 0, 6 * time.Second}, // 10 - 3.33 = 6.67 -> 6
	} {
		if got := watch.RenewalTime(nb, nb.Add(c.lifetime), c.renewBefore); !got.Equal(nb.Add(c.want)) {
			t.Errorf("%s: renewal at notBefore+%s, want +%s", c.name, got.Sub(nb), c.want)
		}
	}
}

// counting is the in-process file backend counting the refs read.
type counting struct {
	plugin.Backend
	reads atomic.Int64
}

func (c *counting) Get(ctx context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	c.reads.Add(int64(len(refs)))
	return c.Backend.Get(ctx, refs)
}

// fixture is seed 000's job in a file-backend root, a real host over the
// in-process file backend, and a ship that records what it got.
type fixture struct {
	job     *filetest.Job
	h       *host.Host
	backend *counting
	logs    *plugintest.LogBuffer
	logger  hclog.Logger
	req     *spec.Request
	now     atomic.Pointer[time.Time]

	mu      sync.Mutex
	shipped []watch.Update
	serials []string
	failing error // returned by ship when set
}

func newFixture(t *testing.T, leafOpts ...testca.Option) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{job: filetest.Seed(t, root, "store-pass-1"), backend: &counting{Backend: file.New()}, logs: &plugintest.LogBuffer{}}
	if len(leafOpts) > 0 {
		f.rotate(t, leafOpts...)
	}
	f.logger = hclog.New(&hclog.LoggerOptions{Output: f.logs, Level: hclog.Debug})
	cfg := &config.Config{DefaultBackend: "file", Backends: map[string]config.Backend{"file": {Config: map[string]string{"root": root}}}}
	f.h = host.New(cfg, host.WithBuiltin("file", func() plugin.Backend { return f.backend }))
	t.Cleanup(func() { _ = f.h.Close() })
	var err error
	if f.req, err = spec.ReadRequest(spec.Document{JobID: "job-1", Data: []byte(filetest.Spec)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	f.now.Store(&now)
	return f
}

func (f *fixture) clock() time.Time { return *f.now.Load() }

func (f *fixture) advance(d time.Duration) {
	n := f.now.Load().Add(d)
	f.now.Store(&n)
}

// rotate writes a new keystore (a new leaf from the same CA) under the same
// passwords and returns its serial.
func (f *fixture) rotate(t *testing.T, opts ...testca.Option) string {
	t.Helper()
	leaf, err := f.job.CA.Issue("node1.example.com", append([]testca.Option{testca.WithDNS("node1.example.com")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.putKeystore(t, leaf, f.job.StorePassword)
	return leaf.Chain[0].SerialNumber.Text(16)
}

func (f *fixture) putKeystore(t *testing.T, leaf *testca.Leaf, storePass string) {
	t.Helper()
	ks, err := keystore.JKSKeystore("node", leaf.Key, leaf.Chain, []byte(storePass), []byte(f.job.KeyPassword))
	if err != nil {
		t.Fatal(err)
	}
	filetest.Put(t, f.job.Root, "spark/keystore", ks)
}

func (f *fixture) ship(_ context.Context, sh *shipper.Shipment, u watch.Update) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing != nil {
		return f.failing
	}
	f.shipped = append(f.shipped, u)
	f.serials = append(f.serials, sh.Bundle.Chain[0].SerialNumber)
	sh.Zero()
	return nil
}

func (f *fixture) ships() ([]watch.Update, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]watch.Update(nil), f.shipped...), append([]string(nil), f.serials...)
}

func (f *fixture) start(t *testing.T, opts watch.Options) *watch.Job {
	t.Helper()
	opts.Prepare = shipper.Options{Dir: "/sandbox"}
	opts.Logger, opts.Now = f.logger, f.clock
	j, err := watch.Start(context.Background(), f.h, f.req, opts, f.ship)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func refresh(f *fixture, j *watch.Job, force bool) watch.Result {
	res := watch.Refresh(context.Background(), f.h, []*watch.Job{j}, force)
	if len(res) == 0 {
		return watch.Result{}
	}
	return res[0]
}

// TestUnchangedRefreshShipsNothing: a refresh that finds every version as
// shipped ships nothing and reads each ref once (the file backend has no
// Versioner); a rotation ships the new keystore with the change named; the
// same bytes written again are a new version but nothing to swap.
func TestUnchangedRefreshShipsNothing(t *testing.T) {
	f := newFixture(t)
	j := f.start(t, watch.Options{})
	if ups, _ := f.ships(); len(ups) != 1 || ups[0].Reason != watch.Initial {
		t.Fatalf("Start shipped %+v, want one initial ship", ups)
	}
	before := f.backend.reads.Load()
	for range 3 {
		if r := refresh(f, j, false); r.Err != nil || r.Shipped {
			t.Fatalf("unchanged refresh: %+v", r)
		}
	}
	if n := f.backend.reads.Load() - before; n != 3*6 {
		t.Errorf("three unchanged refreshes read %d refs, want 18 (six refs, once each)", n)
	}
	serial := f.rotate(t)
	r := refresh(f, j, false)
	ups, serials := f.ships()
	if r.Err != nil || !r.Shipped || len(ups) != 2 || ups[1].Reason != watch.Changed || serials[1] != serial {
		t.Fatalf("refresh after a rotation: %+v; shipped %+v %v, want the new serial %s", r, ups, serials, serial)
	}
	if len(ups[1].Changes) != 1 || ups[1].Changes[0].Field != "security.tls.keystore_secret" || ups[1].Changes[0].Ref != "/spark/keystore" {
		t.Errorf("changes %+v, want the keystore setting and its ref", ups[1].Changes)
	}
	// The file backend's version is an HMAC of the content: the same bytes
	// again are the same version; touch the password file with other bytes
	// and back to see a version change that swaps nothing.
	pw := f.job.TrustPassword
	filetest.Put(t, f.job.Root, "spark/truststore_password", []byte(pw+"x"))
	if r := refresh(f, j, false); r.Err == nil {
		t.Fatal("a truststore password that opens nothing was shipped")
	}
	filetest.Put(t, f.job.Root, "spark/truststore_password", []byte(pw))
	if r := refresh(f, j, true); r.Err != nil || r.Shipped {
		t.Fatalf("refresh after the password came back: %+v, want no ship", r)
	}
	if ups, _ := f.ships(); len(ups) != 2 {
		t.Errorf("%d ships, want 2", len(ups))
	}
}

// TestFailedRefreshKeepsSetLogsOncePerAttempt: a keystore whose password
// does not open it is not shipped; each attempt logs the error once with
// the setting and the ref; the job backs off (a refresh in the backoff
// window skips it) and recovers when the store does. A ship that fails is
// retried the same way.
func TestFailedRefreshKeepsSetLogsOncePerAttempt(t *testing.T) {
	f := newFixture(t)
	j := f.start(t, watch.Options{RetryInitial: time.Minute, RetryMax: time.Hour})
	leaf, err := f.job.CA.Issue("node1.example.com", testca.WithDNS("node1.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	f.putKeystore(t, leaf, "another-store-password")
	for attempt := 1; attempt <= 3; attempt++ {
		r := refresh(f, j, attempt > 1) // attempts 2 and 3 are forced: the backoff would skip them
		if r.Err == nil || r.Shipped {
			t.Fatalf("attempt %d: %+v, want an error", attempt, r)
		}
		if !strings.Contains(r.Err.Error(), "security.tls.keystore_password (/spark/keystore_password)") || !strings.Contains(r.Err.Error(), "password was incorrect") {
			t.Errorf("attempt %d: error %q does not name the setting, the ref and the reason", attempt, r.Err)
		}
		if n := strings.Count(f.logs.String(), "refresh failed; the stores in place stay"); n != attempt {
			t.Errorf("after %d attempts the failure was logged %d times", attempt, n)
		}
		if j.Failures() != attempt {
			t.Errorf("Failures() = %d after %d attempts", j.Failures(), attempt)
		}
	}
	if r := refresh(f, j, false); r.Job != nil {
		t.Errorf("a refresh in the backoff window refreshed the job: %+v", r)
	}
	if ups, _ := f.ships(); len(ups) != 1 {
		t.Fatalf("%d ships after failed refreshes, want only the first", len(ups))
	}
	if strings.Contains(f.logs.String(), "another-store-password") || strings.Contains(f.logs.String(), "store-pass-1") {
		t.Fatal("a password reached the log")
	}

	// The store is fixed, but the ship fails: still the old set, retried.
	f.putKeystore(t, leaf, f.job.StorePassword)
	f.mu.Lock()
	f.failing = errors.New("sandbox: disk full")
	f.mu.Unlock()
	if r := refresh(f, j, true); r.Err == nil || !strings.Contains(r.Err.Error(), "disk full") {
		t.Fatalf("a failed ship: %+v", r)
	}
	f.mu.Lock()
	f.failing = nil
	f.mu.Unlock()
	f.advance(2 * time.Hour) // past any backoff
	r := refresh(f, j, false)
	if _, serials := f.ships(); r.Err != nil || !r.Shipped || serials[len(serials)-1] != leaf.Chain[0].SerialNumber.Text(16) {
		t.Fatalf("recovery: %+v, serials %v", r, serials)
	}
	if j.Failures() != 0 {
		t.Errorf("Failures() = %d after a success", j.Failures())
	}
}

// TestBackendReadCertificateWarnsWithDaysLeft: a keystore read from a
// backend that expires within the warning window is warned about with the
// days left at the first ship, not again the same day, and again a day
// later.
func TestBackendReadCertificateWarnsWithDaysLeft(t *testing.T) {
	now := time.Now()
	f := newFixture(t, testca.WithValidity(now.Add(-time.Hour), now.Add(3*24*time.Hour+time.Hour)))
	j := f.start(t, watch.Options{})
	count := func() int { return strings.Count(f.logs.String(), "keystore certificate expires in") }
	if count() != 1 || !strings.Contains(f.logs.String(), "keystore certificate expires in 3 days") || !strings.Contains(f.logs.String(), "days_left=3") ||
		!strings.Contains(f.logs.String(), "ref=/spark/keystore") || !strings.Contains(f.logs.String(), "field=security.tls.keystore_secret") {
		t.Fatalf("first ship's warning:\n%s", f.logs)
	}
	f.advance(time.Hour)
	refresh(f, j, false)
	if count() != 1 {
		t.Errorf("warned %d times within a day", count())
	}
	f.advance(23 * time.Hour) // a day after the first warning
	refresh(f, j, false)
	if count() != 2 || !strings.Contains(f.logs.String(), "expires in 2 days") {
		t.Errorf("a day later: %d warnings\n%s", count(), f.logs)
	}
	if !j.RenewAt().IsZero() {
		t.Error("a backend-read keystore has a renewal time")
	}
}

// TestWatcherRefreshNowAndTick: a Watcher with a long interval refreshes
// at once on RefreshNow (SIGHUP); its regular tick refreshes too.
func TestWatcherRefreshNowAndTick(t *testing.T) {
	f := newFixture(t)
	f.now.Store(nil)
	opts := watch.Options{Prepare: shipper.Options{Dir: "/sandbox"}, Logger: f.logger, Now: time.Now}
	j, err := watch.Start(context.Background(), f.h, f.req, opts, f.ship)
	if err != nil {
		t.Fatal(err)
	}
	w := watch.NewWatcher(f.h, time.Hour)
	w.Add(j)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	serial := f.rotate(t)
	w.RefreshNow()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, serials := f.ships(); len(serials) == 2 && serials[1] == serial {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("RefreshNow did not ship the rotated keystore within a minute (interval 1h)")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
}
