package launch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
)

// stderrLineMax is the longest stderr line (with its newline) that go-plugin
// parses as a log entry: its ClientConfig.PluginLogBufferSize, which keyship
// sets to this. A longer line reaches the log in pieces, as text.
const stderrLineMax = 64 << 10

// stringFields are the fields of a JSON log line that go-plugin's parser
// (parseJSON, v1.6.3 to v1.8.0) type-asserts to string unchecked: present
// with another type, they panic the host's stderr goroutine and so kill
// keyship. (A "@timestamp" string that does not parse is an error there,
// and the line is logged as text.)
var stringFields = []string{"@message", "@level", "@timestamp"}

// stderrLines is a plugin's stderr as go-plugin reads it: the same lines,
// byte for byte, except that a JSON object line whose "@message", "@level"
// or "@timestamp" is not a string has that value replaced by its JSON text
// as a string ({"@message": 1} becomes {"@message":"1"}), so that a plugin
// cannot crash the host through its log. No line is dropped.
type stderrLines struct {
	f    io.ReadCloser
	r    *bufio.Reader
	out  []byte // what is left of the current line
	long bool   // the current line is longer than stderrLineMax: passed as is
	err  error  // the read error, returned once out is empty
}

func newStderrLines(f io.ReadCloser) *stderrLines {
	return &stderrLines{f: f, r: bufio.NewReaderSize(f, stderrLineMax)}
}

// Read implements io.Reader.
func (s *stderrLines) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		line, err := s.r.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			s.out, s.long = line, true
			continue
		case s.long:
			s.out, s.long = line, false // the end of a long line
		default:
			s.out = safeLogLine(line)
		}
		s.err = err
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// Close implements io.Closer.
func (s *stderrLines) Close() error { return s.f.Close() }

// safeLogLine returns line, or, when it is a JSON object with a non-string
// value in one of stringFields, the object re-encoded with those values as
// strings (and line's newline, if it had one).
func safeLogLine(line []byte) []byte {
	body := bytes.TrimSuffix(line, []byte("\n"))
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return line // not what go-plugin parses as a log entry
	}
	changed := false
	for _, k := range stringFields {
		v, ok := fields[k]
		if !ok || bytes.HasPrefix(bytes.TrimSpace(v), []byte(`"`)) {
			continue
		}
		s, _ := json.Marshal(string(v)) // cannot fail
		fields[k] = s
		changed = true
	}
	if !changed {
		return line
	}
	safe, err := json.Marshal(fields)
	if err != nil {
		return line // cannot happen: every value was valid JSON
	}
	if len(body) < len(line) {
		safe = append(safe, '\n')
	}
	return safe
}
