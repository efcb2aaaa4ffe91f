package fetch_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/shipper/fetch"
)

// TestEventsAndClose checks the Event of each kind of fetch request (served,
// reused, unknown, expired; each naming the job, task, file and version but
// never the token) and Close: a still-valid URI then gets 503 with a reason,
// a used-up one still 403, and Publish fails.
func TestEventsAndClose(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	var mu sync.Mutex
	var events []fetch.Event
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	fs := fetch.New(srv.URL, fetch.WithClock(c.now), fetch.WithObserver(func(ev fetch.Event) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}))
	mux.Handle(fetch.Prefix, fs)
	files := []materialize.File{{Path: "keystore.jks", Contents: []byte("ks"), Version: "v1"}, {Path: "truststore.jks", Contents: []byte("ts"), Version: "v2"}}
	uris, err := fs.PublishJob("job-e", []string{"a", "b", "c"}, files, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := srv.Client().Get(url)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	last := func() fetch.Event {
		mu.Lock()
		defer mu.Unlock()
		return events[len(events)-1]
	}
	for _, step := range []struct {
		url     string
		status  int
		outcome string
	}{
		{uris["a"][0].Value, 200, fetch.OutcomeServed},
		{uris["a"][0].Value, 403, fetch.OutcomeReused},
		{srv.URL + fetch.Prefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/keystore.jks", 404, fetch.OutcomeUnknown},
	} {
		if code, _ := get(step.url); code != step.status {
			t.Fatalf("GET: HTTP %d, want %d", code, step.status)
		}
		ev := last()
		if ev.Outcome != step.outcome {
			t.Errorf("outcome %q, want %q", ev.Outcome, step.outcome)
		}
		if step.outcome != fetch.OutcomeUnknown && (ev.JobID != "job-e" || ev.TaskID != "a" || ev.File != "keystore.jks" || ev.Version != "v1" || ev.Remote == "") {
			t.Errorf("event %+v does not say what was fetched", ev)
		}
	}

	fs.Close()
	code, body := get(uris["b"][0].Value)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") || strings.Contains(body, "ks") {
		t.Errorf("a valid URI after Close: HTTP %d %q, want 503 with the reason", code, body)
	}
	if ev := last(); ev.Outcome != fetch.OutcomeShutdown || ev.TaskID != "b" {
		t.Errorf("event after Close: %+v", ev)
	}
	if code, _ := get(uris["a"][0].Value); code != 403 {
		t.Errorf("a used-up URI after Close: HTTP %d, want 403", code)
	}
	if _, err := fs.Publish([]string{"d"}, files, 1, time.Minute); err == nil {
		t.Error("Publish after Close succeeded")
	}

	c.add(2 * time.Minute)
	if code, _ := get(uris["c"][0].Value); code != 404 || last().Outcome != fetch.OutcomeExpired {
		t.Errorf("an expired URI: HTTP %d, outcome %q", code, last().Outcome)
	}
}
