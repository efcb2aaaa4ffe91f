package main_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

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

// BenchmarkWarmShip is one Ship of a new job through a running keyship serve
// (plugin subprocess already loaded): resolve seed 000's 6 refs through the
// file plugin, materialize and check, and answer with Mesos secret volumes
// and env for two tasks, the dispatcher's case. It reports p50 and p99.
//
//	go test -run '^$' -bench WarmShip ./cmd/keyship/
func BenchmarkWarmShip(b *testing.B) {
	j := newJob(b)
	sock, _ := startServe(b, j)
	c, err := server.Dial("unix://"+sock, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	req := func(i int) *hostv1.ShipRequest {
		return &hostv1.ShipRequest{JobId: fmt.Sprint("bench-", i), Spec: []byte(filetest.Spec), TtlSeconds: 1,
			Tasks: []*hostv1.Task{{Id: "driver", Role: "driver"}, {Id: "executor-1", Role: "executor"}}, Targets: []hostv1.Target{hostv1.Target_TARGET_MESOS}}
	}
	if _, err := c.Ship(context.Background(), req(-1)); err != nil { // loads the plugin
		b.Fatal(err)
	}
	var lat []time.Duration
	i := 0
	for b.Loop() {
		start := time.Now()
		if _, err := c.Ship(context.Background(), req(i)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		i++
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
