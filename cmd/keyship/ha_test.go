package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/keyship/keyship/backends/file/filetest"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/server/replicas/zookeeper/zktest"
)

// haKeyName is where a replicaSet puts the replicas' 32-byte --ha-key in
// the job's file backend (read through the file plugin, as any ref).
const haKeyName = "keyship/ha-key"

// haSessionTimeout is the replicas' ZooKeeper session timeout when keyship
// serve takes one (--ha-zookeeper-session-timeout): short, so that a
// killed refresher's leadership ends within seconds.
const haSessionTimeout = 4 * time.Second

// eventBound bounds every wait on an event of these tests (a ship, a
// Watch message, an election): never reached when keyship works, generous
// for a 2-core machine under stress.
const eventBound = 3 * time.Minute

// replicaSet is a test's keyship serve --ha zookeeper replicas on one
// ZooKeeper ensemble and one file backend: each on its own unix socket and
// HTTPS fetch port, sharing the cluster id and the --ha-key.
type replicaSet struct {
	t       testing.TB
	j       *job
	zk      *zktest.Ensemble
	cluster string
	extra   []string

	mu   sync.Mutex
	reps []*replica
	cas  *x509.CertPool
	n    int
}

// replica is one keyship serve of a replicaSet.
type replica struct {
	*serving
	name string
	// client calls its API over its unix socket.
	client *server.Client
	// fetchHost is its fetch server's host:port.
	fetchHost string
	// dead is set before the replica is killed: a call to it that fails
	// from then on was in flight to a killed replica.
	dead atomic.Bool
	// inFlight counts the load's calls to it not answered yet.
	inFlight atomic.Int64
}

// newReplicaSet plants a fresh --ha-key in j's backend; extra are flags
// every replica gets.
func newReplicaSet(t testing.TB, j *job, zk *zktest.Ensemble, extra ...string) *replicaSet {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	j.put(t, haKeyName, key)
	return &replicaSet{t: t, j: j, zk: zk, cluster: "faults", extra: extra, cas: x509.NewCertPool()}
}

// haFlags are the flags that make a keyship serve a replica of rs.
func (rs *replicaSet) haFlags() []string {
	args := []string{"--ha", "zookeeper", "--ha-zookeeper-quorum", strings.Join(rs.zk.Servers, ","),
		"--ha-cluster-id", rs.cluster, "--ha-key", "file:" + haKeyName}
	return append(args, "--ha-zookeeper-session-timeout", haSessionTimeout.String())
}

// sessionTimeout is the ZooKeeper session timeout the replicas run with.
func (rs *replicaSet) sessionTimeout() time.Duration { return haSessionTimeout }

// start starts one more replica and waits until its API listens.
func (rs *replicaSet) start() *replica {
	t := rs.t
	t.Helper()
	rs.mu.Lock()
	rs.n++
	name := fmt.Sprintf("replica-%d", rs.n)
	rs.mu.Unlock()
	dir := t.TempDir()
	sock, ca := filepath.Join(dir, "keyship.sock"), filepath.Join(dir, "fetch-ca.pem")
	args := append([]string{"--listen", "unix://" + sock, "--fetch-listen", "127.0.0.1:0", "--fetch-ca-out", ca}, rs.haFlags()...)
	s := serve(t, rs.j, append(args, rs.extra...)...)
	c, err := server.Dial("unix://"+sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	u, err := url.Parse(s.fetch)
	if err != nil || u.Host == "" {
		t.Fatalf("%s: fetch server address %q: %v", name, s.fetch, err)
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{serving: s, name: name, client: c, fetchHost: u.Host}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if !rs.cas.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: no certificate in %s", name, ca)
	}
	rs.reps = append(rs.reps, r)
	return r
}

// kill kills r with SIGKILL (marking it dead first) and waits for it to
// exit.
func (r *replica) kill() {
	r.dead.Store(true)
	_ = r.cmd.Process.Kill()
	<-r.done
}

// live returns the replicas not killed, in start order.
func (rs *replicaSet) live() []*replica {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var out []*replica
	for _, r := range rs.reps {
		if !r.dead.Load() {
			out = append(out, r)
		}
	}
	return out
}

// fetchClient trusts every replica's fetch certificate.
func (rs *replicaSet) fetchClient() *http.Client {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: rs.cas.Clone(), MinVersion: tls.VersionTLS12}}}
}

// fetchFrom GETs uri from replica r's fetch server instead of the one that
// handed it out (as a VIP in front of them would send it): the status and
// the body.
func fetchFrom(t testing.TB, c *http.Client, r *replica, uri string) (int, []byte) {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("a fetch URI does not parse: %v", err) // the URI holds a token: not printed
	}
	u.Host = r.fetchHost
	resp, err := c.Get(u.String())
	if err != nil {
		t.Fatalf("fetch from %s: %v", r.name, strings.ReplaceAll(err.Error(), uri, "<uri>"))
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("fetch from %s: reading the body: %v", r.name, err)
	}
	return resp.StatusCode, body
}

// fetchJobReq is a new job's Ship for one executor, its stores as fetch
// URIs, within its TTL for the whole test.
func fetchJobReq(id string) *hostv1.ShipRequest {
	return &hostv1.ShipRequest{JobId: id, Spec: []byte(filetest.Spec), TtlSeconds: 3600,
		Tasks:   []*hostv1.Task{{Id: "executor-1", Role: "executor"}},
		Targets: []hostv1.Target{hostv1.Target_TARGET_FETCH}}
}

// uris returns every fetch URI of a Ship's answer.
func uris(resp *hostv1.ShipResponse) []string {
	var out []string
	for _, task := range resp.GetTasks() {
		for _, u := range task.GetUris() {
			out = append(out, u.GetValue())
		}
	}
	return out
}

// shipLoad ships new jobs from a few callers, round-robin over a
// replicaSet's live replicas, until stopped. A call that fails is retried
// at once on the other live replicas, and counted by where it failed.
type shipLoad struct {
	rs *replicaSet

	stop    atomic.Bool
	wg      sync.WaitGroup
	next    atomic.Int64 // round-robin counter
	shipped atomic.Int64
	tick    chan struct{} // a ship succeeded

	mu sync.Mutex
	// uris are the fetch URIs of every answered Ship.
	uris []string
	// failedKilled counts the calls that failed in flight to a killed
	// replica; retriedShipped those of them that shipped on another.
	failedKilled, retriedShipped int
	// failedLive are the calls that failed on a replica that was not
	// killed (each with its error), and unshipped the jobs no replica
	// shipped.
	failedLive []string
	unshipped  []string
	// slowest is the longest a job took to ship (with its retries), since
	// the last mark.
	slowest time.Duration
}

// startShipLoad starts callers concurrent callers.
func startShipLoad(rs *replicaSet, callers int) *shipLoad {
	l := &shipLoad{rs: rs, tick: make(chan struct{}, 1)}
	for c := range callers {
		l.wg.Go(func() {
			for i := 0; !l.stop.Load(); i++ {
				l.ship(fmt.Sprintf("load-%d-%d", c, i))
			}
		})
	}
	return l
}

func (l *shipLoad) ship(id string) { l.shipFrom(id, time.Now(), false) }

// retry ships job id, whose call failed in flight to a killed replica, on
// the live replicas.
func (l *shipLoad) retry(id string) {
	l.mu.Lock()
	l.failedKilled++
	l.mu.Unlock()
	l.shipFrom(id, time.Now(), true)
}

func (l *shipLoad) shipFrom(id string, began time.Time, failedOnKilled bool) {
	live := l.rs.live()
	first := int(l.next.Add(1)) % len(live)
	order := append(live[first:len(live):len(live)], live[:first]...)
	for try, r := range order {
		if try > 0 && r.dead.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), eventBound)
		r.inFlight.Add(1)
		resp, err := r.client.Ship(ctx, fetchJobReq(id))
		r.inFlight.Add(-1)
		cancel()
		l.mu.Lock()
		if err == nil {
			l.uris = append(l.uris, uris(resp)...)
			if failedOnKilled {
				l.retriedShipped++
			}
			l.slowest = max(l.slowest, time.Since(began))
			l.mu.Unlock()
			l.shipped.Add(1)
			select {
			case l.tick <- struct{}{}:
			default:
			}
			return
		}
		if r.dead.Load() {
			l.failedKilled++
			failedOnKilled = true
		} else {
			l.failedLive = append(l.failedLive, fmt.Sprintf("%s on %s: %v", id, r.name, err))
		}
		l.mu.Unlock()
	}
	l.mu.Lock()
	l.unshipped = append(l.unshipped, id)
	l.mu.Unlock()
}

// waitShipped waits until n jobs have shipped in all.
func (l *shipLoad) waitShipped(t testing.TB, n int64) {
	t.Helper()
	bound := time.After(eventBound)
	for l.shipped.Load() < n {
		select {
		case <-l.tick:
		case <-bound:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("%d of %d jobs shipped within %s; failures on live replicas: %d %q", l.shipped.Load(), n, eventBound, len(l.failedLive), l.failedLive[:min(3, len(l.failedLive))])
		}
	}
}

// markSlowest returns the longest ship since the last mark, and starts
// over.
func (l *shipLoad) markSlowest() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.slowest
	l.slowest = 0
	return d
}

// finish stops the callers and waits for them.
func (l *shipLoad) finish() {
	l.stop.Store(true)
	l.wg.Wait()
}

// holdShip starts a Ship of job id on r as Connect JSON over r's socket
// and sends only part of its body: a call certainly in flight to r (the
// load's may all be answered at the instant of a kill). answer finishes
// the body and reads the answer.
func holdShip(t testing.TB, r *replica, id string) (answer func() error) {
	t.Helper()
	conn, err := net.Dial("unix", strings.TrimPrefix(r.api, "unix://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	body := fmt.Sprintf(`{"jobId": %q, "spec": %q, "ttlSeconds": 3600, "tasks": [{"id": "executor-1", "role": "executor"}], "targets": ["TARGET_FETCH"]}`,
		id, base64.StdEncoding.EncodeToString([]byte(filetest.Spec)))
	if _, err := fmt.Fprintf(conn, "POST /keyship.host.v1.ShipperService/Ship HTTP/1.1\r\nHost: keyship\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:20]); err != nil {
		t.Fatal(err)
	}
	return func() error {
		if _, err := io.WriteString(conn, body[20:]); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(eventBound))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
}

// TestHAFaultsUnderLoad (issue 19): three keyship serve --ha zookeeper
// replicas on a three-server ZooKeeper ensemble, under a load of new-job
// Ships round-robin over them from 4 callers. One replica is killed with
// SIGKILL (with a call certainly in flight to it, besides the load's),
// then the ZooKeeper leader. The only calls that fail are those
// in flight to the killed replica, and each ships when retried on
// another; every fetch URI handed out (by any replica, the killed one
// included) is served once by a surviving replica, with the bytes every
// other URI of that file has, and refused after.
func TestHAFaultsUnderLoad(t *testing.T) {
	zk := zktest.Start(t, 3)
	j := newJob(t)
	rs := newReplicaSet(t, j, zk)
	a, b, c := rs.start(), rs.start(), rs.start()
	for _, r := range []*replica{a, b, c} {
		if _, err := r.client.Ship(context.Background(), fetchJobReq("warm-up-"+r.name)); err != nil {
			t.Fatalf("warm-up Ship on %s: %v\n%s", r.name, err, r.stderr.String())
		}
	}

	const phase = 80 // Ships before each fault, and after the last
	load := startShipLoad(rs, 4)
	defer load.finish()
	load.waitShipped(t, phase)
	calm := load.markSlowest()
	held := holdShip(t, b, "held-in-flight")
	loadInFlight := b.inFlight.Load()
	b.kill()
	if err := held(); err != nil && strings.HasPrefix(err.Error(), "HTTP") {
		t.Errorf("a call in flight to a replica killed with SIGKILL got an answer: %v", err)
	}
	load.retry("held-in-flight")
	load.waitShipped(t, 2*phase)
	afterReplica := load.markSlowest()
	leader := zk.Leader(t)
	zk.Kill(leader)
	load.waitShipped(t, 3*phase)
	afterZK := load.markSlowest()
	load.finish()

	// Every URI once from a surviving replica (a and c in turn), then again
	// from the other one.
	fc := rs.fetchClient()
	survivors := []*replica{a, c}
	bodies := map[string][]byte{} // the bytes of each file name
	lost, twice, differ := 0, 0, 0
	for i, uri := range load.uris {
		first, second := survivors[i%2], survivors[(i+1)%2]
		code, body := fetchFrom(t, fc, first, uri)
		if code != http.StatusOK {
			lost++
			continue
		}
		name := path.Base(uri)
		if prev, ok := bodies[name]; !ok {
			bodies[name] = body
		} else if !bytes.Equal(prev, body) {
			differ++
		}
		if code, _ := fetchFrom(t, fc, second, uri); code == http.StatusOK {
			twice++
		}
	}
	t.Logf("3 replicas, 3 ZooKeeper servers, 4 callers: %d jobs shipped (%d URIs); %s killed (SIGKILL) after %d, ZooKeeper leader (server %d) after %d",
		load.shipped.Load(), len(load.uris), b.name, phase, leader+1, 2*phase)
	t.Logf("failed calls: %d in flight to the killed replica (the held one and %d of the load's, which had %d in flight to it at the kill; %d shipped when retried on another), %d on live replicas; jobs never shipped: %d",
		load.failedKilled, load.failedKilled-1, loadInFlight, load.retriedShipped, len(load.failedLive), len(load.unshipped))
	t.Logf("grants: %d lost, %d served twice, %d served with other bytes than the same file of another job",
		lost, twice, differ)
	t.Logf("slowest job to ship (with retries): %s before the faults, %s after the replica's kill, %s after the ZooKeeper leader's",
		calm.Round(time.Millisecond), afterReplica.Round(time.Millisecond), afterZK.Round(time.Millisecond))

	if len(load.failedLive) > 0 {
		t.Errorf("%d calls failed on replicas that were not killed, e.g. %q", len(load.failedLive), load.failedLive[:min(3, len(load.failedLive))])
	}
	if load.retriedShipped != load.failedKilled || len(load.unshipped) > 0 {
		t.Errorf("%d calls failed on the killed replica, %d shipped on retry; jobs never shipped: %q", load.failedKilled, load.retriedShipped, load.unshipped)
	}
	if lost > 0 {
		t.Errorf("%d of %d fetch URIs handed out were not served by a surviving replica", lost, len(load.uris))
	}
	if twice > 0 {
		t.Errorf("%d fetch URIs were served twice (once by each surviving replica)", twice)
	}
	if differ > 0 {
		t.Errorf("%d fetches served other bytes than the same file of another job of the same content", differ)
	}
	if len(load.uris) < 3*phase {
		t.Errorf("only %d URIs for %d jobs", len(load.uris), load.shipped.Load())
	}
	for _, r := range []*replica{a, c} {
		if strings.Contains(r.stderr.String(), canary) {
			t.Errorf("%s logged the keystore password", r.name)
		}
	}
}

// refresher returns the live replica that leads an election of rs's
// replicas (the one that refreshes watched jobs), found the way an
// operator would: the lowest node of the election under
// <root>/<cluster-id>/leader is an ephemeral node of the leader's
// ZooKeeper session; the servers' `cons` names that session's client
// address, and /proc the replica holding that socket. It waits (bounded)
// until a live replica leads.
func (rs *replicaSet) refresher(t testing.TB) *replica {
	t.Helper()
	conn, _, err := zk.Connect(rs.zk.Servers, 4*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	base := path.Join("/keyship", rs.cluster, "leader")
	deadline := time.Now().Add(eventBound)
	var last string
	for {
		owners, err := electionOwners(conn, base)
		if err == nil {
			for _, r := range rs.live() {
				for _, sid := range owners {
					if rs.zk.SessionOf(sid, r.cmd.Process.Pid) {
						return r
					}
				}
			}
			last = fmt.Sprintf("leaders' sessions %x match no live replica", owners)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live replica leads an election under %s within %s: %s", base, eventBound, last)
		}
		time.Sleep(100 * time.Millisecond) // polling ZooKeeper, as an operator's script would
	}
}

// electionOwners returns the session of each election's leader under base.
func electionOwners(conn *zk.Conn, base string) ([]int64, error) {
	elections, _, err := conn.Children(base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", base, err)
	}
	var owners []int64
	for _, e := range elections {
		nodes, _, err := conn.Children(path.Join(base, e))
		if err != nil {
			return nil, err
		}
		if len(nodes) == 0 {
			continue
		}
		seq := func(n string) string { return n[max(0, len(n)-10):] }
		lowest := slices.MinFunc(nodes, func(x, y string) int { return strings.Compare(seq(x), seq(y)) })
		_, st, err := conn.Get(path.Join(base, e, lowest))
		if err != nil {
			return nil, err
		}
		owners = append(owners, st.EphemeralOwner)
	}
	if len(owners) == 0 {
		return nil, fmt.Errorf("no election under %s has a node yet", base)
	}
	return owners, nil
}

// watchStream is one Watch call's stream, read into a channel.
type watchStream struct {
	r      *replica
	msgs   chan *hostv1.WatchResponse
	ended  chan error
	cancel context.CancelFunc
	// unnamed is set when the awaited bundle named no change.
	unnamed bool
}

// watch opens a Watch of req on r and reads it until the test ends.
func watch(t testing.TB, r *replica, req *hostv1.ShipRequest) *watchStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := r.client.Watch(ctx, &hostv1.WatchRequest{Ship: req})
	if err != nil {
		t.Fatalf("Watch on %s: %v", r.name, err)
	}
	w := &watchStream{r: r, msgs: make(chan *hostv1.WatchResponse, 16), ended: make(chan error, 1), cancel: cancel}
	go func() {
		for {
			m, err := st.Recv()
			if err != nil {
				w.ended <- err
				return
			}
			w.msgs <- m
		}
	}()
	return w
}

// next waits for the stream's next message and wants its reason.
func (w *watchStream) next(t testing.TB, want hostv1.WatchReason) *hostv1.WatchResponse {
	t.Helper()
	select {
	case m := <-w.msgs:
		if m.GetReason() != want {
			t.Fatalf("Watch on %s: %s (%q), want %s", w.r.name, m.GetReason(), m.GetChanges(), want)
		}
		return m
	case err := <-w.ended:
		t.Fatalf("Watch on %s ended waiting for %s: %v\n%s", w.r.name, want, err, w.r.stderr.String())
	case <-time.After(eventBound):
		t.Fatalf("Watch on %s: no %s within %s\n%s", w.r.name, want, eventBound, w.r.stderr.String())
	}
	return nil
}

// awaitKeystore waits for the CHANGED bundle whose keystore.jks (fetched
// from the replica that streamed it, through the message's own URI) is ks,
// and returns how many CHANGED bundles with another keystore came first
// (after a failover a stream may see a bundle again).
func (w *watchStream) awaitKeystore(t testing.TB, rs *replicaSet, ks []byte) (stale int) {
	t.Helper()
	for {
		m := w.next(t, hostv1.WatchReason_WATCH_REASON_CHANGED)
		var got []byte
		for _, u := range uris(m.GetShipment()) {
			if path.Base(u) == "keystore.jks" {
				code, body := fetchFrom(t, rs.fetchClient(), w.r, u)
				if code != http.StatusOK {
					t.Fatalf("Watch on %s: the new bundle's keystore.jks: HTTP %d", w.r.name, code)
				}
				got = body
			}
		}
		if got == nil {
			t.Fatalf("Watch on %s: a CHANGED bundle without a keystore.jks URI", w.r.name)
		}
		if bytes.Equal(got, ks) {
			if len(m.GetChanges()) == 0 {
				w.unnamed = true
			}
			return stale
		}
		stale++
	}
}

// watchJobReq is a watched job: its stores as fetch URIs, within its TTL
// for the whole test.
func watchJobReq(id string) *hostv1.ShipRequest {
	req := fetchJobReq(id)
	req.Targets = []hostv1.Target{hostv1.Target_TARGET_FETCH, hostv1.Target_TARGET_MESOS}
	return req
}

// TestHAWatchSurvivesTheRefresher (issue 19): one job watched on each of
// three replicas; the replica that refreshes is killed with SIGKILL and
// the job's stores are rotated in the backend: the new bundle still
// reaches the Watch stream on each surviving replica (its keystore.jks,
// fetched through the streamed URI, is the rotated one), once another has
// taken the refresh over (within the ZooKeeper session timeout and a
// refresh; the figure is logged).
func TestHAWatchSurvivesTheRefresher(t *testing.T) {
	zk := zktest.Start(t, 3)
	j := newJob(t)
	const refresh = time.Second
	rs := newReplicaSet(t, j, zk, "--refresh", refresh.String())
	reps := []*replica{rs.start(), rs.start(), rs.start()}
	streams := map[*replica]*watchStream{}
	for _, r := range reps {
		streams[r] = watch(t, r, watchJobReq("watched"))
		streams[r].next(t, hostv1.WatchReason_WATCH_REASON_INITIAL)
	}
	leader := rs.refresher(t)
	leader.kill()
	killed := time.Now()
	ks := rotateStores(t, j, "rotated CA")
	var slowest time.Duration
	var unnamed []string
	stale := 0
	for _, r := range rs.live() {
		stale += streams[r].awaitKeystore(t, rs, ks)
		slowest = max(slowest, time.Since(killed))
		if streams[r].unnamed {
			unnamed = append(unnamed, r.name)
		}
	}
	if len(unnamed) > 0 {
		t.Errorf("the new bundle on %q names no change (CHANGED bundles without their changes)", unnamed)
	}
	next := rs.refresher(t)
	t.Logf("refresher %s killed (SIGKILL), stores rotated: the new bundle reached the Watch streams on %d surviving replicas within %s of the kill (ZooKeeper session timeout %s + refresh %s = %s), after %d CHANGED bundles with the old keystore; %s refreshes now",
		leader.name, len(rs.live()), slowest.Round(time.Millisecond), rs.sessionTimeout(), refresh, rs.sessionTimeout()+refresh, stale, next.name)
	if next == leader {
		t.Errorf("the killed %s still leads", leader.name)
	}
}

// TestHAFullRestart (issue 19): with jobs shipped (one with a URI already
// fetched) and one watched, every replica is killed and one new replica
// started on the same ZooKeeper: the jobs ship again, the URIs not fetched
// are served and the fetched one is not, and a Watch of the job sees a
// rotation.
func TestHAFullRestart(t *testing.T) {
	zk := zktest.Start(t, 3)
	j := newJob(t)
	rs := newReplicaSet(t, j, zk, "--refresh", "1s")
	a, b := rs.start(), rs.start()
	before, err := a.client.Ship(context.Background(), fetchJobReq("before"))
	if err != nil {
		t.Fatal(err)
	}
	half, err := b.client.Ship(context.Background(), fetchJobReq("half"))
	if err != nil {
		t.Fatal(err)
	}
	fc := rs.fetchClient()
	fetched := uris(half)[0]
	if code, _ := fetchFrom(t, fc, a, fetched); code != http.StatusOK {
		t.Fatalf("a URI of b's job, fetched from a before the restart: HTTP %d", code)
	}
	w := watch(t, b, watchJobReq("before"))
	w.next(t, hostv1.WatchReason_WATCH_REASON_INITIAL)
	a.kill()
	b.kill()

	c := rs.start()
	fc = rs.fetchClient()
	served, twice := 0, 0
	for _, uri := range append(uris(before), uris(half)[1:]...) {
		if code, _ := fetchFrom(t, fc, c, uri); code == http.StatusOK {
			served++
		}
		if code, _ := fetchFrom(t, fc, c, uri); code == http.StatusOK {
			twice++
		}
	}
	reused, _ := fetchFrom(t, fc, c, fetched)
	again, err := c.client.Ship(context.Background(), fetchJobReq("before"))
	if err != nil {
		t.Fatalf("Ship of a job within its TTL after a full restart: %v\n%s", err, c.stderr.String())
	}
	w = watch(t, c, watchJobReq("before"))
	w.next(t, hostv1.WatchReason_WATCH_REASON_INITIAL)
	w.awaitKeystore(t, rs, rotateStores(t, j, "rotated CA"))
	want := len(uris(before)) + len(uris(half)) - 1
	t.Logf("after a full restart (every replica killed, one new started): %d of %d URIs not fetched before were served, %d twice; the one fetched before: HTTP %d; the job shipped again (%d URIs); its Watch saw a rotation",
		served, want, twice, reused, len(uris(again)))
	if served != want {
		t.Errorf("%d of %d URIs not fetched before the restart were served after it", served, want)
	}
	if twice > 0 {
		t.Errorf("after a full restart, %d URIs were served twice", twice)
	}
	if reused == http.StatusOK {
		t.Error("after a full restart, a URI fetched before it was served again")
	}
}

// TestDeployArgsAreServeFlags: the keyship serve arguments of the Marathon
// app and of the Kubernetes Deployment under deploy/ parse as this
// keyship's flags (names and values): keyship serve ARGS --help exits 0.
func TestDeployArgsAreServeFlags(t *testing.T) {
	data, err := os.ReadFile("../../deploy/marathon/keyship.json")
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		Args []string `json:"args"`
	}
	if err := json.Unmarshal(data, &app); err != nil {
		t.Fatal(err)
	}
	data, err = os.ReadFile("../../deploy/kubernetes/keyship-replicas.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var kubeArgs []string
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		var d appsv1.Deployment
		if err := yaml.Unmarshal(doc, &d); err == nil && d.Kind == "Deployment" {
			kubeArgs = d.Spec.Template.Spec.Containers[0].Args
		}
	}
	for file, args := range map[string][]string{"deploy/marathon/keyship.json": app.Args, "deploy/kubernetes/keyship-replicas.yaml": kubeArgs} {
		if len(args) < 2 || args[0] != "serve" {
			t.Errorf("%s: args %q, want serve and its flags", file, args)
			continue
		}
		if r := keyship(t, append(args, "--help")...); r.code != 0 {
			t.Errorf("%s: keyship %s --help: exit %d: %s", file, strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

// TestHAReadyzFollowsTheSharedState: a --ha zookeeper replica's /readyz
// is ready, naming the shared state, while ZooKeeper answers, and turns
// not ready (503, naming the shared state) once every ZooKeeper server is
// gone, so that a VIP or a Service routes around it.
func TestHAReadyzFollowsTheSharedState(t *testing.T) {
	zk := zktest.Start(t, 1)
	j := newJob(t)
	rs := newReplicaSet(t, j, zk, "--metrics-listen", "127.0.0.1:0", "--probe-interval", "200ms")
	r := rs.start()
	web := &http.Client{Timeout: 10 * time.Second}
	var body string
	if !waitFor(eventBound, func() bool {
		var code int
		code, body = get(t, web, r.metrics+"/readyz")
		return code == http.StatusOK && strings.Contains(body, "shared state")
	}) {
		t.Fatalf("/readyz of a replica on a live ZooKeeper never ready naming the shared state:\n%s", body)
	}
	zk.Stop()
	if !waitFor(eventBound, func() bool {
		var code int
		code, body = get(t, web, r.metrics+"/readyz")
		return code == http.StatusServiceUnavailable
	}) {
		t.Fatalf("/readyz stayed ready with every ZooKeeper server gone:\n%s", body)
	}
	if !strings.Contains(body, "shared state") || !strings.Contains(body, "not ready") {
		t.Errorf("/readyz does not say the shared state is not ready:\n%s", body)
	}
	t.Logf("/readyz with ZooKeeper gone:\n%s", body)
}
