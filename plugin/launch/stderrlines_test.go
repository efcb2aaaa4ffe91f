package launch_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/plugin/launch"
)

// badStderrEnv makes the test binary the host of a plugin that writes
// hclog-looking JSON with non-string fields on stderr (badStderrHost),
// instead of running the tests; its value is the real plugin binary.
const badStderrEnv = "KEYSHIP_LAUNCH_TEST_BAD_STDERR"

// badStderrLines are stderr lines that go-plugin's log parser (parseJSON,
// v1.6.3 to v1.8.0) type-asserts to string unchecked; each carries a marker
// the host log must still show.
var badStderrLines = []struct{ line, marker string }{
	{`{"@message": 4711, "@level": "warn"}`, "4711"},
	{`{"@message": "level is an object", "@level": {"x": 1}}`, "level is an object"},
	{`{"@message": "timestamp is a number", "@level": "info", "@timestamp": 5}`, "timestamp is a number"},
	{`{"@message": null, "note": "message is null"}`, "message is null"},
}

// badStderrScript is a plugin that writes badStderrLines on stderr, then
// execs the real plugin bin (exitCode < 0) or exits with exitCode.
func badStderrScript(dir, bin string, exitCode int) (string, error) {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	for _, l := range badStderrLines {
		fmt.Fprintf(&b, "echo '%s' >&2\n", l.line)
	}
	if exitCode < 0 {
		fmt.Fprintf(&b, "exec '%s'\n", bin)
	} else {
		fmt.Fprintf(&b, "exit %d\n", exitCode)
	}
	path := filepath.Join(dir, fmt.Sprintf("keyship-backend-badstderr%d", exitCode+1))
	return path, os.WriteFile(path, []byte(b.String()), 0o755)
}

// markerLog is a log writer that closes all once every marker of
// badStderrLines has been written in a line of the plugin's logger.
type markerLog struct {
	w    io.Writer
	mu   sync.Mutex
	seen map[string]bool
	all  chan struct{}
}

func (l *markerLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "keyship-backend-badstderr") {
			continue
		}
		for _, m := range badStderrLines {
			if strings.Contains(line, m.marker) && !l.seen[m.marker] {
				l.seen[m.marker] = true
				if len(l.seen) == len(badStderrLines) {
					close(l.all)
				}
			}
		}
	}
	return l.w.Write(b)
}

// badStderrHost starts, as a host logging at DEBUG (to stderr), a plugin
// that writes badStderrLines and then serves; it asks for Info, waits until
// every line is in the log, and prints "survived". Then it starts one that
// writes them and exits, and prints the start error.
func badStderrHost(bin string) {
	dir, err := os.MkdirTemp("", "badstderr")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer func() { _ = os.RemoveAll(dir) }()
	log := &markerLog{w: os.Stderr, seen: map[string]bool{}, all: make(chan struct{})}
	logger := hclog.New(&hclog.LoggerOptions{Output: log, Level: hclog.Debug})
	serving, err := badStderrScript(dir, bin, -1)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	s, err := launch.Start(context.Background(), "kit", serving, "", logger)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	info, err := s.Info(context.Background())
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("info:", info.Name)
	<-log.all
	_ = s.Close()
	fmt.Println("survived")
	failing, err := badStderrScript(dir, bin, 3)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	_, err = launch.Start(context.Background(), "kit", failing, "", logger)
	fmt.Printf("start error: %q\n", fmt.Sprint(err))
}

// TestPluginStderrWithNonStringLogFieldsDoesNotCrashHost: a plugin whose
// stderr lines are JSON objects with a non-string "@message", "@level" or
// "@timestamp" (which go-plugin's log parser type-asserts unchecked, killing
// the host with a panic in its stderr goroutine) neither crashes keyship nor
// stops the plugin from working; each line is still in the host log, and in
// the stderr a failed start quotes. The host runs in a subprocess, as a
// panic there would end the test binary.
func TestPluginStderrWithNonStringLogFieldsDoesNotCrashHost(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), badStderrEnv+"="+pluginBin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Logf("host stdout:\n%s", out)
	if err != nil {
		t.Fatalf("the host did not survive (%v); its stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(string(out), "info: file\n") || !strings.Contains(string(out), "survived\n") {
		t.Fatalf("the plugin did not work, or the host did not see every line; its stderr:\n%s", stderr.String())
	}
	_, startErr, _ := strings.Cut(string(out), "start error: ")
	for _, l := range badStderrLines {
		if !strings.Contains(startErr, l.marker) {
			t.Errorf("the failed start's error does not quote the stderr line with %q", l.marker)
		}
	}
	if !strings.Contains(startErr, "exit status 3") {
		t.Errorf("the failed start's error does not give the exit status")
	}
}

// TestStderrLines: the plugin's stderr reaches go-plugin line for line and
// byte for byte, except the JSON objects whose "@message", "@level" or
// "@timestamp" is not a string, which get those values as strings; a line
// too long for go-plugin to parse passes as is, and so does a last line
// without its newline.
func TestStderrLines(t *testing.T) {
	long := `{"@message": 1, "pad": "` + strings.Repeat("x", launch.StderrLineMax) + `"}` + "\n"
	for _, c := range []struct{ name, in, want string }{
		{"hclog line", `{"@level":"info","@message":"hello","@timestamp":"2026-12-07T14:00:00.000000Z","k":1}` + "\n", ""},
		{"text", "Traceback (most recent call last):\n", ""},
		{"not an object", "[1, 2]\n5\nnull\n\n", ""},
		{"bad timestamp string", `{"@message": "m", "@timestamp": "yesterday"}` + "\n", ""},
		{"number message", `{"@message": 1, "@level": "warn"}` + "\n", `{"@level":"warn","@message":"1"}` + "\n"},
		{"object level", `{"@level": {"x": [1, 2]}, "@message": "m"}` + "\r\n", `{"@level":"{\"x\": [1, 2]}","@message":"m"}` + "\n"},
		{"number timestamp", `{"@timestamp": 5}` + "\n", `{"@timestamp":"5"}` + "\n"},
		{"null message", `{"@message": null}` + "\n", `{"@message":"null"}` + "\n"},
		{"bool, no newline", `{"@message": true}`, `{"@message":"true"}`},
		{"duplicate key, last wins", `{"@message": "s", "@message": 2}` + "\n", `{"@message":"2"}` + "\n"},
		{"too long to parse", long + `{"@message": 1}` + "\n", long + `{"@message":"1"}` + "\n"},
		{"lines around", "a\n" + `{"@message": 1}` + "\nb\n", "a\n" + `{"@message":"1"}` + "\nb\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := c.want
			if want == "" {
				want = c.in
			}
			got, err := io.ReadAll(launch.StderrLines(strings.NewReader(c.in)))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Errorf("got  %.200q\nwant %.200q", got, want)
			}
		})
	}
}
