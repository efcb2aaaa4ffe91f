package plugin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewLoggerWritesJSONAtTheEnvLevel(t *testing.T) {
	for _, c := range []struct {
		level     string
		wantDebug bool
	}{{"debug", true}, {"", false}, {"warn", false}} {
		t.Setenv(LogLevelEnv, c.level)
		var buf bytes.Buffer
		l := newLogger(&buf, "mystore")
		l.Debug("debug line", "ref", "/a")
		l.Warn("warn line")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if want := map[bool]int{true: 2, false: 1}[c.wantDebug]; len(lines) != want {
			t.Fatalf("level %q: %d lines, want %d:\n%s", c.level, len(lines), want, buf.String())
		}
		for _, line := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("level %q: not a JSON line: %q", c.level, line)
			}
			if m["@module"] != "mystore" {
				t.Errorf("level %q: @module = %v, want mystore", c.level, m["@module"])
			}
		}
	}
}
