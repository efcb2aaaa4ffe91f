// Command benchreport reads `go test -bench -count N` output on stdin and
// prints keyship's hot-path figures beside their targets: the median of the
// N runs with their min–max spread, and the ratio target/median (above 1
// means the target is met), under a line naming the machine (cores, CPU
// model). make bench runs it.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// results holds every run's value of each benchmark's metrics, by benchmark
// name and unit ("ns/op", "p99-µs", ...).
type results map[string]map[string][]float64

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
		if out[m[1]] == nil {
			out[m[1]] = map[string][]float64{}
		}
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err == nil {
				out[m[1]][fields[i+1]] = append(out[m[1]][fields[i+1]], v)
			}
		}
	}
	return out, sc.Err()
}

// figure is one figure's runs: the median and the spread.
type figure []float64

func (f figure) median() float64 {
	s := slices.Sorted(slices.Values(f))
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// row is one figure of the report.
type row struct {
	what     string
	measured func(results) (figure, bool)
	unit     string
	target   float64 // 0: no target, reported only
	lower    bool    // true: lower is better (ratio target/median)
}

func metric(name, unit string, scale float64) func(results) (figure, bool) {
	return func(r results) (figure, bool) {
		vs, ok := r[name][unit]
		out := make(figure, len(vs))
		for i, v := range vs {
			out[i] = v * scale
		}
		return out, ok && len(vs) > 0
	}
}

// diff pairs the runs of two benchmarks: (a[i] - b[i]) * scale.
func diff(a, b, unit string, scale float64) func(results) (figure, bool) {
	return func(r results) (figure, bool) {
		x, y := r[a][unit], r[b][unit]
		n := min(len(x), len(y))
		out := make(figure, n)
		for i := range n {
			out[i] = (x[i] - y[i]) * scale
		}
		return out, n > 0
	}
}

// ratio pairs the runs of two benchmarks: a[i] / b[i].
func ratio(a, b, unit string) func(results) (figure, bool) {
	return func(r results) (figure, bool) {
		x, y := r[a][unit], r[b][unit]
		n := min(len(x), len(y))
		out := make(figure, n)
		for i := range n {
			out[i] = x[i] / y[i]
		}
		return out, n > 0
	}
}

var rows = []row{
	{"per-Get plugin overhead (subprocess − in-process, 1 ref)", diff("BenchmarkGet/subprocess/refs=1", "BenchmarkGet/in-process/refs=1", "ns/op", 1e-3), "µs", 200, true},
	{"per-secret plugin overhead in a 7-ref batch", diff("BenchmarkGet/subprocess/refs=7", "BenchmarkGet/in-process/refs=7", "ns/op", 1e-3/7), "µs", 0, true},
	{"warm Ship of a new job, content built before (serve), p50", metric("BenchmarkWarmShip/content=shared", "p50-µs", 1e-3), "ms", 1, true},
	{"warm Ship of a new job, content built before (serve), p99", metric("BenchmarkWarmShip/content=shared", "p99-µs", 1e-3), "ms", 3, true},
	{"warm Ship of a new job, new content (serve), p50", metric("BenchmarkWarmShip/content=new", "p50-µs", 1e-3), "ms", 1, true},
	{"warm Ship of a new job, new content (serve), p99", metric("BenchmarkWarmShip/content=new", "p99-µs", 1e-3), "ms", 3, true},
	{"warm Ship of a new job through Connect JSON (serve), p50", metric("BenchmarkWarmShipConnectJSON", "p50-µs", 1e-3), "ms", 0, true},
	{"warm Ship of a new job through Connect JSON (serve), p99", metric("BenchmarkWarmShipConnectJSON", "p99-µs", 1e-3), "ms", 0, true},
	{"warm Ship from the JVM client (mTLS, JSON), p50", metric("BenchmarkJVMClientShip", "p50-µs", 1e-3), "ms", 0, true},
	{"warm Ship from the JVM client (mTLS, JSON), p99", metric("BenchmarkJVMClientShip", "p99-µs", 1e-3), "ms", 0, true},
	{"warm Ship of a built job, p99", metric("BenchmarkWarmShipBuiltJob", "p99-µs", 1e-3), "ms", 1, true},
	{"floor: bare health Check on serve's socket, p50", metric("BenchmarkWarmFloor", "p50-µs", 1e-3), "ms", 0, true},
	{"floor: bare health Check on serve's socket, p99", metric("BenchmarkWarmFloor", "p99-µs", 1e-3), "ms", 0, true},
	{"new job (content seen before) ÷ floor, p50", metric("BenchmarkWarmShip/content=shared", "p50-x-floor", 1), "×", 3, true},
	{"new job (content seen before) ÷ floor, p99", metric("BenchmarkWarmShip/content=shared", "p99-x-floor", 1), "×", 4, true},
	{"new job (new content) ÷ floor, p50", metric("BenchmarkWarmShip/content=new", "p50-x-floor", 1), "×", 0, true},
	{"new job (new content) ÷ floor, p99", metric("BenchmarkWarmShip/content=new", "p99-x-floor", 1), "×", 0, true},
	{"built job ÷ floor, p50", metric("BenchmarkWarmShipBuiltJob", "p50-x-floor", 1), "×", 1.5, true},
	{"built job ÷ floor, p99", metric("BenchmarkWarmShipBuiltJob", "p99-x-floor", 1), "×", 0, true},
	{"1 caller, new jobs: throughput", metric("BenchmarkShipLoad/callers=1", "ships/s", 1), "ships/s", 0, false},
	{"10 callers, new jobs: throughput", metric("BenchmarkShipLoad/callers=10", "ships/s", 1), "ships/s", 0, false},
	{"10 callers, new jobs: p99", metric("BenchmarkShipLoad/callers=10", "p99-µs", 1e-3), "ms", 0, true},
	{"50 callers, new jobs: throughput", metric("BenchmarkShipLoad/callers=50", "ships/s", 1), "ships/s", 2000, false},
	{"50 callers, new jobs: p50", metric("BenchmarkShipLoad/callers=50", "p50-µs", 1e-3), "ms", 0, true},
	{"50 callers, new jobs: p99", metric("BenchmarkShipLoad/callers=50", "p99-µs", 1e-3), "ms", 50, true},
	{"cold keyship ship through the file plugin", metric("BenchmarkColdShip", "ns/op", 1e-6), "ms", 0, true},
	{"1000 fetches over loopback HTTPS", metric("BenchmarkFetch1000", "ns/op", 1e-6), "ms", 100, true},
	{"allocations per fetch", metric("BenchmarkFetch1000", "allocs/op", 1e-3), "allocs", 42, true},
	{"1 job × 10,000 executors, fetch URIs (job built)", metric("BenchmarkShipPerExecutor/TARGET_FETCH/executors=10000", "ms/ship", 1), "ms", 50, true},
	{"cost per extra executor (Mesos secrets, job built)", metric("BenchmarkShipPerExecutor/TARGET_MESOS/executors=1000", "ns/executor", 1e-3), "µs", 0, true},
	{"cost per extra executor (fetch URIs, job built)", metric("BenchmarkShipPerExecutor/TARGET_FETCH/executors=1000", "ns/executor", 1e-3), "µs", 0, true},
	{"heap kept per 1000 live jobs (keyship serve)", metric("BenchmarkHeapPer1000Jobs", "MB/1000jobs", 1), "MB", 0, true},
	{"cold ship: file plugin ÷ built-in backend", ratio("BenchmarkColdShip", "BenchmarkColdShipBuiltin", "ns/op"), "×", 1.5, true},
	{"new-job Ship, --ha zookeeper ÷ --ha none, p50", ratio("BenchmarkHAShip/ha=zookeeper", "BenchmarkHAShip/ha=none", "p50-µs"), "×", 2, true},
	{"ZooKeeper writes per new-job Ship (--ha zookeeper)", metric("BenchmarkHAShip/ha=zookeeper", "zk-writes/ship", 1), "writes", 1, true},
	{"cross-replica fetch (--ha zookeeper), p99", metric("BenchmarkHAFetch", "cross-p99-µs", 1e-3), "ms", 0, true},
	{"fetch from the replica that shipped (--ha zookeeper), p99", metric("BenchmarkHAFetch", "local-p99-µs", 1e-3), "ms", 0, true},
	{"ZooKeeper writes per fetch (--ha zookeeper)", metric("BenchmarkHAFetch", "zk-writes/fetch", 1), "writes", 0, true},
}

// sideBySide are figures of keyship serve measured with --ha none (a) and
// --ha zookeeper (b) on the same machine, printed in two columns with
// their ratio (b ÷ a).
var sideBySide = []struct {
	what, a, b, unit string
	scale            float64
	display          string
	target           float64 // the ratio's; 0: none
}{
	{"new-job Ship p50", "BenchmarkHAShip/ha=none", "BenchmarkHAShip/ha=zookeeper", "p50-µs", 1e-3, "ms", 2},
	{"new-job Ship p99", "BenchmarkHAShip/ha=none", "BenchmarkHAShip/ha=zookeeper", "p99-µs", 1e-3, "ms", 0},
	{"new-job Ship p50, ZooKeeper without fsync", "BenchmarkHAShip/ha=none", "BenchmarkHAShip/ha=zookeeper-nofsync", "p50-µs", 1e-3, "ms", 0},
	{"new-job Ship p99, ZooKeeper without fsync", "BenchmarkHAShip/ha=none", "BenchmarkHAShip/ha=zookeeper-nofsync", "p99-µs", 1e-3, "ms", 0},
}

// coldRows are the cold path's figures (issue 23): BenchmarkColdStart times
// whole processes side by side, round by round, so they are ratios to
// what the same run measured: a Go hello world (the floor of any Go process
// here), grpcfloor (the floor of a process that links gRPC and the plugin
// protocol, as keyship and every plugin must), the built-in backend, and
// the openssl + keytool pipeline. Each
// comes in wall time, the target's measure, and in CPU time, steadier on a
// loaded machine. The base- rows are another build timed in the same run
// ($KEYSHIP_BASELINE_BIN): before and after, side by side.
var coldRows = func() []row {
	rs := []row{
		{"a program linking only gRPC and the plugin protocol ÷ Go hello world", metric("BenchmarkColdStart", "grpc-floor-x-floor", 1), "×", 0, true},
		{"  in CPU time", metric("BenchmarkColdStart", "grpc-floor-cpu-x-floor", 1), "×", 0, true},
	}
	for _, r := range []struct {
		what, metric string
		target       float64
		lower        bool
	}{
		{"keyship --version ÷ Go hello world", "version-x-floor", 2, true},
		{"keyship-backend-file started alone ÷ Go hello world", "plugin-file-x-floor", 0, true},
		{"cold ship, pinned file plugin ÷ built-in backend", "ship-x-builtin", 1.5, true},
		{"openssl+keytool ÷ cold ship, pinned file plugin", "manual-x-ship", 20, false},
	} {
		for _, b := range []struct{ prefix, label string }{{"", ""}, {"base-", " (baseline)"}} {
			rs = append(rs,
				row{r.what + b.label, metric("BenchmarkColdStart", b.prefix+r.metric, 1), "×", r.target, r.lower},
				row{"  in CPU time" + b.label, metric("BenchmarkColdStart", b.prefix+strings.Replace(r.metric, "-x-", "-cpu-x-", 1), 1), "×", r.target, r.lower})
		}
	}
	for _, a := range []struct{ what, metric string }{
		{"Go hello world", "floor-ms"}, {"gRPC floor (grpcfloor)", "grpc-floor-ms"}, {"keyship --version", "version-ms"}, {"keyship-backend-file alone", "plugin-file-ms"},
		{"cold ship, pinned file plugin", "ship-plugin-ms"}, {"cold ship, built-in backend", "ship-builtin-ms"}, {"openssl+keytool", "manual-ms"},
	} {
		rs = append(rs, row{"  absolute: " + a.what, metric("BenchmarkColdStart", a.metric, 1), "ms", 0, true},
			row{"  absolute: " + a.what + " (baseline)", metric("BenchmarkColdStart", "base-"+a.metric, 1), "ms", 0, true})
	}
	return rs
}()

// machine names the machine the figures come from.
func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d cores, %s, %s/%s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH)
}

func format(v float64, unit string) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}

func report(w io.Writer, r results) {
	fmt.Fprintf(w, "\nkeyship hot paths on %s: median of each benchmark's runs [min–max]\n", machine())
	fmt.Fprintf(w, "%-58s %14s %20s %12s %7s\n", "figure", "median", "[min–max]", "target", "ratio")
	printRows(w, r, rows, true)
	if _, ok := r["BenchmarkColdStart"]; ok {
		fmt.Fprintf(w, "\ncold path, whole processes side by side in one run (BenchmarkColdStart), ratios first:\n")
		printRows(w, r, coldRows, false)
	}
	printSideBySide(w, r)
	printComparisons(w, r)
}

// printRows prints each row's median, spread, target and ratio; a row not
// measured is printed as such when notRun, else left out.
func printRows(w io.Writer, r results, rows []row, notRun bool) {
	for _, row := range rows {
		f, ok := row.measured(r)
		if !ok {
			if notRun {
				fmt.Fprintf(w, "%-58s %14s\n", row.what, "(not run)")
			}
			continue
		}
		med := f.median()
		spread := fmt.Sprintf("[%s–%s]", strings.TrimSuffix(format(slices.Min(f), row.unit), " "+row.unit), format(slices.Max(f), row.unit))
		target, rat := "-", "-"
		if row.target > 0 {
			target = format(row.target, row.unit)
			if row.lower {
				rat = fmt.Sprintf("%.2f×", row.target/med)
			} else {
				rat = fmt.Sprintf("%.2f×", med/row.target)
			}
		}
		fmt.Fprintf(w, "%-58s %14s %20s %12s %7s\n", row.what, format(med, row.unit), spread, target, rat)
	}
}

// printSideBySide prints the --ha none and --ha zookeeper figures in two
// columns with their ratio.
func printSideBySide(w io.Writer, r results) {
	fmt.Fprintf(w, "\nkeyship serve --ha none vs --ha zookeeper (3 ZooKeeper servers, same machine): medians\n")
	fmt.Fprintf(w, "%-42s %14s %14s %9s %8s\n", "figure", "--ha none", "--ha zookeeper", "ratio", "target")
	for _, p := range sideBySide {
		a, okA := metric(p.a, p.unit, p.scale)(r)
		bf, okB := metric(p.b, p.unit, p.scale)(r)
		if !okA || !okB {
			fmt.Fprintf(w, "%-42s %14s\n", p.what, "(not run)")
			continue
		}
		ma, mb := a.median(), bf.median()
		target := "-"
		if p.target > 0 {
			target = fmt.Sprintf("≤ %.0f×", p.target)
		}
		fmt.Fprintf(w, "%-42s %14s %14s %8.2f× %8s\n", p.what, format(ma, p.display), format(mb, p.display), mb/ma, target)
	}
}

// printComparisons prints the ratios that benchmarks comparing keyship with
// another way report themselves.
func printComparisons(w io.Writer, r results) {
	// Benchmarks that compare keyship with another way report their own
	// ratio as a metric ending in "x-faster".
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range r {
			if !yield(name) {
				return
			}
		}
	})
	for _, name := range names {
		for unit, vs := range r[name] {
			if strings.HasSuffix(unit, "x-faster") {
				f := figure(vs)
				fmt.Fprintf(w, "%-58s %14s %20s\n", strings.TrimPrefix(name, "Benchmark")+" ("+unit+")",
					fmt.Sprintf("%.1f×", f.median()), fmt.Sprintf("[%.1f–%.1f×]", slices.Min(f), slices.Max(f)))
			}
		}
	}
}

func main() {
	r, err := parse(os.Stdin, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	report(os.Stdout, r)
}
