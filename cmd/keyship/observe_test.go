package main_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyship/keyship/backends/file/filetest"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/server/audit"
)

// get fetches url with c and returns the status and body.
func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// fetchClient trusts the fetch server's self-signed certificate in caFile.
func fetchClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(readFile(t, caFile)) {
		t.Fatal("no fetch CA")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// metric returns the value of the sample whose name and labels match
// pattern (a regexp of the exposition line before the value), or -1.
func metric(text, pattern string) float64 {
	re := regexp.MustCompile(`(?m)^` + pattern + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// waitFor polls cond every 10 ms until it holds or d has passed.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// pluginPid returns the pid of the keyship-backend-file child of pid.
func pluginPid(t *testing.T, pid int) int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		open, end := strings.IndexByte(string(data), '('), strings.LastIndexByte(string(data), ')')
		if open < 0 || end < open {
			continue
		}
		rest := strings.Fields(string(data[end+1:]))
		if strings.HasPrefix(string(data[open+1:end]), "keyship-backend") { // comm: 15 bytes
			if len(rest) > 1 && rest[1] == strconv.Itoa(pid) {
				n, _ := strconv.Atoi(strings.TrimSpace(string(data[:open])))
				return n
			}
		}
	}
	t.Fatalf("no keyship-backend-file child of %d", pid)
	return 0
}

// TestServeMetricsHealthAndAudit runs keyship serve on TCP with mutual TLS,
// a fetch server, metrics and an audit log, and a test job: two Ships of
// one job with two tasks, a Check, the fetches of one task's URIs, one
// fetch again of a used-up URI and one of an unknown token. /metrics shows
// exactly these, the backend reads (6 refs for the one build, 6 for the
// Check) and the live job's certificates; the audit log has one line per
// call and fetch with the caller's certificate subject and every ref with
// its backend and version; after logrotate and SIGHUP it writes to a new
// file. /readyz turns unready when the backend plugin is killed and ready
// again once it is restarted. The keystore password (the canary) appears in
// no metric, health answer or audit line.
func TestServeMetricsHealthAndAudit(t *testing.T) {
	j := newJob(t)
	m := newMTLS(t)
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	fetchCA := filepath.Join(t.TempDir(), "fetch-ca.pem")
	s := serveTLS(t, j, m, "--fetch-listen", "127.0.0.1:0", "--fetch-ca-out", fetchCA,
		"--metrics-listen", "127.0.0.1:0", "--audit-log", auditPath, "--probe-interval", "500ms")
	web := &http.Client{Timeout: 10 * time.Second}
	if !waitFor(time.Minute, func() bool { code, _ := get(t, web, s.metrics+"/readyz"); return code == 200 }) {
		_, body := get(t, web, s.metrics+"/readyz")
		t.Fatalf("/readyz never ready:\n%s", body)
	}
	if code, body := get(t, web, s.metrics+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}

	c, err := server.Dial(s.api, m.clientTLS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	req := &hostv1.ShipRequest{JobId: "metrics-job", Spec: []byte(filetest.Spec),
		Tasks:   []*hostv1.Task{{Id: "driver", Role: "driver"}, {Id: "exec-1", Role: "executor"}},
		Targets: []hostv1.Target{hostv1.Target_TARGET_FETCH, hostv1.Target_TARGET_MESOS}}
	resp, err := c.Ship(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ship(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(context.Background(), &hostv1.CheckRequest{Spec: []byte(filetest.Spec), Hosts: []string{"node1.example.com"}}); err != nil {
		t.Fatal(err)
	}
	fc := fetchClient(t, fetchCA)
	uris := resp.GetTasks()[0].GetUris()
	for _, u := range uris {
		if code, _ := get(t, fc, u.GetValue()); code != 200 {
			t.Fatalf("fetch %s: HTTP %d", u.GetOutputFile(), code)
		}
	}
	if code, _ := get(t, fc, uris[0].GetValue()); code != 403 {
		t.Errorf("a used-up URI: HTTP %d, want 403", code)
	}
	if code, _ := get(t, fc, s.fetch+"/v1/fetch/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/keystore.jks"); code != 404 {
		t.Errorf("an unknown token: HTTP %d, want 404", code)
	}

	_, text := get(t, web, s.metrics+"/metrics")
	for pattern, want := range map[string]float64{
		`keyship_ships_total\{code="ok",outcome="ok"\}`:              2,
		`keyship_checks_total\{code="ok",outcome="ok"\}`:             1,
		`keyship_backend_reads_total\{backend="file",outcome="ok"\}`: 12,
		`keyship_fetch_requests_total\{outcome="served"\}`:           float64(len(uris)),
		`keyship_fetch_requests_total\{outcome="reused"\}`:           1,
		`keyship_fetch_requests_total\{outcome="unknown"\}`:          1,
		`keyship_fetch_requests_total\{outcome="expired"\}`:          0,
		`keyship_live_jobs`:             1,
		`keyship_live_fetch_grants`:     4, // 2 Ships x 2 tasks
		`keyship_plugin_restarts_total`: 0,
		`keyship_ship_seconds_count`:    2,
		`keyship_resolve_seconds_count`: 2, // the job's build and the Check's
		`keyship_build_seconds_count`:   2,
		`keyship_certificate_expiry_days\{job_id="metrics-job",serial="[0-9a-f]+",store="keystore",subject="CN=node1.example.com"\}`: -2,
	} {
		got := metric(text, pattern)
		switch {
		case want == -2 && (got < 80 || got > 91): // testca: 90 days from an hour ago
			t.Errorf("%s = %v, want about 90 days", pattern, got)
		case want != -2 && got != want:
			t.Errorf("%s = %v, want %v", pattern, got, want)
		}
	}
	if strings.Contains(text, canary) {
		t.Error("/metrics holds the keystore password")
	}

	// The audit log: one line per call and fetch.
	recs := readAudit(t, auditPath)
	st, err := os.Stat(auditPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	count := map[string]int{}
	for _, r := range recs {
		count[r.Event]++
	}
	if count["ship"] != 2 || count["check"] != 1 || count["fetch"] != len(uris)+2 || len(recs) != len(uris)+5 {
		t.Fatalf("audit lines by event %v, want 2 ship, 1 check, %d fetch", count, len(uris)+2)
	}
	for _, r := range recs[:2] {
		if r.Caller != "x509 CN=spark-dispatcher" || r.JobID != "metrics-job" || len(r.Tasks) != 2 || len(r.Targets) != 2 || r.Outcome != "ok" {
			t.Errorf("ship audit line: %+v", r)
		}
		if len(r.Refs) != 6 {
			t.Fatalf("ship audit line has %d refs, want 6", len(r.Refs))
		}
		for _, ref := range r.Refs {
			if ref.Backend != "file" || !strings.HasPrefix(ref.Ref, "/spark/") || !strings.HasPrefix(ref.Version, "h1:") || ref.Field == "" {
				t.Errorf("audit ref %+v lacks its field, backend, ref or version", ref)
			}
		}
	}
	if f := recs[3]; f.Event != "fetch" || f.JobID != "metrics-job" || f.TaskID != "driver" || f.Outcome != "served" || f.File == "" || f.Version == "" || !strings.HasPrefix(f.Caller, "127.0.0.1:") {
		t.Errorf("fetch audit line: %+v", f)
	}

	// logrotate: move the file away, SIGHUP, and the next line goes to a
	// new file.
	if err := os.Rename(auditPath, auditPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !waitFor(time.Minute, func() bool { _, err := os.Stat(auditPath); return err == nil }) {
		t.Fatal("SIGHUP did not reopen the audit log")
	}
	if _, err := c.Check(context.Background(), &hostv1.CheckRequest{Spec: []byte(filetest.Spec)}); err != nil {
		t.Fatal(err)
	}
	if recs := readAudit(t, auditPath); len(recs) != 1 || recs[0].Event != "check" {
		t.Errorf("after SIGHUP the new audit log has %d lines, want the one check", len(recs))
	}

	// Kill the plugin: unready, then ready again once it is restarted.
	if err := syscall.Kill(pluginPid(t, s.cmd.Process.Pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var unready string
	if !waitFor(time.Minute, func() bool {
		code, body := get(t, web, s.metrics+"/readyz")
		unready = body
		return code == 503
	}) {
		t.Fatal("/readyz stayed ready after the backend plugin was killed")
	}
	if !strings.Contains(unready, "backend file: not ready") {
		t.Errorf("/readyz does not say which backend is not ready:\n%s", unready)
	}
	if !waitFor(time.Minute, func() bool { code, _ := get(t, web, s.metrics+"/readyz"); return code == 200 }) {
		t.Fatal("/readyz did not turn ready after the plugin's restart")
	}
	_, text = get(t, web, s.metrics+"/metrics")
	if got := metric(text, "keyship_plugin_restarts_total"); got != 1 {
		t.Errorf("keyship_plugin_restarts_total = %v after one kill, want 1", got)
	}

	for name, text := range map[string]string{"audit log": string(readFile(t, auditPath+".1")) + string(readFile(t, auditPath)), "/readyz": unready, "serve's stderr": s.stderr.String()} {
		if strings.Contains(text, canary) {
			t.Errorf("the keystore password appears in the %s", name)
		}
	}
}

func readAudit(t *testing.T, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line is not JSON: %v", err)
		}
		out = append(out, r)
	}
	return out
}

// TestServeShutsDownGracefully sends SIGTERM to keyship serve while a call
// is in flight (a Connect JSON POST whose body is still arriving): the API
// stops accepting connections at once, the call still gets its answer, a
// fetch URI that was still valid is then refused with 503 and a reason in
// words (not a reset connection), and serve exits 0.
func TestServeShutsDownGracefully(t *testing.T) {
	j := newJob(t)
	sock := filepath.Join(t.TempDir(), "keyship.sock")
	fetchCA := filepath.Join(t.TempDir(), "fetch-ca.pem")
	s := serve(t, j, "--listen", "unix://"+sock, "--fetch-listen", "127.0.0.1:0", "--fetch-ca-out", fetchCA, "--fetch-linger", "2s")
	c, err := server.Dial("unix://"+sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	resp, err := c.Ship(context.Background(), &hostv1.ShipRequest{JobId: "before-term", Spec: []byte(filetest.Spec), Tasks: []*hostv1.Task{{Id: "exec-1", Role: "executor"}}})
	if err != nil {
		t.Fatal(err)
	}
	uri := resp.GetTasks()[0].GetUris()[0].GetValue()

	before := acceptedOn(t, s.cmd.Process.Pid, sock)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	body := `{"jobId": "in-flight", "spec": "` + base64.StdEncoding.EncodeToString([]byte(filetest.Spec)) + `", "tasks": [{"id": "exec-1", "role": "executor"}], "targets": ["TARGET_MESOS"]}`
	if _, err := fmt.Fprintf(conn, "POST /keyship.host.v1.ShipperService/Ship HTTP/1.1\r\nHost: keyship\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:20]); err != nil {
		t.Fatal(err)
	}
	// The call is in flight once serve has accepted the connection (a
	// socket on sock's path that serve holds and did not before): from then
	// on shutdown lets it finish. A guessed pause was too short on a loaded
	// machine, and a count of serve's fds could miss it when another fd
	// closed at the same time.
	if !waitFor(time.Minute, func() bool {
		for ino := range acceptedOn(t, s.cmd.Process.Pid, sock) {
			if !before[ino] {
				return true
			}
		}
		return false
	}) {
		t.Fatal("serve did not accept the connection within a minute")
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !waitFor(time.Minute, func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	}) {
		t.Fatal("the API still accepts connections after SIGTERM")
	}
	if _, err := io.WriteString(conn, body[20:]); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight call got no answer: %v", err)
	}
	data, _ := io.ReadAll(answer.Body)
	if answer.StatusCode != 200 || !strings.Contains(string(data), `"jobId":"in-flight"`) {
		t.Fatalf("the in-flight call: HTTP %d %.200s", answer.StatusCode, data)
	}

	select {
	case <-s.fetchClosed:
	case <-time.After(10 * time.Second):
		t.Fatal("the fetch server was not closed")
	}
	code, text := get(t, fetchClient(t, fetchCA), uri)
	if code != http.StatusServiceUnavailable || !strings.Contains(text, "shutting down") {
		t.Errorf("a still-valid fetch URI after shutdown: HTTP %d %q, want 503 saying why", code, text)
	}
	select {
	case <-s.done:
		if s.waitErr != nil {
			t.Errorf("keyship serve exited with %v after SIGTERM\n%s", s.waitErr, s.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("keyship serve did not exit after SIGTERM")
	}
}
