package launch

import (
	"strings"
	"sync"
)

// Bounds of the stderr a failed start quotes in its error.
const (
	stderrTailLines = 10
	stderrTailBytes = 2 << 10
)

// stderrTail keeps the last lines a plugin wrote on stderr (at most
// stderrTailLines, stderrTailBytes in all), so that a plugin that dies before
// it serves (a Python traceback, a missing module) says why in the start
// error, not only in keyship's log at DEBUG. By protocol a plugin's stderr
// carries no secrets; the tail is bounded all the same.
type stderrTail struct {
	mu    sync.Mutex
	lines []string
	part  strings.Builder // the current line, until its newline
}

// Write implements io.Writer (go-plugin's ClientConfig.Stderr).
func (t *stderrTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range p {
		if b == '\n' {
			t.push(t.part.String())
			t.part.Reset()
			continue
		}
		if t.part.Len() < stderrTailBytes-1 {
			t.part.WriteByte(b)
		}
	}
	return len(p), nil
}

func (t *stderrTail) push(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > stderrTailLines {
		t.lines = t.lines[len(t.lines)-stderrTailLines:]
	}
	size := 0
	for i := len(t.lines) - 1; i >= 0; i-- {
		size += len(t.lines[i]) + 1
		if size > stderrTailBytes {
			t.lines = t.lines[i+1:]
			break
		}
	}
}

// String returns the kept lines, each indented, or "" when there are none.
func (t *stderrTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if t.part.Len() > 0 {
		lines = append(lines[:len(lines):len(lines)], t.part.String())
	}
	if len(lines) == 0 {
		return ""
	}
	return "\n    " + strings.Join(lines, "\n    ")
}
