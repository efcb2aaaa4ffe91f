package server_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/server"
)

// BenchmarkShipPerExecutor is a Ship of an already-built job with N
// executors: what each extra executor costs once the job is resolved (it
// must be near zero: no backend read, one fetch token, shared Mesos
// secrets). It reports ns/executor and checks the backend was read only for
// the first build.
//
//	go test -run '^$' -bench ShipPerExecutor ./shipper/server/
func BenchmarkShipPerExecutor(b *testing.B) {
	for _, target := range []hostv1.Target{hostv1.Target_TARGET_MESOS, hostv1.Target_TARGET_FETCH} {
		for _, n := range []int{1, 1000, 10000} {
			b.Run(fmt.Sprintf("%s/executors=%d", target, n), func(b *testing.B) {
				f := newFixture(b)
				req := shipReq("bench", tasks("exec", n), target)
				if _, err := f.srv.Ship(context.Background(), req); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := f.srv.Ship(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
				if got := f.backend.reads.Load(); got != distinctRefs {
					b.Fatalf("%d backend reads for one job", got)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/executor")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/ship")
			})
		}
	}
}

// BenchmarkShipNewJob is a Ship of a job not yet built, in-process with the
// built-in file backend: resolve seed 000's 6 refs, materialize and check,
// plan the Mesos secrets. keyship serve's warm Ship is this plus the gRPC
// hop and the plugin's.
func BenchmarkShipNewJob(b *testing.B) {
	f := newFixture(b)
	i := 0
	for b.Loop() {
		req := shipReq(fmt.Sprint("job-", i), tasks("exec", 2), hostv1.Target_TARGET_MESOS)
		req.TtlSeconds = 1
		if _, err := f.srv.Ship(context.Background(), req); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkShipNewJobParallel is BenchmarkShipNewJob from GOMAXPROCS×8
// concurrent callers: where new-job Ships wait on each other (run it with
// -blockprofile and -mutexprofile).
func BenchmarkShipNewJobParallel(b *testing.B) {
	f := newFixture(b)
	var n atomic.Int64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := shipReq(fmt.Sprint("job-", n.Add(1)), tasks("exec", 2), hostv1.Target_TARGET_MESOS)
			req.TtlSeconds = 1
			if _, err := f.srv.Ship(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkShipNewJobWatched is a new job's Ship on a server that watches
// (keyship serve's default), with live jobs already held: its cost must
// not grow with them (the watched jobs are swept at most every ten
// seconds, not walked by every build).
//
//	go test -run '^$' -bench ShipNewJobWatched ./shipper/server/
func BenchmarkShipNewJobWatched(b *testing.B) {
	for _, live := range []int{10, 10000} {
		b.Run(fmt.Sprintf("live=%d", live), func(b *testing.B) {
			f := newWatchFixture(b, time.Hour, server.WithLimits(1<<20, 0))
			for i := range live {
				req := shipReq(fmt.Sprint("live-", i), tasks("exec", 1), hostv1.Target_TARGET_MESOS)
				if _, err := f.srv.Ship(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
			i := 0
			for b.Loop() {
				req := shipReq(fmt.Sprint("job-", i), tasks("exec", 2), hostv1.Target_TARGET_MESOS)
				if _, err := f.srv.Ship(context.Background(), req); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
