package spec

import (
	"fmt"
	"strings"

	"github.com/google/shlex"
)

// logicalLine is one line of a text document after joining the physical
// lines that end with a backslash.
type logicalLine struct {
	num  int    // the number of its first physical line, from 1
	text string // without the line break(s)
}

// logicalLines splits data into lines (LF or CRLF). A line that ends with an
// odd number of backslashes continues on the next one: the backslash and the
// line break are dropped, and so is the leading space of the next line when
// trimNext is set (Java properties); comment lines (first non-space
// character '#', or '!' when bang is set) never continue.
func logicalLines(data []byte, trimNext, bang bool) []logicalLine {
	phys := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	var out []logicalLine
	for i := 0; i < len(phys); i++ {
		start := i
		line := phys[i]
		if isComment(line, bang) {
			out = append(out, logicalLine{num: start + 1, text: line})
			continue
		}
		for endsWithBackslash(line) && i+1 < len(phys) {
			i++
			next := phys[i]
			if trimNext {
				next = strings.TrimLeft(next, " \t\f")
			}
			line = line[:len(line)-1] + next
		}
		out = append(out, logicalLine{num: start + 1, text: line})
	}
	return out
}

func isComment(line string, bang bool) bool {
	t := strings.TrimLeft(line, " \t\f")
	return t == "" || t[0] == '#' || bang && t[0] == '!'
}

// endsWithBackslash reports whether s ends with an odd number of backslashes.
func endsWithBackslash(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// shellWords splits a line into words the way a POSIX shell does, without
// expansions, with google/shlex: blanks separate words; '...' keeps its
// text; "..." keeps its text with \" \\ \$ and \` unescaped; a backslash
// outside quotes escapes the next character; a word starting with '#'
// starts a comment. It returns why the line cannot be split (an
// unterminated quote, a backslash at its end), or "".
//
// shlex drops a backslash inside double quotes whatever follows it, where a
// POSIX shell keeps it before any character but $ ` " \ and newline
// ("a\b" is a\b to sh, ab to shlex): such a line is refused, so that a
// password is never read differently from what the shell would pass.
func shellWords(line string) ([]string, string) {
	if reason := shellQuotes(line); reason != "" {
		return nil, reason
	}
	words, err := shlex.Split(line)
	if err != nil {
		return nil, "cannot split the line into words: " + err.Error()
	}
	return words, ""
}

// shellQuotes returns why shlex would not split line as a POSIX shell does
// (see shellWords), or "".
func shellQuotes(line string) string {
	var quote byte // '\'', '"' or 0
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			}
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(line):
				if strings.IndexByte("\"\\$`", line[i+1]) < 0 {
					return fmt.Sprintf("a backslash inside double quotes before %q, which a shell keeps and keyship would drop; use single quotes", line[i+1])
				}
				i++
			}
		case c == '\\':
			i++
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return ""
		}
	}
	switch quote {
	case '\'':
		return "unterminated single quote"
	case '"':
		return "unterminated double quote"
	}
	return ""
}

// lineField names a line of a document in a FieldError.
func lineField(n int) string { return fmt.Sprintf("line %d", n) }

// collected is a set of settings read from a text document, with the line
// of each; a setting given twice with different values is a problem.
type collected struct {
	vals  map[string]string
	lines map[string]int
	errs  *Errors
}

func newCollected() *collected {
	return &collected{vals: map[string]string{}, lines: map[string]int{}, errs: &Errors{}}
}

func (c *collected) set(key, value string, line int) {
	if old, ok := c.vals[key]; ok {
		if old != value {
			c.errs.add(displayKey(key), "", fmt.Sprintf("set more than once, to different values (lines %d and %d)", c.lines[key], line))
		}
		return
	}
	c.vals[key] = value
	c.lines[key] = line
}

func (c *collected) result() (map[string]string, error) {
	if len(c.errs.List) > 0 {
		return nil, c.errs
	}
	return c.vals, nil
}

// ReadEnv reads KEY=VALUE environment assignments, as in an env file, a
// systemd EnvironmentFile, a shell script of exports or the seed's one-line
// examples ("LIBPROCESS_SSL_ENABLED=true LIBPROCESS_SSL_KEY_FILE=... bin/master.sh"):
//
//   - blank lines and lines starting with '#' are skipped;
//   - each line is split into words like a POSIX shell does (quotes and
//     backslashes; no expansion: "$HOME" stays as written); a line ending
//     with a backslash continues on the next;
//   - a leading "export" or "env" word is skipped; then each NAME=VALUE word
//     is an assignment, up to the first word that is not one (the command
//     that the assignments are for, which is ignored with the rest of its
//     line);
//   - a variable assigned twice must get the same value both times.
//
// Problems are reported together as *Errors; they name the line or the
// variable, never a value.
func ReadEnv(data []byte) (map[string]string, error) {
	return readEnv(data).result()
}

// readEnv is ReadEnv, keeping what it read whatever the problems.
func readEnv(data []byte) *collected {
	c := newCollected()
	for _, l := range logicalLines(data, false, false) {
		if isComment(l.text, false) {
			continue
		}
		words, reason := shellWords(l.text)
		if reason != "" {
			c.errs.add(lineField(l.num), "", reason)
			continue
		}
		if len(words) > 0 && (words[0] == "export" || words[0] == "env") {
			words = words[1:]
		}
		for _, w := range words {
			name, value, ok := strings.Cut(w, "=")
			if !ok || !envName(name) {
				break
			}
			c.set(name, value, l.num)
		}
	}
	return c
}

// envName reports whether s is a shell variable name.
func envName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range []byte(s) {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
