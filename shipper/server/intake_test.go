package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/plugin/plugintest"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/server/audit"
)

// TestTTLOutOfRangeIsInvalidArgument: a ttl_seconds near 9.2e9 (where
// seconds overflow a time.Duration) or below 0 is refused with
// INVALID_ARGUMENT naming the maximum, for every target, and no job is
// kept.
func TestTTLOutOfRangeIsInvalidArgument(t *testing.T) {
	f := newFixture(t)
	for _, ttl := range []int64{9_300_000_000, 1 << 62, -1, 86_401} {
		for _, target := range []hostv1.Target{hostv1.Target_TARGET_FETCH, hostv1.Target_TARGET_MESOS} {
			req := shipReq(fmt.Sprint("job-ttl-", ttl), tasks("e", 1), target)
			req.TtlSeconds = ttl
			resp, err := f.srv.Ship(context.Background(), req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "at most 86400") {
				t.Errorf("ttl_seconds %d, %s: %v (expires_unix %d), want INVALID_ARGUMENT naming the maximum 86400", ttl, target, err, resp.GetExpiresUnix())
			}
		}
	}
	if n := f.srv.Jobs(); n != 0 {
		t.Errorf("%d jobs kept after out-of-range TTLs", n)
	}
	req := shipReq("job-ttl-max", tasks("e", 1), hostv1.Target_TARGET_FETCH)
	req.TtlSeconds = 86_400
	if _, err := f.srv.Ship(context.Background(), req); err != nil {
		t.Errorf("ttl_seconds 86400, the maximum: %v", err)
	}
}

// TestShipRefusedForMaxGrantsLeavesNothing: a Ship refused because its
// fetch grants pass --max-grants builds nothing and keeps nothing: no job
// slot, no backend read, no secrets.
func TestShipRefusedForMaxGrantsLeavesNothing(t *testing.T) {
	f := newFixture(t)
	fs := fetch.New(f.https.URL, fetch.WithMaxGrants(2), fetch.WithClock(f.clock))
	srv := server.New(f.builder(t), fs, server.WithClock(f.clock))
	if _, err := srv.Ship(context.Background(), shipReq("job-a", tasks("a", 2), hostv1.Target_TARGET_FETCH)); err != nil {
		t.Fatal(err)
	}
	reads := f.backend.reads.Load()
	_, err := srv.Ship(context.Background(), shipReq("job-b", tasks("b", 1), hostv1.Target_TARGET_FETCH))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "--max-grants") {
		t.Fatalf("a Ship past --max-grants: %v, want RESOURCE_EXHAUSTED naming --max-grants", err)
	}
	if n, r := srv.Jobs(), f.backend.reads.Load()-reads; n != 1 || r != 0 {
		t.Errorf("after a refused Ship: %d jobs held (want 1: the first), %d backend reads for it (want 0)", n, r)
	}
	// The same job without TARGET_FETCH needs no grant and ships.
	if _, err := srv.Ship(context.Background(), shipReq("job-b", tasks("b", 1), hostv1.Target_TARGET_MESOS)); err != nil {
		t.Errorf("a Mesos-only Ship with the grants full: %v", err)
	}
}

// TestShipsRacingForTheLastGrantsLeaveNothing (issue 20, item 10): many
// Ships racing for the last --max-grants grants: exactly as many succeed as
// there are grants, and each refused one leaves no job and read no backend
// (the grants are reserved before the build, released when it fails).
// Before, every racer that passed the room check built its job, reading
// the backend, and was refused only when it published.
func TestShipsRacingForTheLastGrantsLeaveNothing(t *testing.T) {
	const grants, racers = 4, 24
	f := newFixture(t)
	fs := fetch.New(f.https.URL, fetch.WithMaxGrants(grants), fetch.WithClock(f.clock))
	srv := server.New(f.builder(t), fs, server.WithClock(f.clock))
	// One job first, so that the racers race for the last grants - 1.
	if _, err := srv.Ship(context.Background(), shipReq("job-first", tasks("first", 1), hostv1.Target_TARGET_FETCH)); err != nil {
		t.Fatal(err)
	}
	reads := f.backend.reads.Load()
	if reads != distinctRefs {
		t.Fatalf("one job read %d secrets, want %d", reads, distinctRefs)
	}
	start := make(chan struct{})
	errs := make(chan error, racers)
	for i := range racers {
		go func() {
			<-start
			_, err := srv.Ship(context.Background(), shipReq(fmt.Sprintf("job-race-%d", i), tasks(fmt.Sprint("race-", i), 1), hostv1.Target_TARGET_FETCH))
			errs <- err
		}()
	}
	close(start)
	ok, refused := 0, 0
	for range racers {
		switch err := <-errs; {
		case err == nil:
			ok++
		case status.Code(err) == codes.ResourceExhausted && strings.Contains(err.Error(), "--max-grants"):
			refused++
		default:
			t.Errorf("a racing Ship: %v", err)
		}
	}
	if ok != grants-1 || refused != racers-(grants-1) {
		t.Errorf("%d Ships succeeded and %d were refused, want %d and %d", ok, refused, grants-1, racers-(grants-1))
	}
	if n := srv.Jobs(); n != grants {
		t.Errorf("%d jobs held, want %d (the refused Ships keep none)", n, grants)
	}
	if r := f.backend.reads.Load() - reads; r != int64(ok)*distinctRefs {
		t.Errorf("the racers read %d secrets, want %d (%d per successful Ship, none for a refused one)", r, int64(ok)*distinctRefs, distinctRefs)
	}
	if n := fs.Len(); n != grants {
		t.Errorf("%d grants live, want %d", n, grants)
	}
}

// postJSON sends body to the handler's Ship as Connect JSON and returns
// the response's status, code and message.
func postJSON(t *testing.T, url string, body any) (int, string, string) {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url+"/keyship.host.v1.ShipperService/Ship", "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	out, _ := io.ReadAll(resp.Body)
	var e struct{ Code, Message string }
	_ = json.Unmarshal(out, &e)
	return resp.StatusCode, e.Code, e.Message
}

// TestEchoIsBounded: a 1 MB job id, 10,000 bad hosts and 10,000 task ids
// come back bounded, in the API's error and in the audit line alike.
func TestEchoIsBounded(t *testing.T) {
	f := newFixture(t)
	var log plugintest.LogBuffer
	ts := httptest.NewServer(server.Handler(f.srv, server.WithObserver(audit.New(&log))))
	t.Cleanup(ts.Close)
	spec := base64.StdEncoding.EncodeToString([]byte(filetest.Spec))
	task := func(id string, hosts []string) map[string]any {
		return map[string]any{"id": id, "role": "executor", "hosts": hosts}
	}
	var badHosts, manyTasks []any
	for i := range 10_000 {
		badHosts = append(badHosts, fmt.Sprintf("bad_host_%05d!.example.com", i))
		manyTasks = append(manyTasks, task(fmt.Sprintf("%s-%05d", strings.Repeat("t", 100), i), []string{"node1.example.com"}))
	}
	for name, body := range map[string]map[string]any{
		"1 MB job id":      {"jobId": strings.Repeat("j", 1<<20), "spec": spec, "tasks": []any{task("e-0", []string{"node1.example.com"})}},
		"10,000 bad hosts": {"jobId": "job-hosts", "spec": spec, "tasks": []any{map[string]any{"id": "e-0", "role": "executor", "hosts": badHosts}}},
		"10,000 tasks":     {"jobId": "job-tasks", "spec": spec, "tasks": manyTasks, "targets": []string{"TARGET_MESOS"}, "fetchUses": 1001},
	} {
		before := len(log.String())
		_, code, msg := postJSON(t, ts.URL, body)
		line := log.String()[before:]
		t.Logf("%s: %s, error %d bytes, audit line %d bytes", name, code, len(msg), len(line))
		if code != "invalid_argument" {
			t.Errorf("%s: code %q, want invalid_argument", name, code)
		}
		if len(msg) > server.MaxErrorBytes {
			t.Errorf("%s: a %d-byte error, more than %d", name, len(msg), server.MaxErrorBytes)
		}
		if len(line) > 3*server.MaxErrorBytes+server.MaxEchoedTasks*300 {
			t.Errorf("%s: a %d-byte audit line", name, len(line))
		}
	}
}

// TestUnknownEnumNameIsInvalidArgument: a target named by a name the API
// does not have ("TARGET_EVIL" in JSON), or by an unknown number (binary),
// is refused with INVALID_ARGUMENT, not shipped as TARGET_FETCH.
func TestUnknownEnumNameIsInvalidArgument(t *testing.T) {
	f := newFixture(t)
	ts := httptest.NewServer(server.Handler(f.srv))
	t.Cleanup(ts.Close)
	spec := base64.StdEncoding.EncodeToString([]byte(filetest.Spec))
	body := map[string]any{"jobId": "job-evil", "spec": spec, "targets": []string{"TARGET_EVIL"},
		"tasks": []any{map[string]any{"id": "e-0", "role": "executor", "hosts": []string{"node1.example.com"}}}}
	status, code, msg := postJSON(t, ts.URL, body)
	if code != "invalid_argument" || !strings.Contains(msg, "TARGET_EVIL") {
		t.Errorf("targets [TARGET_EVIL]: HTTP %d, %s %q; want invalid_argument naming it", status, code, msg)
	}
	body["targets"] = []string{"TARGET_MESOS"}
	body["dialect"] = "DIALECT_EVIL"
	if _, code, msg := postJSON(t, ts.URL, body); code != "invalid_argument" || !strings.Contains(msg, "DIALECT_EVIL") {
		t.Errorf("dialect DIALECT_EVIL: %s %q; want invalid_argument naming it", code, msg)
	}
	if n := f.fetch.Len(); n != 0 {
		t.Errorf("%d fetch grants minted for unknown enum names", n)
	}
	req := shipReq("job-99", tasks("e", 1), hostv1.Target(99))
	if _, err := f.srv.Ship(context.Background(), req); grpcCode(err) != codes.InvalidArgument {
		t.Errorf("target number 99: %v, want INVALID_ARGUMENT", err)
	}
	// Unknown fields are still discarded: a newer client's request ships.
	body["dialect"] = "DIALECT_DCOS"
	body["someFutureField"] = "x"
	if status, code, msg := postJSON(t, ts.URL, body); status != http.StatusOK {
		t.Errorf("a request with an unknown field: HTTP %d %s %q", status, code, msg)
	}
}

func grpcCode(err error) codes.Code { return status.Code(err) }
