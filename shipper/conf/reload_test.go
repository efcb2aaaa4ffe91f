package conf

import (
	"strings"
	"testing"
	"time"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
)

// TestSparkReloadFollowsSparkSource checks the reload settings against
// Spark's own source:
//   - core/src/main/scala/org/apache/spark/SSLOptions.scala (Spark 4.0.0):
//     SSLOptions.parse reads "$ns.trustStoreReloadingEnabled" (Boolean,
//     default false) and "$ns.trustStoreReloadIntervalMs" (Int, default
//     10000) for ns "spark.ssl.rpc", which "does not inherit the default
//     enabled setting" of spark.ssl;
//   - common/network-common/src/main/java/org/apache/spark/network/util/
//     TransportConf.java (4.0.0): sslRpcTrustStoreReloadingEnabled() reads
//     spark.ssl.rpc.trustStoreReloadingEnabled, sslRpctrustStoreReloadIntervalMs()
//     spark.ssl.rpc.trustStoreReloadIntervalMs with conf.getInt (so the
//     value is a plain integer of milliseconds, no unit suffix);
//   - Spark 3.5 has neither (RPC TLS arrived in 4.0, SPARK-44937).
func TestSparkReloadFollowsSparkSource(t *testing.T) {
	b := jksBundle("pw")
	for _, c := range []struct {
		version string
		refresh time.Duration
		want    map[string]string // nil: no settings
	}{
		{"4.0.0", time.Minute, map[string]string{"spark.ssl.rpc.trustStoreReloadingEnabled": "true", "spark.ssl.rpc.trustStoreReloadIntervalMs": "10000"}},
		{"4.0.1", 2 * time.Second, map[string]string{"spark.ssl.rpc.trustStoreReloadingEnabled": "true", "spark.ssl.rpc.trustStoreReloadIntervalMs": "2000"}},
		{"4.1", 100 * time.Millisecond, map[string]string{"spark.ssl.rpc.trustStoreReloadingEnabled": "true", "spark.ssl.rpc.trustStoreReloadIntervalMs": "1000"}},
		{"v5.0", time.Minute, map[string]string{"spark.ssl.rpc.trustStoreReloadingEnabled": "true", "spark.ssl.rpc.trustStoreReloadIntervalMs": "10000"}},
		{"3.5.3", time.Minute, nil},
		{"2.4", time.Minute, nil},
		{"", time.Minute, nil}, // unknown: keyship writes for Spark 3.x
	} {
		var v spec.Version
		if c.version != "" {
			var err error
			if v, err = spec.ParseVersion(c.version); err != nil {
				t.Fatal(err)
			}
		}
		got := SparkReload(b, v, c.refresh)
		m := map[string]string{}
		for _, s := range got {
			m[s.Key] = s.Value
			if s.Password != nil {
				t.Errorf("%s carries a password", s.Key)
			}
		}
		if (c.want == nil) != (len(got) == 0) || (c.want != nil && (len(m) != len(c.want) || m[SparkTrustStoreReloading] != c.want[SparkTrustStoreReloading] ||
			m[SparkTrustStoreReloadIntervalMs] != c.want[SparkTrustStoreReloadIntervalMs])) {
			t.Errorf("SparkReload(%q, %s) = %v, want %v", c.version, c.refresh, m, c.want)
		}
	}
	noTrust := &materialize.Bundle{Files: b.Files[:1]}
	if got := SparkReload(noTrust, spec.Version{Major: 4}, time.Minute); got != nil {
		t.Errorf("SparkReload without a truststore: %v; want none", got)
	}
	// The settings are Spark properties like the others.
	got := SparkReload(b, spec.Version{Major: 4}, time.Minute)
	if out := Properties(got); !strings.Contains(out, "spark.ssl.rpc.trustStoreReloadingEnabled=true\n") || !strings.Contains(out, "spark.ssl.rpc.trustStoreReloadIntervalMs=10000\n") {
		t.Errorf("Properties of the reload settings:\n%s", out)
	}
}

// TestReloadNoteSaysWhatDoesNotReload: for every consumer the note says
// what it reads once and points at --on-change.
func TestReloadNoteSaysWhatDoesNotReload(t *testing.T) {
	for consumer, want := range map[string][]string{
		ConsumerSpark:      {"never reloads its keystore", "--on-change", "--spark-version"},
		ConsumerFlink:      {"neither reloads", "--on-change"},
		ConsumerLibprocess: {"once, at start", "--on-change"},
	} {
		note := ReloadNote(consumer, false)
		for _, w := range want {
			if !strings.Contains(note, w) {
				t.Errorf("ReloadNote(%s) lacks %q:\n%s", consumer, w, note)
			}
		}
		for _, line := range strings.Split(strings.TrimSuffix(note, "\n"), "\n") {
			if !strings.HasPrefix(line, "# ") {
				t.Errorf("ReloadNote(%s): line %q is not a comment", consumer, line)
			}
		}
	}
	if note := ReloadNote(ConsumerSpark, true); !strings.Contains(note, "spark.ssl.rpc.enabled=true") || !strings.Contains(note, "password") {
		t.Errorf("ReloadNote(spark, reloads) must say that RPC TLS must be on and the password fixed:\n%s", note)
	}
}
