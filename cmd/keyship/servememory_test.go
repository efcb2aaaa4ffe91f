package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/host/memtest"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/server"
)

// sweepFlags make keyship serve zero an expired job at once, so that the
// memory test waits seconds, not the defaults' minute and a half.
// ships is how many Ships of the job the memory test makes, each for
// another task, over one connection.
const ships = 5

var sweepFlags = []string{"--sweep-interval", "200ms", "--zero-grace", "1ms"}

// TestServeKeepsNoPasswordAfterTheJob (issue 20, item 4): once a job with a
// 1 s TTL has expired and been swept, keyship serve holds no copy of its
// keystore password (counted in /proc/PID/mem, raw and base64-encoded as
// Connect's JSON carries it), whether the job was shipped over gRPC or
// Connect JSON, to TARGET_MESOS (the passwords travel in the response as
// secret environment values) and TARGET_FETCH, with or without the build
// cache. The test waits on serve's gauges (no live job, no live fetch
// grant), then polls the count until it is 0, and fails at a bound.
func TestServeKeepsNoPasswordAfterTheJob(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reading another process's memory needs root")
	}
	for _, tc := range []struct {
		name  string
		json  bool
		cache string
	}{
		{"grpc", false, "1s"}, {"grpc-build-cache-0", false, "0"},
		{"connect-json", true, "1s"}, {"connect-json-build-cache-0", true, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := make([]byte, 12)
			_, _ = rand.Read(raw)
			pw := "pw-" + hex.EncodeToString(raw) // made at run time: in no binary; 27 bytes, so base64 has no padding
			j := newJob(t)
			filetest.Seed(t, j.root, pw)
			specData, err := os.ReadFile(j.spec(t, nil))
			if err != nil {
				t.Fatal(err)
			}
			args := append([]string{"--listen", "unix://" + filepath.Join(t.TempDir(), "keyship.sock"),
				"--fetch-listen", "127.0.0.1:0", "--fetch-ca-out", filepath.Join(t.TempDir(), "fetch-ca.pem"),
				"--metrics-listen", "127.0.0.1:0", "--build-cache", tc.cache}, sweepFlags...)
			s := serve(t, j, args...)
			sock := strings.TrimPrefix(s.api, "unix://")
			hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			}}}
			defer hc.CloseIdleConnections()
			gc, err := server.Dial("unix://"+sock, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = gc.Close() }()
			for i := range ships {
				var body []byte
				if tc.json {
					body = shipJSON(t, hc, specData, fmt.Sprintf("task-%d", i))
				} else {
					body = shipGRPC(t, gc, specData, fmt.Sprintf("task-%d", i))
				}
				if !bytes.Contains(body, []byte(pw)) {
					t.Fatalf("the Ship's response carries no keystore password: the test proves nothing")
				}
				clear(body)
			}
			waitForGauges(t, s.metrics, "keyship_live_jobs 0", "keyship_live_fetch_grants 0")
			canaries := [][]byte{[]byte(pw), []byte(base64.StdEncoding.EncodeToString([]byte(pw)))}
			// The connection is still open: its write buffer may hold the
			// last response written on it, and net/http's pooled buffers
			// what they were not yet reused or zeroed for.
			bare, framed := waitForCanaries(t, s.cmd.Process.Pid, canaries, 1)
			t.Logf("after %d Ships, connection open: %d copies of the password on their own, %d in a response's encoding", ships, len(bare), len(framed))
			if len(bare) > 0 || len(framed) > openConnCopies {
				t.Errorf("keyship serve holds %d copies of the keystore password on their own (want 0) and %d in a response's encoding (want at most %d: one per response written, in net/http's buffers, and the connection's own) after its job expired and was swept:\n%s%s",
					len(bare), len(framed), openConnCopies, strings.Join(bare, ""), strings.Join(framed, ""))
			}
			// Once the connection is closed its write buffer goes back to
			// net/http's pool: freed at a later sweep's GC and handed to the
			// kernel, or reused (and overwritten) by the next connection.
			// Until then it may still hold that one copy, never more.
			_ = gc.Close()
			hc.CloseIdleConnections()
			bare, framed = waitForCanaries(t, s.cmd.Process.Pid, canaries, 0)
			t.Logf("connection closed: %d copies on their own, %d in a response's encoding", len(bare), len(framed))
			if len(bare) > 0 || len(framed) > openConnCopies {
				t.Errorf("keyship serve holds %d copies of the keystore password on their own (want 0) and %d in a response's encoding (want at most %d: one per response written, in net/http's buffers, and the connection's own) after its job expired and the connection closed:\n%s%s",
					len(bare), len(framed), openConnCopies, strings.Join(bare, ""), strings.Join(framed, ""))
			}
		})
	}
}

// waitForCanaries counts the canaries in process pid until no copy is on
// its own and at most framed are in a response's encoding (each sweep
// returns freed memory to the kernel), for at most 10 s, and returns the
// last count.
func waitForCanaries(t *testing.T, pid int, canaries [][]byte, framed int) (bare, inResponse []string) {
	t.Helper()
	bare, inResponse = findCanaries(t, pid, canaries)
	for deadline := time.Now().Add(10 * time.Second); (len(bare) > 0 || len(inResponse) > framed) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		bare, inResponse = findCanaries(t, pid, canaries)
	}
	return bare, inResponse
}

// shipJSON ships the job (TARGET_MESOS, TARGET_FETCH, a 1 s TTL) for one
// task through Connect's JSON protocol on the unix socket sock and returns
// the response's body with the secret values decoded.
func shipJSON(t *testing.T, c *http.Client, specData []byte, task string) []byte {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"jobId": "memory-job", "spec": specData, "tasks": []map[string]any{{"id": task, "role": "executor"}},
		"targets": []string{"TARGET_MESOS", "TARGET_FETCH"}, "ttlSeconds": 1})
	resp, err := c.Post("http://keyship/keyship.host.v1.ShipperService/Ship", "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("Ship over Connect JSON: %d %v", resp.StatusCode, err)
	}
	var values []byte
	// The Mesos secret values are base64 in JSON: decode them to check.
	var r struct {
		Tasks []struct {
			Env []struct {
				Secret struct {
					Value []byte `json:"value"`
				} `json:"secret"`
			} `json:"env"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	for _, ts := range r.Tasks {
		for _, e := range ts.Env {
			values = append(values, e.Secret.Value...)
			values = append(values, '\n')
		}
	}
	clear(body)
	return values
}

// shipGRPC is shipJSON over gRPC.
func shipGRPC(t *testing.T, c *server.Client, specData []byte, task string) []byte {
	t.Helper()
	resp, err := c.Ship(context.Background(), &hostv1.ShipRequest{JobId: "memory-job", Spec: specData, Tasks: []*hostv1.Task{{Id: task, Role: "executor"}},
		Targets: []hostv1.Target{hostv1.Target_TARGET_MESOS, hostv1.Target_TARGET_FETCH}, TtlSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	var values []byte
	for _, ts := range resp.GetTasks() {
		for _, e := range ts.GetEnv() {
			values = append(values, e.GetSecret().GetValue()...)
			values = append(values, '\n')
		}
	}
	return values
}

// waitForGauges waits until serve's /metrics at addr shows every line of
// want (bounded at a minute).
func waitForGauges(t *testing.T, addr string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(gaugeWait)
	for {
		resp, err := http.Get(addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			for _, w := range want {
				if sc.Text() == w {
					seen++
				}
			}
		}
		_ = resp.Body.Close()
		if seen == len(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve's metrics did not reach %q within %s", want, gaugeWait)
		}
		time.Sleep(gaugePoll)
	}
}

// openConnCopies bounds the copies of a response's encoding that serve
// keeps once its job is swept: keyship clears its own buffers (the
// codecs'), but net/http copies each response into buffers of its own (a
// connection's write buffer, HTTP/2's pooled per-stream buffers and frame
// buffer) that keep the bytes until they are reused, or freed and handed
// back to the kernel, which each sweep does (debug.FreeOSMemory). Most runs
// see 1 copy while the connection is open and 0 once it is closed; a
// buffer whose memory page is shared with memory in use stays, so the
// bound is one per response written plus the connection's own.
const openConnCopies = ships + 1

// findCanaries finds every canary in process pid's memory and tells apart
// the copies inside an encoded Ship response (the password after its
// KEYSHIP_KEYSTORE_PASSWORD name, in proto or JSON) from copies on their
// own (a string or buffer of the password alone); each is shown with the
// 128 bytes before and 64 after it, printable bytes as they are.
func findCanaries(t *testing.T, pid int, canaries [][]byte) (bare, framed []string) {
	t.Helper()
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mem.Close() }()
	for ci, c := range canaries {
		regions, err := memtest.Find(pid, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range regions {
			for _, off := range r.Offsets {
				at := r.Start + off
				from := max(r.Start, at-128)
				buf := make([]byte, min(r.End, at+uint64(len(c))+64)-from)
				n, _ := mem.ReadAt(buf, int64(from))
				buf = buf[:n]
				shown := fmt.Sprintf("canary %d at %#x (%s +%#x):\n%s\n", ci, at, r.Name, off, printable(buf))
				before := buf[:min(uint64(len(buf)), at-from)]
				if i := bytes.LastIndex(before, []byte("KEYSHIP_KEYSTORE_PASSWORD")); i >= 0 && len(before)-i < 64 {
					framed = append(framed, shown)
				} else {
					bare = append(bare, shown)
				}
			}
		}
	}
	return bare, framed
}

func printable(p []byte) string {
	out := make([]byte, len(p))
	for i, c := range p {
		if c >= 0x20 && c < 0x7f {
			out[i] = c
		} else {
			out[i] = '.'
		}
	}
	return string(out)
}

var gaugeWait = time.Minute

// gaugePoll is how often waitForGauges scrapes: seldom, as each scrape
// allocates in serve, and new allocations overwrite freed memory (copies of
// a password among it), which would hide copies a quiet serve keeps.
var gaugePoll = time.Second
