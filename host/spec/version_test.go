package spec

import (
	"strings"
	"testing"
)

// TestParseReleaseKnown (issue 22, item 4): a release keyship has no rules
// for is refused, naming the ones it has, rather than written for with the
// rules of the newest. The releases are the release branches of each
// project: apache/flink release-1.0 … release-1.20 and release-2.0 …
// release-2.2 (2.0 dropped flink-conf.yaml, security.ssl.enabled and
// akka.ssl.enabled: GlobalConfiguration.java, SecurityOptions.java, Flink
// 2.0); apache/spark branch-1.0 … branch-1.6, branch-2.0 … branch-2.4,
// branch-3.0 … branch-3.5 and branch-4.0 … branch-4.1.
func TestParseReleaseKnown(t *testing.T) {
	tests := []struct {
		consumer, in, source string
		want                 Version
		wantErr              string // "" for none
	}{
		{ConsumerFlink, "1.20.1", "release-1.20", Version{1, 20}, ""},
		{ConsumerFlink, "2.1", "release-2.1", Version{2, 1}, ""},
		{ConsumerFlink, "1.5", "release-1.5 (SecurityOptions: security.ssl.* only)", Version{1, 5}, ""},
		{ConsumerFlink, "2", "release-2.0", Version{2, 0}, ""},
		{ConsumerFlink, "3.0", "no release-3.0 branch", Version{}, "flink 3.0 is not a release keyship knows; it knows flink 1.0–1.20, 2.0–2.2"},
		{ConsumerFlink, "1.21", "1.20 is the last 1.x (Flink 2.0 release notes)", Version{}, "it knows flink 1.0–1.20, 2.0–2.2"},
		{ConsumerSpark, "3.5.4", "branch-3.5", Version{3, 5}, ""},
		{ConsumerSpark, "4.0", "branch-4.0 (SecurityManager.scala: spark.ssl.rpc)", Version{4, 0}, ""},
		{ConsumerSpark, "2.5", "2.4 is the last 2.x", Version{}, "spark 2.5 is not a release keyship knows; it knows spark 1.0–1.6, 2.0–2.4, 3.0–3.5, 4.0–4.1"},
		{ConsumerSpark, "5.0", "no branch-5.0", Version{}, "it knows spark 1.0–1.6"},
		{ConsumerSpark, "four", "not a version", Version{}, "want major.minor"},
	}
	for _, tt := range tests {
		t.Run(tt.consumer+" "+tt.in, func(t *testing.T) {
			got, err := ParseRelease(tt.consumer, tt.in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("%s: %v", tt.source, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("%s: err %v, want one holding %q", tt.source, err, tt.wantErr)
			case got != tt.want:
				t.Errorf("%s: got %v, want %v", tt.source, got, tt.want)
			}
		})
	}
}
