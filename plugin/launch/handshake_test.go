package launch_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
)

// script writes an executable shell script plugin whose body is body.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyship-backend-script")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestNonGoAuthorsMistakesAreNamed: the usual mistakes of a plugin written
// without the Go SDK each get an error that says what happened (with the
// handshake line or the refused peer), not "exited (signal: killed) during
// Info", and points at the protocol page.
func TestNonGoAuthorsMistakesAreNamed(t *testing.T) {
	const sock = `"$PLUGIN_UNIX_SOCKET_DIR/plugin.sock"`
	for _, c := range []struct {
		name, body string
		want       []string // regexps
		not        []string // regexps the error must not match
	}{
		{"wrapper without exec", `"` + pluginBin + `"`,
			[]string{`held by pid \d+, a child of the plugin \(pid \d+\)`, `must exec the plugin`, `PROTOCOL.md#peers`}, nil},
		{"wrong cookie", `[ "$KEYSHIP_BACKEND_PLUGIN" = "not-the-cookie" ] || { echo "bad cookie" >&2; exit 1; }`,
			[]string{`exited \(exit status 1\) before the plugin handshake`, `KEYSHIP_BACKEND_PLUGIN`, `PROTOCOL.md#handshake`}, nil},
		{"wrong app protocol version", `echo "1|2|unix|` + "$PLUGIN_UNIX_SOCKET_DIR/plugin.sock" + `|grpc"; sleep 60`,
			[]string{`bad handshake: incompatible API version with plugin. Plugin version: 2`, `PROTOCOL.md#handshake`}, nil},
		{"crash before the handshake", `echo "Traceback (most recent call last):" >&2
i=0; while [ $i -lt 30 ]; do echo "  frame $i" >&2; i=$((i+1)); done
echo "ModuleNotFoundError: No module named 'grpc'" >&2; exit 1`,
			[]string{`exited \(exit status 1\) before the plugin handshake`, `its last lines on stderr:\n    (.*\n    )*ModuleNotFoundError: No module named 'grpc'`, `frame 29`},
			[]string{`frame 20\n`, `Traceback`}}, // bounded: the last 10 lines
		{"handshake line without its fifth field", `echo "1|1|unix|$PLUGIN_UNIX_SOCKET_DIR/plugin.sock"; sleep 60`,
			[]string{`field 5 of the handshake line must be grpc`, `PROTOCOL.md#handshake`}, nil},
		{"handshake line that does not parse", `echo "hello, host"; sleep 60`,
			[]string{`bad handshake: Unrecognized remote plugin message: hello, host`, `PROTOCOL.md#handshake`}, nil},
		{"never listens", `echo "1|1|unix|$PLUGIN_UNIX_SOCKET_DIR/plugin.sock|grpc"; sleep 60`,
			[]string{`printed the handshake line "1\|1\|unix\|/[^"]*/plugin.sock\|grpc", but nothing accepts connections`, `no such file or directory`, `PROTOCOL.md#socket`}, nil},
		{"tcp address", `echo "1|1|tcp|127.0.0.1:1|grpc"; sleep 60`,
			[]string{`handshake line "1\|1\|tcp\|127.0.0.1:1\|grpc" does not name a unix socket in PLUGIN_UNIX_SOCKET_DIR`, `PROTOCOL.md#socket`}, nil},
		{"socket taken over", `( /usr/bin/python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); time.sleep(60)' ` + sock + ` & )
while [ ! -S ` + sock + ` ]; do sleep 0.01; done
echo "1|1|unix|$PLUGIN_UNIX_SOCKET_DIR/plugin.sock|grpc"; sleep 60`,
			[]string{`the socket is held by pid \d+ \(uid \d+\), not by the plugin \(pid \d+, uid \d+\)`}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := launch.Start(context.Background(), "kit", script(t, c.body), "", nil)
			if err == nil {
				t.Fatal("the plugin loaded")
			}
			t.Log(err)
			for _, want := range c.want {
				if !regexp.MustCompile(want).MatchString(err.Error()) {
					t.Errorf("error does not match %q", want)
				}
			}
			for _, not := range c.not {
				if regexp.MustCompile(not).MatchString(err.Error()) {
					t.Errorf("error matches %q", not)
				}
			}
			if strings.Contains(err.Error(), "signal: killed") {
				t.Errorf("error blames a kill keyship made itself")
			}
			if !errors.Is(err, plugin.ErrInvalidConfig) && !errors.Is(err, plugin.ErrPluginExited) {
				t.Errorf("error wraps neither ErrInvalidConfig nor ErrPluginExited")
			}
		})
	}
}

// lineWaiter is a log writer that signals when a line containing want has
// been written.
type lineWaiter struct {
	want string
	mu   sync.Mutex
	buf  strings.Builder
	seen chan string
}

func (w *lineWaiter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, w.want) {
			select {
			case w.seen <- line:
			default:
			}
		}
	}
	return len(b), nil
}

// TestPluginKilledByKeyshipIsNotAnError: a plugin that keyship stops itself
// (Close, at the end of every successful ship) is logged at DEBUG, not as
// an ERROR "signal: killed".
func TestPluginKilledByKeyshipIsNotAnError(t *testing.T) {
	w := &lineWaiter{want: "plugin process exited", seen: make(chan string, 1)}
	logger := hclog.New(&hclog.LoggerOptions{Output: w, Level: hclog.Trace})
	s, err := launch.Start(context.Background(), "file", pluginBin, "", logger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case line := <-w.seen:
		t.Log(line)
		if !strings.Contains(line, "[DEBUG]") || strings.Contains(line, "signal: killed") {
			t.Errorf("a plugin keyship closed is logged above DEBUG, or as killed: %s", line)
		}
	case <-ctx.Done():
		t.Fatal("the plugin's exit was never logged")
	}
}
