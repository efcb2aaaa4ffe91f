package kubernetes

import (
	"regexp"
	"strings"
	"testing"
)

// TestIsLabelMatchesThePattern holds isLabel to the regexp it replaced.
func TestIsLabelMatchesThePattern(t *testing.T) {
	label := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)
	cases := []string{"", "a", "0", "-", "a-", "-a", "a-b", "a--b", "A", "a_b", "a.b", "default", "refresher",
		strings.Repeat("a", 40), strings.Repeat("a", 41), "a" + strings.Repeat("-", 38) + "b", "a\n"}
	for _, s := range cases {
		if got, want := isLabel(s, maxLabel), label.MatchString(s); got != want {
			t.Errorf("%q: isLabel %v, the pattern %v", s, got, want)
		}
	}
}
