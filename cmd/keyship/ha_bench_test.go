package main_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/keyship/keyship/shipper/server/replicas/zookeeper/zktest"
)

// BenchmarkHAShip is BenchmarkWarmShip's new-job Ship (content built
// before) through keyship serve --ha none and through one replica of
// keyship serve --ha zookeeper on a 3-server ensemble on the same machine:
// p50 and p99 of each (make bench prints them side by side with the
// ratio), and with ZooKeeper the ensemble's write transactions per Ship
// (its zxid's advance; a multi-op is one); and once more on an ensemble
// that does not fsync, to tell keyship's cost from the disk's.
//
//	go test -run '^$' -bench HAShip -count 5 ./cmd/keyship/
func BenchmarkHAShip(b *testing.B) {
	b.Run("ha=none", func(b *testing.B) { warmShip(b, shipClient(b)) })
	b.Run("ha=zookeeper", func(b *testing.B) { haShip(b, zktest.Start(b, 3)) })
	// ZooKeeper without fsync: what a write costs keyship, apart from the
	// disk (each write waits for the transaction log's fsync on a quorum).
	b.Run("ha=zookeeper-nofsync", func(b *testing.B) { haShip(b, zktest.Start(b, 3, zktest.NoFsync())) })
}

// haWarmShips is how many Ships haShip makes before it measures.
const haWarmShips = 1000

func haShip(b *testing.B, zk *zktest.Ensemble) {
	rs := newReplicaSet(b, newJob(b), zk)
	c := rs.start().client
	// The first Ship loads the plugin; the rest warm the ensemble's JVMs
	// (a fresh ZooKeeper runs its first thousand writes interpreted, several
	// times slower than one that has run a while, as the Mesos masters'
	// has).
	for i := range haWarmShips {
		if _, err := c.Ship(context.Background(), newJobReq(fmt.Sprint("warm-up-", i))); err != nil {
			b.Fatal(err)
		}
	}
	before := zk.Zxid(b)
	n := 0
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := c.Ship(context.Background(), newJobReq(fmt.Sprint("bench-", n))); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		n++
	}
	b.StopTimer()
	reportLatencies(b, lat)
	b.ReportMetric(float64(zk.Zxid(b)-before)/float64(n), "zk-writes/ship")
}

// BenchmarkHAFetch ships a job with fetch URIs on one replica of keyship
// serve --ha zookeeper and fetches one URI from another replica (which
// rebuilds the job from its shared record and takes the grant's use in
// ZooKeeper) and one from the replica that handed them out: the p50 and
// p99 of each fetch, and the ensemble's writes per fetch.
//
//	go test -run '^$' -bench HAFetch -count 5 ./cmd/keyship/
func BenchmarkHAFetch(b *testing.B) {
	zk := zktest.Start(b, 3)
	rs := newReplicaSet(b, newJob(b), zk)
	a, other := rs.start(), rs.start()
	fc := rs.fetchClient()
	var cross, local []time.Duration
	var writes int64
	n := 0
	for b.Loop() {
		resp, err := a.client.Ship(context.Background(), fetchJobReq(fmt.Sprint("bench-", n)))
		if err != nil {
			b.Fatal(err)
		}
		u := uris(resp)
		if len(u) < 2 {
			b.Fatalf("%d fetch URIs, want 2 or more", len(u))
		}
		zxid := zk.Zxid(b)
		start := time.Now()
		if code, _ := fetchFrom(b, fc, other, u[0]); code != http.StatusOK {
			b.Fatalf("cross-replica fetch: HTTP %d", code)
		}
		cross = append(cross, time.Since(start))
		writes += zk.Zxid(b) - zxid
		start = time.Now()
		if code, _ := fetchFrom(b, fc, a, u[1]); code != http.StatusOK {
			b.Fatalf("fetch from the replica that shipped: HTTP %d", code)
		}
		local = append(local, time.Since(start))
		n++
	}
	b.StopTimer()
	for _, l := range []struct {
		name string
		lat  []time.Duration
	}{{"cross", cross}, {"local", local}} {
		slices.Sort(l.lat)
		b.ReportMetric(float64(l.lat[len(l.lat)/2].Microseconds()), l.name+"-p50-µs")
		b.ReportMetric(float64(l.lat[len(l.lat)*99/100].Microseconds()), l.name+"-p99-µs")
	}
	b.ReportMetric(float64(writes)/float64(n), "zk-writes/fetch")
}
