package server_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyship/keyship/host/materialize"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/server"
)

// TestLimitsRefuseWithResourceExhausted: past the live-jobs or tasks limit a
// Ship fails with RESOURCE_EXHAUSTED naming the limit and its flag; a job
// already held still ships, and new jobs do again once old ones expire.
func TestLimitsRefuseWithResourceExhausted(t *testing.T) {
	f := newFixture(t)
	srv := server.New(f.builder(t), f.fetch, server.WithClock(f.clock), server.WithLimits(2, 5))
	ship := func(job string, n int) error {
		req := shipReq(job, tasks("exec", n), hostv1.Target_TARGET_MESOS)
		req.TtlSeconds = 60
		_, err := srv.Ship(context.Background(), req)
		return err
	}
	for _, job := range []string{"a", "b"} {
		if err := ship(job, 1); err != nil {
			t.Fatal(err)
		}
	}
	err := ship("c", 1)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "--max-jobs") || !strings.Contains(err.Error(), "limit of 2") {
		t.Fatalf("a third job past a limit of 2: %v", err)
	}
	if err := ship("a", 3); err != nil {
		t.Errorf("a held job past the jobs limit: %v", err)
	}
	err = ship("a", 6)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "--max-tasks") {
		t.Fatalf("6 tasks past a limit of 5: %v", err)
	}
	f.advance(2*time.Minute + server.DefaultTTL)
	if err := ship("c", 1); err != nil {
		t.Errorf("a new job once the others expired: %v", err)
	}
}

// TestGrantLimit: Publish refuses grants past the fetch server's limit with
// ErrGrantLimit, and takes them again once expired ones are swept.
func TestGrantLimit(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	fs := fetch.New("https://example.com", fetch.WithMaxGrants(3), fetch.WithClock(func() time.Time { return now }))
	files := []materialize.File{{Path: "keystore.jks", Contents: []byte("k")}}
	if _, err := fs.Publish([]string{"a", "b"}, files, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err := fs.Publish([]string{"c", "d"}, files, 1, time.Minute)
	if !errors.Is(err, fetch.ErrGrantLimit) || !strings.Contains(err.Error(), "--max-grants") {
		t.Fatalf("4 grants past a limit of 3: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := fs.Publish([]string{"c", "d"}, files, 1, time.Minute); err != nil {
		t.Fatalf("after the first grants expired: %v", err)
	}
}

// BenchmarkHeapPer1000Jobs reports the heap a keyship serve keeps per 1000
// live jobs of seed 000 (each with 2 tasks and Mesos secrets), content
// shared or not: make bench prints it.
func BenchmarkHeapPer1000Jobs(b *testing.B) {
	for range b.N {
		f := newFixture(b)
		srv := server.New(f.builder(b), f.fetch, server.WithClock(f.clock))
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range 1000 {
			if _, err := srv.Ship(context.Background(), shipReq(fmt.Sprint("job-", i), tasks("exec", 2), hostv1.Target_TARGET_MESOS, hostv1.Target_TARGET_FETCH)); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if srv.Jobs() != 1000 {
			b.Fatalf("%d jobs held", srv.Jobs())
		}
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/1e6, "MB/1000jobs")
	}
}
