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
