// Package replicastest is the conformance suite every replicas.State runs:
// records, compare-and-set single use across two clients, expiry, recovery
// after every client closed, leader election and takeover after a crash,
// and sealing (a canary planted in a job's spec must not appear in
// anything the engine keeps).
//
//	func TestConformance(t *testing.T) {
//		replicastest.Run(t, func(t *testing.T) replicastest.Shared {
//			root := newRoot(t)
//			return replicastest.Shared{Open: func(t testing.TB) replicas.State { … }, …}
//		})
//	}
package replicastest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyship/keyship/shipper/server/replicas"
)

// Shared is one fresh, empty shared state under test.
type Shared struct {
	// Open returns a new client of the state, as a new replica would open
	// it; the suite closes it.
	Open func(t testing.TB) replicas.State
	// Crashable returns a client and a function that cuts it off from the
	// engine without a goodbye, as kill -9 or a partition would: its session
	// or lease must end on the engine's own clock. Nil skips the crash test.
	Crashable func(t testing.TB) (replicas.State, func())
	// Raw returns everything the engine keeps, in any encoding that holds
	// record bytes as they are (data files, objects as JSON), for the canary
	// scan.
	Raw func(t testing.TB) []byte
	// DoubleConsumes is how many grants the single-use test consumes twice
	// at once (default 1000).
	DoubleConsumes int
	// Takeover bounds how long the crash test waits for another client to
	// lead (default 2 minutes); it is a failure bound, not a measurement.
	Takeover time.Duration
}

// Key is the sealing key the suite uses.
var Key = bytes.Repeat([]byte{0x5a}, replicas.KeySize)

// clock is a settable clock for expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Run runs the suite; newShared is called once per subtest.
func Run(t *testing.T, newShared func(t *testing.T) Shared) {
	t.Run("Records", func(t *testing.T) { testRecords(t, newShared(t)) })
	t.Run("CreateAllOrNothing", func(t *testing.T) { testCreateAllOrNothing(t, newShared(t)) })
	t.Run("CompareAndSet", func(t *testing.T) { testCompareAndSet(t, newShared(t)) })
	t.Run("SingleUseAcrossClients", func(t *testing.T) { testSingleUse(t, newShared(t)) })
	t.Run("Expiry", func(t *testing.T) { testExpiry(t, newShared(t)) })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, newShared(t)) })
	t.Run("Election", func(t *testing.T) { testElection(t, newShared(t)) })
	t.Run("TakeoverAfterCrash", func(t *testing.T) { testTakeover(t, newShared(t)) })
	t.Run("Sealing", func(t *testing.T) { testSealing(t, newShared(t)) })
}

func open(t testing.TB, sh Shared, opts ...replicas.StoreOption) (*replicas.Store, replicas.State) {
	t.Helper()
	st := sh.Open(t)
	t.Cleanup(func() { _ = st.Close() })
	s, err := replicas.NewStore(st, Key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Job returns a job record as a Ship would write it.
func Job(id string, expires time.Time, spec string) *replicas.Job {
	return &replicas.Job{
		ID: id,
		Request: replicas.Request{
			Spec: []byte(spec), Dialect: "dcos",
			Tasks:   []replicas.Task{{ID: "driver-1", Role: "driver", Hosts: []string{"10.0.0.1"}}, {ID: "exec-1", Role: "executor"}},
			Targets: []string{"TARGET_FETCH"}, ConsumerRelease: "4.0.1", FetchUses: 1,
		},
		Versions: map[string]string{"/spark/keystore": "3", "/spark/keystore_password": "1"},
		Expires:  expires,
	}
}

// Grants returns n grants of job, one use of keystore.jks and two of
// truststore.jks each, and their tokens.
func Grants(jobID string, n int, expires time.Time) ([]replicas.Grant, [][]byte) {
	gs := make([]replicas.Grant, n)
	tokens := make([][]byte, n)
	for i := range gs {
		tok := make([]byte, 32)
		_, _ = rand.Read(tok)
		tokens[i] = tok
		gs[i] = replicas.Grant{TokenHash: sha256.Sum256(tok), JobID: jobID, Task: fmt.Sprintf("exec-%d", i),
			Uses: map[string]int{"keystore.jks": 1, "truststore.jks": 2}, Expires: expires}
	}
	return gs, tokens
}

func sameJob(t testing.TB, got, want *replicas.Job) {
	t.Helper()
	g, w := *got, *want
	if !g.Expires.Equal(w.Expires) {
		t.Errorf("job %s expires %v, want %v", w.ID, g.Expires, w.Expires)
	}
	g.Expires, w.Expires = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("job record read back differs:\n got %+v\nwant %+v", g, w)
	}
}

func testRecords(t *testing.T, sh Shared) {
	ctx := ctxFor(t)
	s, _ := open(t, sh)
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	job := Job("spark-0001", exp, `{"security":{"tls":{"enabled":true}}}`)
	grants, _ := Grants(job.ID, 3, exp)
	if err := s.Publish(ctx, job, grants); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got, v, err := s.Job(ctx, job.ID)
	if err != nil {
		t.Fatalf("Job: %v", err)
	}
	sameJob(t, got, job)
	for _, g := range grants {
		gg, _, err := s.Grant(ctx, g.TokenHash)
		if err != nil {
			t.Fatalf("Grant: %v", err)
		}
		if gg.TokenHash != g.TokenHash || gg.JobID != g.JobID || gg.Task != g.Task || !reflect.DeepEqual(gg.Uses, g.Uses) || !gg.Expires.Equal(g.Expires) {
			t.Errorf("grant read back %+v, want %+v", gg, g)
		}
	}
	// A second Ship of the job adds its grants and keeps the first record.
	other := Job(job.ID, exp.Add(time.Hour), "another spec")
	more, _ := Grants(job.ID, 2, exp)
	if err := s.Publish(ctx, other, more); err != nil {
		t.Fatalf("second Publish of the job: %v", err)
	}
	if _, _, err := s.Grant(ctx, more[1].TokenHash); err != nil {
		t.Errorf("second Publish's grant: %v", err)
	}
	got, v2, err := s.Job(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameJob(t, got, job)
	if v2 != v {
		t.Errorf("second Publish rewrote the job record: version %q -> %q", v, v2)
	}
	if err := s.Publish(ctx, nil, nil); err != nil {
		t.Errorf("empty Publish: %v", err)
	}
	if err := s.DeleteJob(ctx, job.ID); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}
	if _, _, err := s.Job(ctx, job.ID); !errors.Is(err, replicas.ErrNotFound) {
		t.Errorf("Job after DeleteJob: %v, want ErrNotFound", err)
	}
	if err := s.DeleteJob(ctx, job.ID); !errors.Is(err, replicas.ErrNotFound) {
		t.Errorf("second DeleteJob: %v, want ErrNotFound", err)
	}
	if _, _, err := s.Grant(ctx, sha256.Sum256([]byte("unknown"))); !errors.Is(err, replicas.ErrNotFound) {
		t.Errorf("unknown grant: %v, want ErrNotFound", err)
	}
	if _, err := s.Consume(ctx, sha256.Sum256([]byte("unknown")), "keystore.jks"); !errors.Is(err, replicas.ErrNotFound) {
		t.Errorf("Consume of an unknown token: %v, want ErrNotFound", err)
	}
	if _, err := s.Consume(ctx, grants[0].TokenHash, "other.jks"); !errors.Is(err, replicas.ErrNotFound) {
		t.Errorf("Consume of a file the grant lacks: %v, want ErrNotFound", err)
	}
}

func name(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func testCreateAllOrNothing(t *testing.T, sh Shared) {
	ctx := ctxFor(t)
	_, st := open(t, sh)
	a := replicas.Record{Kind: replicas.KindGrant, Name: name("a"), Data: []byte("a")}
	b := replicas.Record{Kind: replicas.KindGrant, Name: name("b"), Data: []byte("b")}
	if err := st.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, b, a); !errors.Is(err, replicas.ErrExists) {
		t.Fatalf("Create over an existing record: %v, want ErrExists", err)
	}
	if _, err := st.Get(ctx, replicas.KindGrant, b.Name); !errors.Is(err, replicas.ErrNotFound) {
		t.Errorf("a failed Create left a record behind: Get = %v, want ErrNotFound", err)
	}
	if err := st.Create(ctx, replicas.Record{Kind: replicas.KindJob, Name: "../x", Data: []byte("x")}); err == nil {
		t.Error("Create with a name that is not a hash succeeded")
	}
	if _, err := st.Get(ctx, replicas.KindJob, a.Name); !errors.Is(err, replicas.ErrNotFound) {
		t.Errorf("kinds share names: Get(job, a) = %v, want ErrNotFound", err)
	}
}

func testCompareAndSet(t *testing.T, sh Shared) {
	ctx := ctxFor(t)
	s, _ := open(t, sh)
	s2, _ := open(t, sh)
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	job := Job("flink-cas", exp, "spec")
	if err := s.Publish(ctx, job, nil); err != nil {
		t.Fatal(err)
	}
	j1, v1, err := s.Job(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	j2, v2, err := s2.Job(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	j1.Versions["/spark/keystore"] = "4"
	j1.Generation = 1
	nv, err := s.UpdateJob(ctx, j1, v1)
	if err != nil {
		t.Fatalf("UpdateJob at the version read: %v", err)
	}
	if nv == v1 {
		t.Errorf("UpdateJob kept version %q", nv)
	}
	j2.Versions["/spark/keystore"] = "5"
	if _, err := s2.UpdateJob(ctx, j2, v2); !errors.Is(err, replicas.ErrConflict) {
		t.Fatalf("UpdateJob at a stale version from the other client: %v, want ErrConflict", err)
	}
	got, v3, err := s2.Job(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Versions["/spark/keystore"] != "4" || got.Generation != 1 || v3 != nv {
		t.Errorf("after a lost CAS the record is %+v at %q, want the winner's at %q", got, v3, nv)
	}
	if err := s.State().Delete(ctx, replicas.KindJob, replicas.JobName(job.ID), v1); !errors.Is(err, replicas.ErrConflict) {
		t.Errorf("Delete at a stale version: %v, want ErrConflict", err)
	}
	if err := s.State().Delete(ctx, replicas.KindJob, replicas.JobName(job.ID), v3); err != nil {
		t.Errorf("Delete at the current version: %v", err)
	}
	if _, err := s.UpdateJob(ctx, j1, nv); !errors.Is(err, replicas.ErrNotFound) {
		t.Errorf("UpdateJob of a deleted record: %v, want ErrNotFound", err)
	}
}

// testSingleUse consumes every grant from two clients at once: each use is
// served exactly once in total.
func testSingleUse(t *testing.T, sh Shared) {
	ctx := ctxFor(t)
	a, _ := open(t, sh)
	b, _ := open(t, sh)
	n := sh.DoubleConsumes
	if n == 0 {
		n = 1000
	}
	exp := time.Now().Add(time.Hour)
	job := Job("spark-single-use", exp, "spec")
	grants, _ := Grants(job.ID, n, exp)
	for i := 0; i < n; i += 100 { // Ships of 100 tasks
		var j *replicas.Job
		if i == 0 {
			j = job
		}
		if err := a.Publish(ctx, j, grants[i:min(i+100, n)]); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	var served, usedUp, other atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, g := range grants {
		for _, s := range []*replicas.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				_, err := s.Consume(ctx, g.TokenHash, "keystore.jks")
				switch {
				case err == nil:
					served.Add(1)
				case errors.Is(err, replicas.ErrUsedUp):
					usedUp.Add(1)
				default:
					other.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("%d grants consumed twice at once from two clients: %d served, %d used up, %d other errors", n, served.Load(), usedUp.Load(), other.Load())
	if other.Load() != 0 {
		t.Fatalf("%d consumes failed, first: %v", other.Load(), firstErr.Load())
	}
	if served.Load() != int64(n) || usedUp.Load() != int64(n) {
		t.Fatalf("served %d and refused %d of %d double consumes, want each grant served once", served.Load(), usedUp.Load(), n)
	}
	// The other file's two uses are still there, once each, then no more.
	g := grants[0]
	for i := range 2 {
		if _, err := b.Consume(ctx, g.TokenHash, "truststore.jks"); err != nil {
			t.Fatalf("use %d of 2 of truststore.jks: %v", i+1, err)
		}
	}
	if _, err := a.Consume(ctx, g.TokenHash, "truststore.jks"); !errors.Is(err, replicas.ErrUsedUp) {
		t.Fatalf("third use of truststore.jks: %v, want ErrUsedUp", err)
	}
}

func testExpiry(t *testing.T, sh Shared) {
	ctx := ctxFor(t)
	c := &clock{t: time.Now().Truncate(time.Millisecond)}
	s, _ := open(t, sh, replicas.WithClock(c.now))
	short := Job("spark-short", c.now().Add(time.Minute), "spec")
	long := Job("spark-long", c.now().Add(time.Hour), "spec")
	sg, _ := Grants(short.ID, 2, short.Expires)
	lg, _ := Grants(long.ID, 1, long.Expires)
	if err := s.Publish(ctx, short, sg); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, long, lg); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Consume(ctx, sg[0].TokenHash, "keystore.jks"); err != nil {
		t.Fatalf("Consume before expiry: %v", err)
	}
	c.add(2 * time.Minute)
	if _, err := s.Consume(ctx, sg[1].TokenHash, "keystore.jks"); !errors.Is(err, replicas.ErrExpired) {
		t.Errorf("Consume after expiry: %v, want ErrExpired", err)
	}
	jobs, err := s.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].ID != long.ID {
		t.Errorf("Jobs after the short job expired: %d jobs, want only %s", len(jobs), long.ID)
	}
	n, err := s.Sweep(ctx)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if n != 3 {
		t.Errorf("Sweep deleted %d records, want 3 (the short job and its 2 grants)", n)
	}
	if _, _, err := s.Job(ctx, short.ID); !errors.Is(err, replicas.ErrNotFound) {
		t.Errorf("expired job after Sweep: %v, want ErrNotFound", err)
	}
	if _, _, err := s.Grant(ctx, sg[1].TokenHash); !errors.Is(err, replicas.ErrNotFound) {
		t.Errorf("expired grant after Sweep: %v, want ErrNotFound", err)
	}
	if _, err := s.Consume(ctx, lg[0].TokenHash, "keystore.jks"); err != nil {
		t.Errorf("live grant after Sweep: %v", err)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("second Sweep deleted %d (%v), want 0", n, err)
	}
}

// testReopen closes every client and opens a new one, as a full restart
// of the replicas does: the jobs and the unused grants are there.
func testReopen(t *testing.T, sh Shared) {
	ctx := ctxFor(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	jobs := []*replicas.Job{Job("spark-a", exp, "spec a"), Job("flink-b", exp, "spec b")}
	var grants []replicas.Grant
	for _, j := range jobs {
		st := sh.Open(t)
		s, err := replicas.NewStore(st, Key)
		if err != nil {
			t.Fatal(err)
		}
		gs, _ := Grants(j.ID, 2, exp)
		if err := s.Publish(ctx, j, gs); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Consume(ctx, gs[0].TokenHash, "keystore.jks"); err != nil {
			t.Fatal(err)
		}
		grants = append(grants, gs...)
		if err := st.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := st.Get(ctx, replicas.KindJob, replicas.JobName(j.ID)); err == nil {
			t.Error("Get on a closed State succeeded")
		}
	}
	s, _ := open(t, sh)
	got, err := s.Jobs(ctx)
	if err != nil {
		t.Fatalf("Jobs after reopening: %v", err)
	}
	if len(got) != len(jobs) {
		t.Fatalf("Jobs after reopening: %d, want %d", len(got), len(jobs))
	}
	byID := map[string]*replicas.Job{}
	for _, j := range got {
		byID[j.ID] = j
	}
	for _, j := range jobs {
		if byID[j.ID] == nil {
			t.Fatalf("job %s lost", j.ID)
		}
		sameJob(t, byID[j.ID], j)
	}
	for i, g := range grants {
		_, err := s.Consume(ctx, g.TokenHash, "keystore.jks")
		if used := i%2 == 0; used && !errors.Is(err, replicas.ErrUsedUp) {
			t.Errorf("grant used before the restart: %v, want ErrUsedUp", err)
		} else if !used && err != nil {
			t.Errorf("grant unused before the restart: %v", err)
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func testElection(t *testing.T, sh Shared) {
	ctx := ctxFor(t)
	a, _ := open(t, sh)
	b, _ := open(t, sh)
	c, _ := open(t, sh)
	la, err := a.Campaign(ctx, "refresher")
	if err != nil {
		t.Fatalf("first Campaign: %v", err)
	}
	type won struct {
		l   replicas.Leadership
		err error
	}
	bwon := make(chan won, 1)
	go func() { l, err := b.Campaign(ctx, "refresher"); bwon <- won{l, err} }()
	// Another election is independent.
	other, err := c.Campaign(ctx, "other")
	if err != nil {
		t.Fatalf("Campaign in another election: %v", err)
	}
	// A campaign that gives up leaves no trace.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if _, err := c.Campaign(short, "refresher"); err == nil {
		t.Fatal("a third client won while the first leads")
	}
	cancel()
	select {
	case w := <-bwon:
		t.Fatalf("the second client won (%v) while the first leads", w.err)
	default:
	}
	if isClosed(la.Done()) {
		t.Fatal("the leader's Done is closed while it leads")
	}
	if err := la.Resign(ctx); err != nil {
		t.Fatalf("Resign: %v", err)
	}
	<-la.Done()
	w := <-bwon
	if w.err != nil {
		t.Fatalf("second client's Campaign after the leader resigned: %v", w.err)
	}
	if isClosed(w.l.Done()) {
		t.Fatal("the new leader's Done is closed")
	}
	if err := other.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	// Closing the leader's client ends its leadership.
	cwon := make(chan won, 1)
	go func() { l, err := c.Campaign(ctx, "refresher"); cwon <- won{l, err} }()
	if err := b.State().Close(); err != nil {
		t.Fatal(err)
	}
	<-w.l.Done()
	if w := <-cwon; w.err != nil {
		t.Fatalf("Campaign after the leader's client closed: %v", w.err)
	}
}

func testTakeover(t *testing.T, sh Shared) {
	if sh.Crashable == nil {
		t.Skip("this State has no crashable client")
	}
	ctx := ctxFor(t)
	crashed, cut := sh.Crashable(t)
	t.Cleanup(func() { _ = crashed.Close() })
	lx, err := crashed.Campaign(ctx, "refresher")
	if err != nil {
		t.Fatalf("Campaign: %v", err)
	}
	_, st := open(t, sh)
	won := make(chan error, 1)
	var ly replicas.Leadership
	go func() {
		var err error
		ly, err = st.Campaign(ctx, "refresher")
		won <- err
	}()
	bound := sh.Takeover
	if bound == 0 {
		bound = 2 * time.Minute
	}
	began := time.Now()
	cut()
	select {
	case err := <-won:
		if err != nil {
			t.Fatalf("Campaign after the leader crashed: %v", err)
		}
	case <-time.After(bound):
		t.Fatalf("no takeover %s after the leader was cut off", bound)
	}
	t.Logf("takeover %s after the leader was cut off", time.Since(began).Round(10*time.Millisecond))
	select {
	case <-lx.Done():
	case <-time.After(bound):
		t.Fatalf("the cut-off leader still believes it leads %s later", bound)
	}
	if isClosed(ly.Done()) {
		t.Error("the new leader's Done is closed")
	}
}

// Canary is the password planted in a job's spec by the sealing test.
const Canary = "canary-Pa55w0rd-7f3e9c1d"

func testSealing(t *testing.T, sh Shared) {
	ctx := ctxFor(t)
	s, st := open(t, sh)
	exp := time.Now().Add(time.Hour)
	job := Job("spark-canary", exp, `{"security":{"tls":{"keystore_password":"`+Canary+`"}}}`)
	grants, tokens := Grants(job.ID, 1, exp)
	if err := s.Publish(ctx, job, grants); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Consume(ctx, grants[0].TokenHash, "keystore.jks"); err != nil {
		t.Fatal(err)
	}
	// A control: a record written around the sealing is found by the scan.
	control := "control-" + Canary[7:]
	if err := st.Create(ctx, replicas.Record{Kind: replicas.KindGrant, Name: name("control"), Data: []byte(control)}); err != nil {
		t.Fatal(err)
	}
	raw := sh.Raw(t)
	if !bytes.Contains(raw, []byte(control)) {
		t.Fatalf("the scan (%d bytes) misses the clear control record: it cannot see records", len(raw))
	}
	for what, secret := range map[string][]byte{
		"the canary password":   []byte(Canary),
		"the token":             tokens[0],
		"the token, base64url":  []byte(base64.RawURLEncoding.EncodeToString(tokens[0])),
		"the token, hex":        []byte(hex.EncodeToString(tokens[0])),
		"the job's spec prefix": []byte(`"keystore_password"`),
	} {
		if bytes.Contains(raw, secret) {
			t.Errorf("%s is in the engine's bytes in clear", what)
		}
	}
	t.Logf("scanned %d bytes of the engine's data: no canary", len(raw))

	// Another key opens nothing.
	other, err := replicas.NewStore(st, bytes.Repeat([]byte{1}, replicas.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Job(ctx, job.ID); !errors.Is(err, replicas.ErrSealed) {
		t.Errorf("Job under another key: %v, want ErrSealed", err)
	}
	if _, err := other.Consume(ctx, grants[0].TokenHash, "truststore.jks"); !errors.Is(err, replicas.ErrSealed) {
		t.Errorf("Consume under another key: %v, want ErrSealed", err)
	}
	if _, err := replicas.NewStore(st, Key[:16]); err == nil {
		t.Error("NewStore took a 16-byte key")
	}
	// A sealed grant copied under another token's hash does not open, nor
	// does an altered one.
	r, err := st.Get(ctx, replicas.KindGrant, replicas.GrantName(grants[0].TokenHash))
	if err != nil {
		t.Fatal(err)
	}
	moved := sha256.Sum256([]byte("another token"))
	if err := st.Create(ctx, replicas.Record{Kind: replicas.KindGrant, Name: replicas.GrantName(moved), Data: r.Data}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Consume(ctx, moved, "truststore.jks"); !errors.Is(err, replicas.ErrSealed) {
		t.Errorf("a grant moved to another token hash: %v, want ErrSealed", err)
	}
	r.Data = append([]byte(nil), r.Data...)
	r.Data[len(r.Data)-1] ^= 1
	if _, err := st.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Consume(ctx, grants[0].TokenHash, "truststore.jks"); !errors.Is(err, replicas.ErrSealed) {
		t.Errorf("an altered grant: %v, want ErrSealed", err)
	}
	// Extending the expiry in the clear header breaks the seal too.
	j, err := st.Get(ctx, replicas.KindJob, replicas.JobName(job.ID))
	if err != nil {
		t.Fatal(err)
	}
	j.Data = append([]byte(nil), j.Data...)
	j.Data[2] ^= 0x10
	if _, err := st.Update(ctx, j); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Job(ctx, job.ID); !errors.Is(err, replicas.ErrSealed) {
		t.Errorf("a job whose clear expiry was changed: %v, want ErrSealed", err)
	}
}
