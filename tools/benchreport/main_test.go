package main

import (
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := `goos: linux
BenchmarkGet/in-process/refs=1-2   	   68698	     37870 ns/op	        37.87 µs/secret	    6242 B/op	      28 allocs/op
BenchmarkWarmShip-2   	    2030	   1739506 ns/op	      1514 p50-µs	      5339 p99-µs
BenchmarkColdShip   	       9	 224737271 ns/op
ok  	x	1s
`
	r, err := parse(strings.NewReader(in), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if r["BenchmarkGet/in-process/refs=1"]["ns/op"] != 37870 || r["BenchmarkWarmShip"]["p99-µs"] != 5339 || r["BenchmarkColdShip"]["ns/op"] != 224737271 {
		t.Fatalf("parsed %v", r)
	}
	if _, ok := rows[0].measured(r); ok {
		t.Error("overhead computed without the subprocess figure")
	}
}
