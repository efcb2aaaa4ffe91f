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
