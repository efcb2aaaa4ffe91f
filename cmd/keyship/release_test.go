package main_test

import (
	"strings"
	"testing"
)

// TestShipRefusesUnknownRelease (issue 22, item 4): --flink-version and
// --spark-version name a release keyship has the rules of (host/spec
// KnownRelease: Flink's release-1.0 … release-2.2 branches, Spark's
// branch-1.0 … branch-4.1), or keyship exits 2 naming the ones it knows.
func TestShipRefusesUnknownRelease(t *testing.T) {
	j := newJob(t)
	spec := j.spec(t, nil)
	tests := []struct {
		flag, v string
		code    int
		want    string
	}{
		{"--flink-version", "3.0", 2, "--flink-version: version \"3.0\": flink 3.0 is not a release keyship knows; it knows flink 1.0–1.20, 2.0–2.2"},
		{"--flink-version", "1.21", 2, "it knows flink 1.0–1.20, 2.0–2.2"},
		{"--spark-version", "5.0", 2, "it knows spark 1.0–1.6, 2.0–2.4, 3.0–3.5, 4.0–4.1"},
		{"--spark-version", "2.9", 2, "spark 2.9 is not a release keyship knows"},
		{"--flink-version", "1.20.1", 0, ""},
		{"--spark-version", "3.5", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.flag+" "+tt.v, func(t *testing.T) {
			r := j.ship(t, spec, tt.flag, tt.v)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, want %d and stderr holding %q:\n%s", r.code, tt.code, tt.want, r.stderr)
			}
		})
	}
}
