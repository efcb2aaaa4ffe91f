package conf

import (
	"strconv"
	"strings"
	"time"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
)

// The settings that make Spark reload its RPC truststore (Spark 4.0+).
const (
	SparkTrustStoreReloading        = "spark.ssl.rpc.trustStoreReloadingEnabled"
	SparkTrustStoreReloadIntervalMs = "spark.ssl.rpc.trustStoreReloadIntervalMs"
)

// SparkReloadSince is the first Spark release whose RPC truststore reloads:
// Spark 4.0 added TLS to its RPC (SPARK-44937), and with it
// SSLOptions.trustStoreReloadingEnabled and trustStoreReloadIntervalMs
// (core/src/main/scala/org/apache/spark/SSLOptions.scala), which
// TransportConf hands to network-common's ReloadingX509TrustManager.
var SparkReloadSince = spec.Version{Major: 4, Minor: 0}

// maxSparkReloadInterval is Spark's default reload interval (10000 ms):
// keyship never asks Spark to look less often than that.
const maxSparkReloadInterval = 10 * time.Second

// SparkReload returns the settings that make Spark v reload the RPC
// truststore that a watch swaps in place every refresh:
// trustStoreReloadingEnabled, and an interval of refresh, at least a second
// and at most Spark's own 10 s. It returns none when b ships no truststore
// or when v is unknown (the zero Version: keyship then writes for Spark 3.x)
// or older than SparkReloadSince: earlier Sparks have no reloading
// truststore.
//
// Spark's ReloadingX509TrustManager reloads when the truststore's canonical
// path or modification time changes, so the sandbox's ..data swap is seen;
// it reopens the store with the password it started with, so the
// truststore password must stay the same across rotations. The spark.ssl.rpc
// namespace takes its files from spark.ssl.*, but not its enabled switch:
// these settings act once spark.ssl.rpc.enabled=true.
func SparkReload(b *materialize.Bundle, v spec.Version, refresh time.Duration) []Setting {
	if !SparkReloads(v) || b.File(roleTruststore) == nil {
		return nil
	}
	interval := min(max(refresh, time.Second), maxSparkReloadInterval)
	return []Setting{
		{Key: SparkTrustStoreReloading, Value: "true"},
		{Key: SparkTrustStoreReloadIntervalMs, Value: strconv.FormatInt(interval.Milliseconds(), 10)},
	}
}

// SparkReloads reports whether Spark v is known to reload its RPC
// truststore.
func SparkReloads(v spec.Version) bool {
	return !v.IsZero() && v.AtLeast(SparkReloadSince.Major, SparkReloadSince.Minor)
}

// ReloadNote says, for a consumer whose stores a watch keeps fresh, which of
// them the consumer picks up by itself and which it reads once at start, so
// that --on-change must restart or signal it. sparkReloads reports that
// SparkReload's settings were emitted. The note is comment lines ("# ...").
func ReloadNote(consumer string, sparkReloads bool) string {
	var lines []string
	switch consumer {
	case ConsumerSpark:
		if sparkReloads {
			lines = append(lines,
				"Spark 4.0+ reloads its RPC truststore ("+SparkTrustStoreReloading+", above) once spark.ssl.rpc.enabled=true;",
				"it reopens it with the password it started with, so keep the truststore password fixed across rotations.")
		} else {
			lines = append(lines, "Spark reloads its RPC truststore from 4.0 on (--spark-version 4.0 or later emits the settings); older Sparks reload nothing.")
		}
		lines = append(lines, "Spark never reloads its keystore (nor the UI's stores): restart or signal the driver and executors with --on-change.")
	case ConsumerFlink:
		lines = append(lines, "Flink reads its keystore and truststore once, when it builds its SSL contexts: neither reloads;",
			"restart or signal the JobManager and TaskManagers with --on-change.")
	case ConsumerLibprocess:
		lines = append(lines, "libprocess reads its key, certificate and CA files once, at start: restart the component with --on-change.")
	}
	var b strings.Builder
	b.WriteString("# keyship --watch swaps the stores in place when a secret changes or an issued certificate is renewed.\n")
	for _, l := range lines {
		b.WriteString("# " + l + "\n")
	}
	return b.String()
}
