package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/keyship/keyship/backends/file/filetest"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/server"
)

// BenchmarkColdShip is one `keyship ship` as a user runs it: process start,
// config, plugin subprocess start (AutoMTLS handshake, sha256 check),
// resolve, materialize and check, atomic sandbox write.
//
//	go test -run '^$' -bench ColdShip ./cmd/keyship/
func BenchmarkColdShip(b *testing.B) {
	j := newJob(b)
	specPath := j.spec(b, nil)
	bin := filepath.Join(binDir, "keyship")
	b.ResetTimer()
	for b.Loop() {
		cmd := exec.Command(bin, "ship", "--config", j.config, "--spec", specPath, "--sandbox", j.sandbox)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ship: %v\n%s", err, out)
		}
	}
}

// BenchmarkColdShipBuiltin is BenchmarkColdShip with the built-in file
// backend in the keyship process: what the plugin's start costs on top is
// the difference (make bench prints the ratio).
func BenchmarkColdShipBuiltin(b *testing.B) {
	j := newJob(b)
	cfg := fmt.Sprintf("default_backend: file\nbackends:\n  file:\n    config:\n      root: %s\n", j.root)
	if err := os.WriteFile(j.config, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	specPath := j.spec(b, nil)
	bin := filepath.Join(binDir, "keyship")
	for b.Loop() {
		cmd := exec.Command(bin, "ship", "--config", j.config, "--spec", specPath, "--sandbox", j.sandbox)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ship: %v\n%s", err, out)
		}
	}
}

// shipClient starts keyship serve on a unix socket with the file plugin and
// returns a client whose plugin is loaded.
func shipClient(b *testing.B, serveArgs ...string) *server.Client {
	return shipClientOf(b, newJob(b), serveArgs...)
}

// shipClientBuiltin is shipClient with the built-in file backend: no plugin
// process, no plugin round trip.
func shipClientBuiltin(b *testing.B) *server.Client {
	j := newJob(b)
	cfg := fmt.Sprintf("default_backend: file\nbackends:\n  file:\n    config:\n      root: %s\n", j.root)
	if err := os.WriteFile(j.config, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	return shipClientOf(b, j)
}

func shipClientOf(b *testing.B, j *job, serveArgs ...string) *server.Client {
	sock, _ := startServe(b, j, serveArgs...)
	c, err := server.Dial("unix://"+sock, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	if _, err := c.Ship(context.Background(), newJobReq("warm-up")); err != nil { // loads the plugin
		b.Fatal(err)
	}
	return c
}

// newJobReq is the dispatcher's Ship of seed 000's job for a driver and an
// executor, with Mesos secrets.
func newJobReq(id string) *hostv1.ShipRequest {
	return &hostv1.ShipRequest{JobId: id, Spec: []byte(filetest.Spec), TtlSeconds: 1,
		Tasks:   []*hostv1.Task{{Id: "driver", Role: "driver"}, {Id: "executor-1", Role: "executor"}},
		Targets: []hostv1.Target{hostv1.Target_TARGET_MESOS}}
}

// reportLatencies reports the p50 and p99 of lat.
func reportLatencies(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkWarmShip is one Ship of a new job through a running keyship serve
// (plugin subprocess already loaded): resolve seed 000's 6 refs through the
// file plugin, materialize and check (or, with the build cache, take the
// stores built for an earlier job of the same content), and answer with Mesos
// secret volumes and env for two tasks, the dispatcher's case. Each Ship is
// preceded by the floor, a bare grpc.health.v1 Check on the same connection
// (warmFloor): it reports both latencies' p50 and p99 and their ratios,
// measured interleaved under the same load.
//
//	go test -run '^$' -bench WarmShip ./cmd/keyship/
func BenchmarkWarmShip(b *testing.B) {
	b.Run("content=shared", func(b *testing.B) { warmShip(b, shipClient(b)) })
	b.Run("content=new", func(b *testing.B) { warmShip(b, shipClient(b, "--build-cache", "0")) })
	// What the plugin boundary costs a new job: the same Ships with the
	// file backend built into keyship serve.
	b.Run("content=shared,backend=builtin", func(b *testing.B) { warmShip(b, shipClientBuiltin(b)) })
}

func warmShip(b *testing.B, c *server.Client) {
	w := newWarmFloor(c)
	i := 0
	for b.Loop() {
		w.floor(b)
		start := time.Now()
		if _, err := c.Ship(context.Background(), newJobReq(fmt.Sprint("bench-", i))); err != nil {
			b.Fatal(err)
		}
		w.ship = append(w.ship, time.Since(start))
		i++
	}
	w.report(b)
}

// BenchmarkWarmShipBuiltJob is a Ship of a job keyship serve has already
// built (a second Ship for more tasks of the same job): no backend read, no
// build. Like BenchmarkWarmShip it interleaves the floor and reports p50,
// p99 and their ratios to the floor's.
func BenchmarkWarmShipBuiltJob(b *testing.B) {
	c := shipClient(b)
	req := newJobReq("built")
	req.TtlSeconds = 3600
	if _, err := c.Ship(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	w := newWarmFloor(c)
	for b.Loop() {
		w.floor(b)
		start := time.Now()
		if _, err := c.Ship(context.Background(), req); err != nil {
			b.Fatal(err)
		}
		w.ship = append(w.ship, time.Since(start))
	}
	w.report(b)
}

// BenchmarkWarmFloor is the floor of any Ship alone: a bare grpc.health.v1
// Check (which keyship serve answers from its last probe, without a
// backend call) over the same unix socket, from the same client.
func BenchmarkWarmFloor(b *testing.B) {
	w := newWarmFloor(shipClient(b))
	for b.Loop() {
		w.floor(b)
	}
	slices.Sort(w.floors)
	b.ReportMetric(float64(w.floors[len(w.floors)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(w.floors[len(w.floors)*99/100].Microseconds()), "p99-µs")
}

// warmFloor times Ships and, interleaved with them, the floor: a health
// Check on the Ships' connection.
type warmFloor struct {
	health       healthpb.HealthClient
	ship, floors []time.Duration
}

func newWarmFloor(c *server.Client) *warmFloor {
	return &warmFloor{health: healthpb.NewHealthClient(c.Conn())}
}

// floor times one health Check.
func (w *warmFloor) floor(b *testing.B) {
	start := time.Now()
	// Any status will do: the floor is the round trip, and a backend probe
	// that timed out on a loaded machine answers NOT_SERVING as fast.
	if _, err := w.health.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		b.Fatalf("health Check: %v", err)
	}
	w.floors = append(w.floors, time.Since(start))
}

// report reports the Ships' p50 and p99, the floor's, and the ratios
// (p50-x-floor is the Ships' p50 ÷ the floor's p50; p99 likewise).
func (w *warmFloor) report(b *testing.B) {
	slices.Sort(w.ship)
	slices.Sort(w.floors)
	p50, p99 := w.ship[len(w.ship)/2], w.ship[len(w.ship)*99/100]
	f50, f99 := w.floors[len(w.floors)/2], w.floors[len(w.floors)*99/100]
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(f50.Microseconds()), "floor-p50-µs")
	b.ReportMetric(float64(f99.Microseconds()), "floor-p99-µs")
	b.ReportMetric(float64(p50)/float64(f50), "p50-x-floor")
	b.ReportMetric(float64(p99)/float64(f99), "p99-x-floor")
}

// BenchmarkShipLoad is C concurrent callers shipping new jobs through one
// keyship serve, 20 Ships each per iteration: throughput (ships/s) and the
// p50 and p99 of each Ship's latency.
func BenchmarkShipLoad(b *testing.B) {
	for _, callers := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			c := shipClient(b)
			const perCaller = 20
			var mu sync.Mutex
			var lat []time.Duration
			var failed atomic.Int64
			round := 0
			for b.Loop() {
				var wg sync.WaitGroup
				for k := range callers {
					wg.Go(func() {
						mine := make([]time.Duration, 0, perCaller)
						for n := range perCaller {
							start := time.Now()
							if _, err := c.Ship(context.Background(), newJobReq(fmt.Sprintf("load-%d-%d-%d", round, k, n))); err != nil {
								failed.Add(1)
								continue
							}
							mine = append(mine, time.Since(start))
						}
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					})
				}
				wg.Wait()
				round++
			}
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d Ships failed", n)
			}
			b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "ships/s")
			reportLatencies(b, lat)
		})
	}
}
