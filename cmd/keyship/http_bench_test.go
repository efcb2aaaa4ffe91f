package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/keyship/keyship/backends/file/filetest"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
)

// BenchmarkWarmShipConnectJSON is BenchmarkWarmShip through the Connect
// protocol's JSON instead of gRPC, on the same unix socket of a running
// keyship serve: a JSON POST per Ship over a kept-alive HTTP/1.1
// connection, encoding the request and decoding the answer with protojson,
// as a JVM launcher does with Jackson. It reports p50 and p99 beside
// BenchmarkWarmShip's.
//
//	go test -run '^$' -bench 'WarmShip' ./cmd/keyship/
func BenchmarkWarmShipConnectJSON(b *testing.B) {
	j := newJob(b)
	sock, _ := startServe(b, j)
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 1,
	}}
	ship := func(i int) {
		req := &hostv1.ShipRequest{JobId: fmt.Sprint("bench-", i), Spec: []byte(filetest.Spec), TtlSeconds: 1,
			Tasks: []*hostv1.Task{{Id: "driver", Role: "driver"}, {Id: "executor-1", Role: "executor"}}, Targets: []hostv1.Target{hostv1.Target_TARGET_MESOS}}
		body, err := protojson.Marshal(req)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := c.Post("http://keyship/keyship.host.v1.ShipperService/Ship", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		data, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("Ship: HTTP %d %v %.200s", resp.StatusCode, err, data)
		}
		var out hostv1.ShipResponse
		if err := protojson.Unmarshal(data, &out); err != nil || len(out.GetTasks()) != 2 {
			b.Fatalf("Ship answer: %v", err)
		}
	}
	ship(-1) // loads the plugin
	var lat []time.Duration
	i := 0
	for b.Loop() {
		start := time.Now()
		ship(i)
		lat = append(lat, time.Since(start))
		i++
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkJVMClientShip measures the JVM client's call latency: the
// compiled clients/java ShipLatency makes 1000 warm Ships of a new job each
// (after 200 to warm the JIT) through KeyshipClient against keyship serve on
// TCP with mutual TLS, and the benchmark reports the JVM's own p50 and p99
// (the JVM's start is not in them; ns/op is one whole run).
//
//	go test -run '^$' -bench JVMClientShip ./cmd/keyship/
func BenchmarkJVMClientShip(b *testing.B) {
	java, cp := javaClient(b)
	j := newJob(b)
	m := newMTLS(b)
	s := serveTLS(b, j, m)
	stores := dispatcherStores(b, j, "dispatcher", m.clientPEM, certPEM(m.ca.Cert))
	specPath := j.spec(b, nil)
	at := func(n string) string { return filepath.Join(stores, n) }
	var p50, p99 float64
	for b.Loop() {
		out, err := exec.Command(java, "-cp", cp, "com.github.keyship.client.ShipLatency", "https://"+s.hostPort(),
			at("keystore.p12"), at("keystore.password"), at("key.password"), at("truststore.p12"), at("truststore.password"),
			specPath, "1000").CombinedOutput()
		if err != nil {
			b.Fatalf("ShipLatency: %v\n%s", err, out)
		}
		f := strings.Fields(string(out))
		if len(f) != 6 || f[2] != "p50-us" || f[4] != "p99-us" {
			b.Fatalf("ShipLatency printed %q", out)
		}
		p50, _ = strconv.ParseFloat(f[3], 64)
		p99, _ = strconv.ParseFloat(f[5], 64)
	}
	b.ReportMetric(p50, "p50-µs")
	b.ReportMetric(p99, "p99-µs")
}
