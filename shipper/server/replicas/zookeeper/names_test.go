package zookeeper

import (
	"regexp"
	"strings"
	"testing"
)

// TestIsNameMatchesThePatterns holds isName to the regexps it replaced.
func TestIsNameMatchesThePatterns(t *testing.T) {
	clusterID := regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)
	election := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	cases := []string{"", "a", "A", "0", "-", ".", "_", "a-", "a.b_c-D", "-a", ".a", "_a", "a b", "a/b", "é",
		"refresher", "Refresher", strings.Repeat("a", 63), strings.Repeat("a", 64), "a" + strings.Repeat("-", 62), "a\n"}
	for _, s := range cases {
		if got, want := isName(s, "._-", true), clusterID.MatchString(s); got != want {
			t.Errorf("cluster id %q: isName %v, the pattern %v", s, got, want)
		}
		if got, want := isName(s, "-", false), election.MatchString(s); got != want {
			t.Errorf("election %q: isName %v, the pattern %v", s, got, want)
		}
	}
}
