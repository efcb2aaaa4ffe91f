// Command benchreport reads `go test -bench` output on stdin and prints
// keyship's hot-path figures beside their targets, with the ratio
// target/measured (above 1 means the target is met). make bench runs it.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// bench holds one benchmark's metrics by unit ("ns/op", "p99-µs", ...).
type results map[string]map[string]float64

var lineRE = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

func parse(r io.Reader, echo io.Writer) (results, error) {
	out := results{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(echo, line)
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		fields := strings.Fields(m[3])
		metrics := map[string]float64{}
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err == nil {
				metrics[fields[i+1]] = v
			}
		}
		out[m[1]] = metrics
	}
	return out, sc.Err()
}

// row is one figure of the report.
type row struct {
	what     string
	measured func(results) (float64, bool)
	unit     string
	target   float64 // 0: no target, reported only
	lower    bool    // true: lower is better (ratio target/measured)
}

func metric(name, unit string, scale float64) func(results) (float64, bool) {
	return func(r results) (float64, bool) {
		v, ok := r[name][unit]
		return v * scale, ok
	}
}

var rows = []row{
	{"per-Get plugin overhead (subprocess − in-process, 1 ref)", func(r results) (float64, bool) {
		sub, ok1 := r["BenchmarkGet/subprocess/refs=1"]["ns/op"]
		in, ok2 := r["BenchmarkGet/in-process/refs=1"]["ns/op"]
		return (sub - in) / 1000, ok1 && ok2
	}, "µs", 200, true},
	{"per-secret plugin overhead in a 7-ref batch", func(r results) (float64, bool) {
		sub, ok1 := r["BenchmarkGet/subprocess/refs=7"]["ns/op"]
		in, ok2 := r["BenchmarkGet/in-process/refs=7"]["ns/op"]
		return (sub - in) / 7 / 1000, ok1 && ok2
	}, "µs", 0, true},
	{"warm Ship through keyship serve, gRPC, p50", metric("BenchmarkWarmShip", "p50-µs", 1), "µs", 0, true},
	{"warm Ship through keyship serve, gRPC, p99", metric("BenchmarkWarmShip", "p99-µs", 1), "µs", 5000, true},
	{"warm Ship through keyship serve, Connect JSON, p50", metric("BenchmarkWarmShipConnectJSON", "p50-µs", 1), "µs", 0, true},
	{"warm Ship through keyship serve, Connect JSON, p99", metric("BenchmarkWarmShipConnectJSON", "p99-µs", 1), "µs", 5000, true},
	{"warm Ship from the JVM client (mTLS, JSON), p50", metric("BenchmarkJVMClientShip", "p50-µs", 1), "µs", 0, true},
	{"warm Ship from the JVM client (mTLS, JSON), p99", metric("BenchmarkJVMClientShip", "p99-µs", 1), "µs", 0, true},
	{"cold keyship ship (process + plugin + resolve + build + write)", metric("BenchmarkColdShip", "ns/op", 1e-6), "ms", 0, true},
	{"1000 fetches over loopback HTTPS", metric("BenchmarkFetch1000", "ns/op", 1e-6), "ms", 1000, true},
	{"cost per extra executor (Mesos secrets, job built)", metric("BenchmarkShipPerExecutor/TARGET_MESOS/executors=1000", "ns/executor", 1e-3), "µs", 0, true},
	{"cost per extra executor (fetch URIs, job built)", metric("BenchmarkShipPerExecutor/TARGET_FETCH/executors=1000", "ns/executor", 1e-3), "µs", 0, true},
}

func main() {
	r, err := parse(os.Stdin, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	fmt.Printf("\n%-64s %12s %12s %8s\n", "keyship hot paths", "measured", "target", "ratio")
	for _, row := range rows {
		v, ok := row.measured(r)
		if !ok {
			fmt.Printf("%-64s %12s\n", row.what, "(not run)")
			continue
		}
		target, ratio := "-", "-"
		if row.target > 0 {
			target = fmt.Sprintf("%.0f %s", row.target, row.unit)
			ratio = fmt.Sprintf("%.1f×", row.target/v)
		}
		fmt.Printf("%-64s %12s %12s %8s\n", row.what, fmt.Sprintf("%.1f %s", v, row.unit), target, ratio)
	}
	// Benchmarks that compare keyship with another way report their own
	// ratio as a metric ending in "x-faster".
	for name, metrics := range r {
		for unit, v := range metrics {
			if strings.HasSuffix(unit, "x-faster") {
				fmt.Printf("%-64s %12s\n", strings.TrimPrefix(name, "Benchmark")+" ("+unit+")", fmt.Sprintf("%.1f×", v))
			}
		}
	}
}
