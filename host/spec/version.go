package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a release of a consumer, major.minor: Spark 2.2, Flink 1.20.
// The zero Version means "not known": the settings are then written for the
// newest release keyship targets (Spark 3.x, Flink 2.x).
type Version struct {
	Major, Minor int
}

// ParseVersion reads a release as written by an operator: "2.2", "2.2.1"
// (the patch level is dropped: no setting keyship writes changes with it),
// "3" (3.0) or "v1.20".
func ParseVersion(s string) (Version, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	parts := strings.Split(t, ".")
	if t == "" || len(parts) > 3 {
		return Version{}, fmt.Errorf("version %q: want major.minor, e.g. 2.2 or 1.20", s)
	}
	var nums [2]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 {
			return Version{}, fmt.Errorf("version %q: want major.minor, e.g. 2.2 or 1.20", s)
		}
		if i < 2 {
			nums[i] = n
		}
	}
	if nums[0] == 0 {
		return Version{}, fmt.Errorf("version %q: no release 0.x is supported", s)
	}
	return Version{Major: nums[0], Minor: nums[1]}, nil
}

// String formats v as major.minor, or "" for the zero Version.
func (v Version) String() string {
	if v.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d.%d", v.Major, v.Minor)
}

// IsZero reports whether v is unknown.
func (v Version) IsZero() bool { return v == Version{} }

// Before reports whether v is known and older than major.minor.
func (v Version) Before(major, minor int) bool {
	return !v.IsZero() && (v.Major < major || v.Major == major && v.Minor < minor)
}

// AtLeast reports whether v is major.minor or newer; the zero Version (the
// newest release) is.
func (v Version) AtLeast(major, minor int) bool { return !v.Before(major, minor) }

// ConsumerVersion is the release of a consumer that settings are written
// for, and where that comes from.
type ConsumerVersion struct {
	Version
	// From says why, in words for the operator: "--flink-version",
	// "inferred from security.ssl.internal.keystore-type (Flink 1.20+)";
	// "" when nothing says and the newest release is assumed.
	From string
}

// knownReleases are the releases of each consumer whose settings keyship
// writes by their own rules (major.minor; any patch level of one is
// accepted): Spark 1.0–1.6, 2.0–2.4, 3.0–3.5 and 4.0–4.1, Flink 1.0–1.20
// and 2.0–2.2. A release outside them is refused (ParseRelease) rather than
// given the rules of a neighbour that its configuration may not follow.
var knownReleases = map[string][]Version{
	ConsumerSpark: releaseRange(map[int]int{1: 6, 2: 4, 3: 5, 4: 1}),
	ConsumerFlink: releaseRange(map[int]int{1: 20, 2: 2}),
}

// releaseRange lists major.0 to major.last for each major, in order.
func releaseRange(last map[int]int) []Version {
	var out []Version
	for major := 1; major <= 9; major++ {
		if n, ok := last[major]; ok {
			for minor := 0; minor <= n; minor++ {
				out = append(out, Version{major, minor})
			}
		}
	}
	return out
}

// KnownReleases returns the releases of consumer keyship knows, oldest
// first, or nil for a consumer that has none (libprocess).
func KnownReleases(consumer string) []Version { return knownReleases[consumer] }

// KnownRelease returns nil when keyship knows release v of consumer, and
// otherwise an error that names the known ones by series
// ("1.0–1.20, 2.0–2.2").
func KnownRelease(consumer string, v Version) error {
	known := knownReleases[consumer]
	for _, k := range known {
		if k == v {
			return nil
		}
	}
	var series []string
	for i := 0; i < len(known); {
		j := i
		for j+1 < len(known) && known[j+1].Major == known[i].Major {
			j++
		}
		series = append(series, known[i].String()+"–"+known[j].String())
		i = j + 1
	}
	if len(series) == 0 {
		return fmt.Errorf("%s has no releases keyship writes settings for", consumer)
	}
	return fmt.Errorf("%s %s is not a release keyship knows; it knows %s %s", consumer, v, consumer, strings.Join(series, ", "))
}

// ParseRelease reads a release of consumer as ParseVersion does and refuses
// one keyship does not know (KnownRelease), naming the known ones.
func ParseRelease(consumer, s string) (Version, error) {
	v, err := ParseVersion(s)
	if err != nil {
		return Version{}, err
	}
	if err := KnownRelease(consumer, v); err != nil {
		return Version{}, fmt.Errorf("version %q: %w", s, err)
	}
	return v, nil
}

// sparkNamespaceReleases are the Spark releases that read each
// spark.ssl.<ns> namespace of SparkNamespaces, since (zero: every release)
// up to but not including until (zero: still read), and where that is read.
var sparkNamespaceReleases = map[string]struct {
	since, until Version
	source       string
}{
	"ui":            {Version{2, 0}, Version{}, "SecurityManager.getSSLOptions(\"ui\") for the web UI (SparkUI, JettyUtils), Spark 2.0+ (SPARK-2750); Spark 1.x's SecurityManager.scala reads only spark.ssl.fs and spark.ssl.akka"},
	"standalone":    {Version{2, 0}, Version{}, "SecurityManager.getSSLOptions(\"standalone\") for the standalone Master and Worker UIs, Spark 2.0+ (SPARK-2750); Spark 1.x's SecurityManager.scala reads only spark.ssl.fs and spark.ssl.akka"},
	"historyServer": {Version{2, 0}, Version{}, "SecurityManager.getSSLOptions(\"historyServer\") for the history server, Spark 2.0+ (SPARK-2750); Spark 1.x's SecurityManager.scala reads only spark.ssl.fs and spark.ssl.akka"},
	"rpc":           {Version{4, 0}, Version{}, "SecurityManager.scala's rpcSSLOptions = getSSLOptions(\"rpc\"), Spark 4.0+ (SPARK-44937, RPC TLS); Spark 3.x's SecurityManager.scala has no rpc namespace"},
	"fs":            {Version{}, Version{3, 0}, "SecurityManager.scala's fileServerSSLOptions (SSLOptions.parse(sparkConf, \"spark.ssl.fs\", …) in Spark 1.x, getSSLOptions(\"fs\") in 2.x), which Spark 3.0's SecurityManager.scala no longer has"},
	"mesos":         {Version{2, 0}, Version{4, 0}, "MesosClusterUI's getSSLOptions(\"mesos\") (resource-managers/mesos, Spark 2.x–3.x); Spark 4.0 removed Mesos support"},
	"submission":    {Version{2, 0}, Version{3, 0}, "SecurityManager.scala's submissionServerSSLOptions (SSLOptions.parse(sparkConf, \"spark.ssl.submission\", …), for the REST submission server of Spark 2.x builds such as DC/OS Spark's); Spark 3.x's SecurityManager.scala does not read it"},
}

// SparkNamespaceWarnings returns a warning for each spark.ssl.<ns>
// namespace s names that the Spark release s.SparkVersion names (zero: the
// newest) does not read, citing the source that reads it and the releases
// that do: Spark ignores such settings, so the service they were meant for
// runs without them. Nil when s is not a Spark request or every namespace
// is read.
func SparkNamespaceWarnings(s *Spec) []string {
	if s.Spark == nil {
		return nil
	}
	v := s.SparkVersion.Version
	release := "the newest Spark (4.x) keyship assumes"
	if !v.IsZero() {
		release = "Spark " + v.String()
	}
	var out []string
	for _, ns := range s.Spark.Namespaces {
		r, ok := sparkNamespaceReleases[ns.Name]
		if !ok {
			continue
		}
		// The zero Version is the newest: AtLeast every release, Before none.
		if v.AtLeast(r.since.Major, r.since.Minor) && (r.until.IsZero() || v.Before(r.until.Major, r.until.Minor)) {
			continue
		}
		span := "Spark " + r.since.String() + "+"
		switch {
		case r.since.IsZero():
			span = "Spark before " + r.until.String()
		case !r.until.IsZero():
			span = "Spark " + r.since.String() + " to before " + r.until.String()
		}
		out = append(out, fmt.Sprintf("spark.ssl.%s.*: %s does not read the %s namespace, so its settings are ignored there (read by %s: %s); pass --spark-version for the release the job runs",
			ns.Name, release, ns.Name, span, r.source))
	}
	return out
}
