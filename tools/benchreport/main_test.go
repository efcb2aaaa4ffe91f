package main

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkGet/in-process/refs=1-2   	   68698	     37870 ns/op	        37.87 µs/secret	    6242 B/op	      28 allocs/op
BenchmarkGet/in-process/refs=1-2   	   68698	     40000 ns/op	        37.87 µs/secret	    6242 B/op	      28 allocs/op
BenchmarkGet/subprocess/refs=1-2   	   68698	    237870 ns/op
BenchmarkGet/subprocess/refs=1-2   	   68698	    290000 ns/op
BenchmarkWarmShip/content=new-2   	    2030	   1739506 ns/op	      1514 p50-µs	      5339 p99-µs
BenchmarkWarmShip/content=new-2   	    2030	   1739506 ns/op	      1000 p50-µs	      2000 p99-µs
BenchmarkWarmShip/content=new-2   	    2030	   1739506 ns/op	      1200 p50-µs	      9000 p99-µs
BenchmarkColdShip   	       9	 224737271 ns/op
BenchmarkHAShip/ha=none-2   	    2030	   1739506 ns/op	      1000 p50-µs	      3000 p99-µs
BenchmarkHAShip/ha=zookeeper-2   	    2030	   1739506 ns/op	      2500 p50-µs	      6000 p99-µs	         1.000 zk-writes/ship
ok  	x	1s
`

func TestParseKeepsEveryRun(t *testing.T) {
	r, err := parse(strings.NewReader(sample), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := r["BenchmarkWarmShip/content=new"]["p99-µs"]; len(got) != 3 || got[0] != 5339 || got[2] != 9000 {
		t.Fatalf("p99 runs %v", got)
	}
	if got := r["BenchmarkColdShip"]["ns/op"]; len(got) != 1 || got[0] != 224737271 {
		t.Fatalf("cold runs %v", got)
	}
}

func TestReportMediansSpreadsAndRatios(t *testing.T) {
	r, err := parse(strings.NewReader(sample), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	report(&out, r)
	got := out.String()
	for _, want := range []string{
		"cores",
		// p99 runs 5339, 2000, 9000 µs: median 5.34 ms, spread 2.00–9.00, target 3 ms.
		"warm Ship of a new job, new content (serve), p99",
		"5.34 ms", "[2.00–9.00 ms]", "0.56×",
		// overhead runs: 200 and 250 µs, paired in order: median 225.
		"225 µs",
		"(not run)",
		// --ha zookeeper beside --ha none: 2.50 ms against 1.00 ms, 2.50×
		// over the target of 2×.
		"new-job Ship p50", "1.00 ms", "2.50 ms", "2.50×", "≤ 2×",
		"ZooKeeper writes per new-job Ship (--ha zookeeper)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if f := (figure{3, 1, 2}); f.median() != 2 {
		t.Errorf("median of 3,1,2 = %v", f.median())
	}
	if f := (figure{4, 1, 2, 3}); f.median() != 2.5 {
		t.Errorf("median of 1..4 = %v", f.median())
	}
}

// TestReportRatiosToTheFloor: the warm Ships' ratios to the floor measured
// in the same run are reported beside their targets (3× for a new job's
// p50, 1.5× for a built job's).
func TestReportRatiosToTheFloor(t *testing.T) {
	const runs = `BenchmarkWarmShip/content=shared-2   	    2000	   1739506 ns/op	       400.0 floor-p50-µs	      900 floor-p99-µs	         2.5 p50-x-floor	      1000 p50-µs	         3.0 p99-x-floor	      2700 p99-µs
BenchmarkWarmShip/content=shared-2   	    2000	   1739506 ns/op	       400.0 floor-p50-µs	      900 floor-p99-µs	         3.5 p50-x-floor	      1400 p50-µs	         3.0 p99-x-floor	      2700 p99-µs
BenchmarkWarmShipBuiltJob-2   	    2000	   1739506 ns/op	       400.0 floor-p50-µs	      900 floor-p99-µs	         1.2 p50-x-floor	      480 p50-µs	         1.1 p99-x-floor	      990 p99-µs
`
	r, err := parse(strings.NewReader(runs), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	report(&out, r)
	lines := strings.Split(out.String(), "\n")
	for what, want := range map[string][]string{
		"new job (content seen before) ÷ floor, p50": {"3.00 ×", "[2.50–3.50 ×]", "1.00×"},
		"built job ÷ floor, p50":                     {"1.20 ×", "1.50 ×", "1.25×"},
	} {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, what) })
		if i < 0 {
			t.Errorf("report lacks %q:\n%s", what, out.String())
			continue
		}
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("%q: want %q in %q", what, w, lines[i])
			}
		}
	}
}

// TestReportPrintsColdRatios (issue 23, item 4): BenchmarkColdStart's
// figures come out as ratios to what the same run measured, beside their
// targets, with the baseline build's when it was timed too, and no line
// for a baseline that was not.
func TestReportPrintsColdRatios(t *testing.T) {
	const cold = "BenchmarkColdStart-2   1   9 ns/op   1.8 version-x-floor   2.4 version-cpu-x-floor   3.6 base-version-x-floor" +
		"   1.2 ship-x-builtin   25 manual-x-ship   8.0 floor-ms   1.7 grpc-floor-x-floor\n" +
		"BenchmarkColdStart-2   1   9 ns/op   2.0 version-x-floor   2.6 version-cpu-x-floor   3.5 base-version-x-floor" +
		"   1.4 ship-x-builtin   21 manual-x-ship   9.0 floor-ms   1.9 grpc-floor-x-floor\n"
	r, err := parse(strings.NewReader(cold), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	report(&out, r)
	got := out.String()
	if !strings.Contains(got, "cold path, whole processes side by side") {
		t.Errorf("report lacks the cold path's section:\n%s", got)
	}
	for _, want := range [][]string{
		// median of 1.8 and 2.0, target 2: met by 2/1.9.
		{"keyship --version ÷ Go hello world", "1.90 ×", "[1.80–2.00 ×]", "2.00 ×", "1.05×"},
		{"keyship --version ÷ Go hello world (baseline)", "3.55 ×", "0.56×"},
		{"in CPU time", "2.50 ×", "0.80×"},
		{"cold ship, pinned file plugin ÷ built-in backend", "1.30 ×", "1.50 ×", "1.15×"},
		// higher is better: 23 against 20.
		{"openssl+keytool ÷ cold ship, pinned file plugin", "23.0 ×", "20.0 ×", "1.15×"},
		{"absolute: Go hello world", "8.50 ms"},
		{"a program linking only gRPC and the plugin protocol ÷ Go hello world", "1.80 ×", "[1.70–1.90 ×]"},
	} {
		if line := lineOf(got, want[0]); line == "" {
			t.Errorf("report lacks a line %q:\n%s", want[0], got)
		} else {
			for _, f := range want[1:] {
				if !strings.Contains(line, f) {
					t.Errorf("line %q lacks %q", line, f)
				}
			}
		}
	}
	if strings.Contains(got, "cold ship, pinned file plugin ÷ built-in backend (baseline)") {
		t.Errorf("report has a baseline row that was not measured:\n%s", got)
	}
}

// lineOf returns the line of report whose figure is exactly what.
func lineOf(report, what string) string {
	for line := range strings.SplitSeq(report, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), what); ok && strings.HasPrefix(rest, "  ") {
			return line
		}
	}
	return ""
}
