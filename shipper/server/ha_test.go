package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/plugin"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/server/replicas"
	"github.com/keyship/keyship/shipper/server/replicas/replicastest"
	"github.com/keyship/keyship/shipper/server/replicas/zookeeper"
	"github.com/keyship/keyship/shipper/server/replicas/zookeeper/zktest"
	"github.com/keyship/keyship/shipper/watch"
)

// haCanary is the store password of the replica tests' secrets: it must
// never reach the shared state.
const haCanary = "ha-canary-Pw-51d0"

// engine is one kind of shared state the replica tests run against.
type engine struct {
	name string
	// open returns a new client of the engine's state for cluster.
	open func(t testing.TB, cluster string) replicas.State
	// raw returns every byte the engine keeps (nil: nothing outside this
	// process).
	raw func(t testing.TB) []byte
	// control is a string raw must hold once cluster wrote records: the
	// scan's positive control.
	control func(cluster string) string
	// writes counts the engine's write transactions so far (nil: not
	// counted).
	writes func(t testing.TB) int64
}

var haClusters atomic.Int64

// engineNames are the engines of the replica tests.
var engineNames = []string{"memory", "zookeeper", "kubernetes"}

// newEngine returns the engine name for the test t: Memory, or a real
// 3-server ZooKeeper ensemble that lives as long as t (skipped when Java or
// ZooKeeper is missing, unless KEYSHIP_REQUIRE_PEERS=1).
func newEngine(t testing.TB, name string) engine {
	mems := map[string]*replicas.Memory{}
	var mu sync.Mutex
	mem := engine{name: "memory", open: func(_ testing.TB, cluster string) replicas.State {
		mu.Lock()
		defer mu.Unlock()
		m, ok := mems[cluster]
		if !ok {
			m = replicas.NewMemory()
			mems[cluster] = m
			return m
		}
		return m.Replica()
	}}
	switch name {
	case "memory":
		return mem
	case "kubernetes":
		return kubeEngine(t)
	}
	ens := zktest.Start(t, 3)
	return engine{name: "zookeeper", open: func(t testing.TB, cluster string) replicas.State {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st, err := zookeeper.Open(ctx, zookeeper.Config{Servers: ens.Servers, Root: "/keyship-server-test", ClusterID: cluster, SessionTimeout: 4 * time.Second})
		if err != nil {
			t.Fatalf("zookeeper.Open: %v", err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}, raw: func(t testing.TB) []byte { return ens.Raw(t) },
		control: func(cluster string) string { return "/keyship-server-test/" + cluster },
		writes:  func(t testing.TB) int64 { return ens.Zxid(t) }}
}

// replica is one keyship serve replica in process: its own host (and
// backend reads), fetch server and API server, sharing a state.
type replica struct {
	srv     *server.Server
	backend *counting
	fetch   *fetch.Server
	https   *httptest.Server
	state   replicas.State
	host    *host.Host
	// With watching (runReplica): the API's client, and stop, which
	// ends RunReplica and closes the state (a replica gone).
	client *server.Client
	stop   func()
}

// runReplica starts a replica that watches jobs (checked every refresh)
// and runs RunReplica, with its API on a unix socket.
func runReplica(t *testing.T, e engine, cluster, root string, refresh time.Duration) *replica {
	t.Helper()
	r := newReplica(t, e, cluster, root)
	w := watch.NewWatcher(r.host, refresh)
	r.srv = server.New(r.host, r.fetch, server.WithReplicas(r.store(t)), server.WithWatch(server.WatchConfig{Host: r.host, Watcher: w}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.srv.RunReplica(ctx, w); close(done) }()
	var once sync.Once
	r.stop = func() { once.Do(func() { cancel(); <-done; _ = r.state.Close() }) }
	t.Cleanup(r.stop)
	sock := "unix://" + filepath.Join(t.TempDir(), "keyship.sock")
	l, err := server.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := server.HTTPServer(server.Handler(r.srv), nil)
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })
	if r.client, err = server.Dial(sock, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.client.Close() })
	return r
}

// store is a new Store over the replica's state.
func (r *replica) store(t testing.TB) *replicas.Store {
	st, err := replicas.NewStore(r.state, replicastest.Key)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newReplica starts a replica of cluster on e, reading the secrets at root.
func newReplica(t testing.TB, e engine, cluster, root string) *replica {
	t.Helper()
	return newReplicaAt(t, e, cluster, root, nil)
}

// newReplicaAt is newReplica with a clock (nil: time.Now) for the server,
// its fetch server and its store.
func newReplicaAt(t testing.TB, e engine, cluster, root string, clock func() time.Time) *replica {
	t.Helper()
	if clock == nil {
		clock = time.Now
	}
	r := &replica{backend: &counting{Backend: file.New()}, state: e.open(t, cluster)}
	store, err := replicas.NewStore(r.state, replicastest.Key, replicas.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{DefaultBackend: "file", Backends: map[string]config.Backend{"file": {Config: map[string]string{"root": root}}}}
	h := host.New(cfg, host.WithBuiltin("file", func() plugin.Backend { return r.backend }))
	t.Cleanup(func() { _ = h.Close() })
	r.host = h
	mux := http.NewServeMux()
	r.https = httptest.NewTLSServer(mux)
	t.Cleanup(r.https.Close)
	r.fetch = fetch.New(r.https.URL, fetch.WithClock(clock))
	mux.Handle(fetch.Prefix, r.fetch)
	r.srv = server.New(h, r.fetch, server.WithReplicas(store), server.WithClock(clock))
	return r
}

// get fetches uri (minted by any replica) through r: its status and body.
func (r *replica) get(t testing.TB, uri string) (int, []byte) {
	t.Helper()
	i := strings.Index(uri, fetch.Prefix)
	resp, err := r.https.Client().Get(r.https.URL + uri[i:])
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return resp.StatusCode, body
}

func seedRoot(t testing.TB) string {
	root := t.TempDir()
	filetest.Seed(t, root, haCanary)
	return root
}

func newCluster() string { return fmt.Sprintf("c%d", haClusters.Add(1)) }

// TestReplicas runs the replica tests against each engine.
func TestReplicas(t *testing.T) {
	for _, name := range engineNames {
		t.Run(name, func(t *testing.T) {
			e := newEngine(t, name)
			t.Run("URIFromAServedByB", func(t *testing.T) { testURIFromAServedByB(t, e) })
			t.Run("DoubleFetchesServeOnce", func(t *testing.T) { testDoubleFetchesServeOnce(t, e) })
			t.Run("RestartServesUnusedURIs", func(t *testing.T) { testRestartServesUnusedURIs(t, e) })
			t.Run("RefresherFailover", func(t *testing.T) { testRefresherFailover(t, e) })
			t.Run("RestartRefreshesWatches", func(t *testing.T) { testRestartRefreshesWatches(t, e) })
			t.Run("RecordOutlivesEveryReplicasJob", func(t *testing.T) { testRecordOutlivesEveryReplicasJob(t, e) })
			t.Run("StateDownIsUnavailable", func(t *testing.T) { testStateDownIsUnavailable(t, e) })
			if e.writes != nil {
				t.Run("OneWritePerShip", func(t *testing.T) { testOneWritePerShip(t, e) })
			}
			if e.raw != nil {
				t.Run("NoCanaryInTheState", func(t *testing.T) { testNoCanaryInTheState(t, e) })
			}
		})
	}
}

// testURIFromAServedByB: a URI replica A hands out is served by B, with the
// bytes A serves for the same file (B builds the job from its record, one
// backend read per ref), and only once across both.
func testURIFromAServedByB(t *testing.T, e engine) {
	root, cluster := seedRoot(t), newCluster()
	a, b := newReplica(t, e, cluster, root), newReplica(t, e, cluster, root)
	resp, err := a.srv.Ship(context.Background(), shipReq("job-ab", tasks("exec", 3), hostv1.Target_TARGET_FETCH))
	if err != nil {
		t.Fatal(err)
	}
	uris := resp.GetTasks()[0].GetUris()
	if len(uris) == 0 {
		t.Fatal("no fetch URIs")
	}
	for i, u := range uris {
		codeB, fromB := b.get(t, u.GetValue())
		codeA, fromA := a.get(t, resp.GetTasks()[1].GetUris()[i].GetValue())
		if codeB != 200 || codeA != 200 {
			t.Fatalf("%s: replica B answered %d, A %d", u.GetOutputFile(), codeB, codeA)
		}
		if !bytes.Equal(fromA, fromB) || len(fromA) == 0 {
			t.Fatalf("%s: replica B served %d bytes that differ from A's %d", u.GetOutputFile(), len(fromB), len(fromA))
		}
		if code, _ := a.get(t, u.GetValue()); code != http.StatusForbidden {
			t.Fatalf("%s: a one-use URI served by B was answered %d by A, want 403", u.GetOutputFile(), code)
		}
	}
	if got := b.backend.reads.Load(); got != distinctRefs {
		t.Errorf("replica B read %d refs to serve A's job, want %d (one per ref)", got, distinctRefs)
	}
}

// testDoubleFetchesServeOnce: 1000 URIs, each fetched twice at once through
// two replicas: each is served exactly once.
func testDoubleFetchesServeOnce(t *testing.T, e engine) {
	root, cluster := seedRoot(t), newCluster()
	rs := []*replica{newReplica(t, e, cluster, root), newReplica(t, e, cluster, root), newReplica(t, e, cluster, root)}
	n := 1000
	if e.name == "kubernetes" {
		n = 200 // a ConfigMap per grant: the API server's writes are the cost
	}
	var uris []string
	for i := range n / 100 {
		resp, err := rs[i%3].srv.Ship(context.Background(), shipReq("job-double", tasks(fmt.Sprint("t", i), 100), hostv1.Target_TARGET_FETCH))
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range resp.GetTasks() {
			uris = append(uris, ts.GetUris()[0].GetValue())
		}
	}
	var served, refused, other atomic.Int64
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i, u := range uris {
		for k := range 2 {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				switch code, _ := rs[(i+k)%3].get(t, u); code {
				case 200:
					served.Add(1)
				case http.StatusForbidden:
					refused.Add(1)
				default:
					other.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if served.Load() != int64(n) || refused.Load() != int64(n) || other.Load() != 0 {
		t.Fatalf("%d URIs fetched twice through two replicas: %d served, %d refused, %d other; want each served once", n, served.Load(), refused.Load(), other.Load())
	}
}

// testRestartServesUnusedURIs: every replica gone, a new one serves the
// unused URIs of a job within its TTL, and Ships the job again.
func testRestartServesUnusedURIs(t *testing.T, e engine) {
	root, cluster := seedRoot(t), newCluster()
	a := newReplica(t, e, cluster, root)
	resp, err := a.srv.Ship(context.Background(), shipReq("job-restart", tasks("exec", 2), hostv1.Target_TARGET_FETCH))
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := a.get(t, resp.GetTasks()[0].GetUris()[0].GetValue()); code != 200 {
		t.Fatalf("before the restart: %d", code)
	}
	_ = a.state.Close()
	a.https.Close()
	c := newReplica(t, e, cluster, root)
	if code, _ := c.get(t, resp.GetTasks()[0].GetUris()[0].GetValue()); code != http.StatusForbidden {
		t.Errorf("a URI used before the restart: %d after it, want 403", code)
	}
	for _, u := range resp.GetTasks()[1].GetUris() {
		if code, body := c.get(t, u.GetValue()); code != 200 || len(body) == 0 {
			t.Errorf("%s unused before the restart: %d after it, want 200", u.GetOutputFile(), code)
		}
	}
	if _, err := c.srv.Ship(context.Background(), shipReq("job-restart", tasks("late", 1), hostv1.Target_TARGET_FETCH)); err != nil {
		t.Errorf("the job shipped again after the restart: %v", err)
	}
}

// testStateDownIsUnavailable: a Ship whose grants cannot be written fails
// with UNAVAILABLE (retryable), through the one outcome table.
func testStateDownIsUnavailable(t *testing.T, e engine) {
	root := seedRoot(t)
	a := newReplica(t, e, newCluster(), root)
	_ = a.state.Close()
	_, err := a.srv.Ship(context.Background(), shipReq("job-down", tasks("exec", 1), hostv1.Target_TARGET_FETCH))
	if grpcCode(err) != codes.Unavailable {
		t.Fatalf("Ship with the state closed: %v, want UNAVAILABLE", err)
	}
}

// testNoCanaryInTheState: after Ships and fetches, the engine's files hold
// no store password (the positive control: the bytes scanned hold the
// job's id, written in clear nowhere else but the fetch events).
func testNoCanaryInTheState(t *testing.T, e engine) {
	root, cluster := seedRoot(t), newCluster()
	a, b := newReplica(t, e, cluster, root), newReplica(t, e, cluster, root)
	resp, err := a.srv.Ship(context.Background(), shipReq("job-canary", tasks("exec", 5), hostv1.Target_TARGET_FETCH, hostv1.Target_TARGET_FILES))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range resp.GetTasks()[0].GetUris() {
		if code, _ := b.get(t, u.GetValue()); code != 200 {
			t.Fatalf("fetch: %d", code)
		}
	}
	raw := e.raw(t)
	if !bytes.Contains(raw, []byte(e.control(cluster))) {
		t.Fatalf("the scan (%d bytes) does not hold %s: it scans the wrong bytes", len(raw), e.control(cluster))
	}
	if bytes.Contains(raw, []byte(haCanary)) {
		t.Fatalf("the store password is in what %s keeps", e.name)
	}
	for _, f := range resp.GetFiles() {
		if c := f.GetContents(); len(c) > 16 && bytes.Contains(raw, c[:16]) {
			t.Fatalf("%s's bytes are in what %s keeps", f.GetPath(), e.name)
		}
	}
}

// testRefresherFailover: two replicas stream one job's Watch; a rotated
// keystore reaches both streams (one refresher, the other replica polls
// the job's record); the refresher goes, and the next rotation still
// reaches the other replica's stream (it took over).
func testRefresherFailover(t *testing.T, e engine) {
	root, cluster := t.TempDir(), newCluster()
	jobFiles := filetest.Seed(t, root, haCanary)
	rs := []*replica{runReplica(t, e, cluster, root, 100*time.Millisecond), runReplica(t, e, cluster, root, 100*time.Millisecond)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	got := make([]chan *hostv1.WatchResponse, len(rs))
	req := &hostv1.WatchRequest{Ship: shipReq("job-failover", tasks("tm", 1), hostv1.Target_TARGET_FILES)}
	for i, r := range rs {
		got[i] = make(chan *hostv1.WatchResponse, 100)
		wg.Go(func() {
			err := r.client.WatchJob(ctx, req, func(resp *hostv1.WatchResponse) error { got[i] <- resp; return nil })
			if err != nil && ctx.Err() == nil {
				t.Logf("watcher %d: %v", i, err)
			}
		})
	}
	// last is the response that brought each replica's newest keystore.
	last := make([]*hostv1.WatchResponse, len(rs))
	// next returns the first keystore version replica i streams that is
	// none of old (a stream may see a bundle twice after a failover).
	next := func(i int, old ...string) string {
		t.Helper()
		deadline := time.After(time.Minute)
		for {
			select {
			case resp := <-got[i]:
				if v := keystoreVersion(resp); v != "" && !slices.Contains(old, v) {
					last[i] = resp
					return v
				}
			case <-deadline:
				t.Fatalf("replica %d: no new keystore within a minute", i)
			}
		}
	}
	v0 := next(0)
	if v := next(1); v != v0 {
		t.Fatalf("the replicas' initial keystores differ: %s, %s", v0, v)
	}
	rotate(t, jobFiles)
	v1 := next(0, v0)
	if v := next(1, v0); v != v1 {
		t.Fatalf("after the rotation the replicas stream %s and %s", v1, v)
	}
	// The refresher's stream and the other's name the same reason and
	// changes (the other ships what the refresher recorded).
	for i, resp := range last {
		if resp.GetReason() != hostv1.WatchReason_WATCH_REASON_CHANGED || len(resp.GetChanges()) == 0 {
			t.Errorf("replica %d streamed the rotated keystore as %s with changes %q, want CHANGED naming the change", i, resp.GetReason(), resp.GetChanges())
		}
	}
	if !slices.Equal(last[0].GetChanges(), last[1].GetChanges()) {
		t.Errorf("the replicas name different changes for one rotation: %q and %q", last[0].GetChanges(), last[1].GetChanges())
	}
	leader, other := rs[0], rs[1]
	if rs[1].srv.Leading() {
		leader, other = rs[1], rs[0]
	} else if !rs[0].srv.Leading() {
		t.Fatal("a rotation was refreshed, but no replica leads")
	}
	i := slices.Index(rs, other)
	leader.stop()
	rotate(t, jobFiles)
	if v := next(i, v0, v1); v == "" {
		t.Fatal("no third keystore")
	}
	// The third keystore can only come from the one replica left leading
	// (its Watcher runs only then); whether it still leads now is the
	// engine's timing under load, not the guarantee.

}

// rotate writes a new keystore for job's passwords.
func rotate(t *testing.T, job *filetest.Job) {
	t.Helper()
	leaf, err := job.CA.Issue("node1.example.com")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.JKSKeystore("node", leaf.Key, leaf.Chain, []byte(job.StorePassword), []byte(job.KeyPassword))
	if err != nil {
		t.Fatal(err)
	}
	filetest.Put(t, job.Root, "spark/keystore", ks)
}

// testRestartRefreshesWatches: a job watched before every replica stopped
// is refreshed after the restart by the new leader, whose Watch stream is
// on another replica: the leader adopts it from the shared state.
func testRestartRefreshesWatches(t *testing.T, e engine) {
	root, cluster := t.TempDir(), newCluster()
	jobFiles := filetest.Seed(t, root, haCanary)
	req := &hostv1.WatchRequest{Ship: shipReq("job-rewatch", tasks("tm", 1), hostv1.Target_TARGET_FILES)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	watchOn := func(r *replica) chan *hostv1.WatchResponse {
		got := make(chan *hostv1.WatchResponse, 100)
		wctx, wcancel := context.WithCancel(ctx)
		t.Cleanup(wcancel)
		wg.Go(func() {
			err := r.client.WatchJob(wctx, req, func(resp *hostv1.WatchResponse) error { got <- resp; return nil })
			if err != nil && wctx.Err() == nil {
				t.Logf("watch: %v", err)
			}
		})
		return got
	}
	recv := func(got chan *hostv1.WatchResponse, old ...string) string {
		t.Helper()
		deadline := time.After(time.Minute)
		for {
			select {
			case resp := <-got:
				if v := keystoreVersion(resp); v != "" && !slices.Contains(old, v) {
					return v
				}
			case <-deadline:
				t.Fatal("no new keystore within a minute")
			}
		}
	}
	a := runReplica(t, e, cluster, root, time.Hour)
	v0 := recv(watchOn(a))
	a.stop() // every replica gone

	leader := runReplica(t, e, cluster, root, 100*time.Millisecond)
	<-leader.srv.Led()
	follower := runReplica(t, e, cluster, root, 100*time.Millisecond)
	got := watchOn(follower)
	if v := recv(got); v != v0 {
		t.Fatalf("after the restart the stream starts at %s, want %s", v, v0)
	}
	rotate(t, jobFiles)
	recv(got, v0)
	if follower.srv.Leading() {
		t.Log("the second replica took the leadership over (a lease lapsed under load): this run did not exercise the leader's adoption")
	}
}

// testOneWritePerShip: a new job's Ship and a known job's Ship of 10 tasks
// each cost one write transaction (one ZooKeeper multi-op: the job's record
// and the grants, then the grants alone); the first Ship of the job on a
// replica that did not write the record pays two more (a failed multi-op,
// then the grants', then the record given this build's later expiry).
func testOneWritePerShip(t *testing.T, e engine) {
	root, cluster := seedRoot(t), newCluster()
	a, b := newReplica(t, e, cluster, root), newReplica(t, e, cluster, root)
	for _, c := range []struct {
		name string
		r    *replica
		want int64
	}{{"a new job", a, 1}, {"the job again", a, 1}, {"the job on another replica", b, 3}, {"the job again there", b, 1}} {
		before := e.writes(t)
		if _, err := c.r.srv.Ship(context.Background(), shipReq("job-writes", tasks(fmt.Sprint("w", before), 10), hostv1.Target_TARGET_FETCH)); err != nil {
			t.Fatal(err)
		}
		if got := e.writes(t) - before; got != c.want {
			t.Errorf("%s: %d write transactions, want %d", c.name, got, c.want)
		}
	}
}

// BenchmarkShipNewJobReplicas is a Ship of a new job of 2 tasks with fetch
// URIs: in memory (--ha none), and through replicas.Store on Memory and on
// a local 3-server ZooKeeper ensemble (one multi-op per Ship).
func BenchmarkShipNewJobReplicas(b *testing.B) {
	root := seedRoot(b)
	for _, name := range []string{"none", "memory", "zookeeper"} {
		b.Run(name, func(b *testing.B) {
			var srv *server.Server
			if name == "none" {
				f := newFixture(b)
				srv = f.srv
			} else {
				srv = newReplica(b, newEngine(b, name), newCluster(), root).srv
			}
			i := 0
			for b.Loop() {
				req := shipReq(fmt.Sprint("job-", i), tasks("exec", 2), hostv1.Target_TARGET_FETCH)
				if _, err := srv.Ship(context.Background(), req); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// testRecordOutlivesEveryReplicasJob: B builds a job A built earlier (so
// B's build expires later); after A's expiry and a sweep, a URI B handed
// out is still served by a third replica: the record lives as long as the
// latest build.
func testRecordOutlivesEveryReplicasJob(t *testing.T, e engine) {
	root, cluster := seedRoot(t), newCluster()
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	clock := func() time.Time { return *now.Load() }
	advance := func(d time.Duration) { n := now.Load().Add(d); now.Store(&n) }
	a, b, c := newReplicaAt(t, e, cluster, root, clock), newReplicaAt(t, e, cluster, root, clock), newReplicaAt(t, e, cluster, root, clock)
	ship := func(r *replica) *hostv1.ShipResponse {
		req := shipReq("job-outlive", tasks(fmt.Sprint("x", now.Load().Unix()), 1), hostv1.Target_TARGET_FETCH)
		req.TtlSeconds = 60
		resp, err := r.srv.Ship(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	ship(a)
	advance(50 * time.Second)
	fromB := ship(b)
	advance(20 * time.Second) // A's build has expired, B's has not
	c.srv.Sweep()
	if code, _ := c.get(t, fromB.GetTasks()[0].GetUris()[0].GetValue()); code != 200 {
		t.Fatalf("B's URI, within B's TTL, after A's expiry and a sweep, through a third replica: %d, want 200", code)
	}
}

// readCounting is a State that counts its reads of records.
type readCounting struct {
	replicas.State
	gets atomic.Int64
}

func (c *readCounting) Get(ctx context.Context, kind replicas.Kind, name string) (replicas.Record, error) {
	c.gets.Add(1)
	return c.State.Get(ctx, kind, name)
}

// TestNewJobShipReadsNoRecord: a Ship of a new job writes its record and
// grants and reads nothing back (its record, just created, is its own); a
// replica that ships a job whose record another replica wrote reads it once,
// to give it the later expiry.
func TestNewJobShipReadsNoRecord(t *testing.T) {
	root := seedRoot(t)
	mem := replicas.NewMemory()
	replica := func(st replicas.State) *server.Server {
		store, err := replicas.NewStore(st, replicastest.Key)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &config.Config{DefaultBackend: "file", Backends: map[string]config.Backend{"file": {Config: map[string]string{"root": root}}}}
		h := host.New(cfg, host.WithBuiltin("file", file.New))
		t.Cleanup(func() { _ = h.Close() })
		return server.New(h, fetch.New("https://keyship.example"), server.WithReplicas(store))
	}
	sa, sb := &readCounting{State: mem}, &readCounting{State: mem.Replica()}
	a, b := replica(sa), replica(sb)
	if _, err := a.Ship(context.Background(), shipReq("job-reads", tasks("a", 2), hostv1.Target_TARGET_FETCH)); err != nil {
		t.Fatal(err)
	}
	if got := sa.gets.Load(); got != 0 {
		t.Errorf("a new job's Ship read %d records, want 0", got)
	}
	if _, err := b.Ship(context.Background(), shipReq("job-reads", tasks("b", 2), hostv1.Target_TARGET_FETCH)); err != nil {
		t.Fatal(err)
	}
	if got := sb.gets.Load(); got == 0 {
		t.Errorf("a Ship of a job whose record another replica wrote read no record, want it read to outlive it")
	}
}
