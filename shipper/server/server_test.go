package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/backends/file/filetest"
	"github.com/keyship/keyship/host"
	"github.com/keyship/keyship/host/config"
	"github.com/keyship/keyship/plugin"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/server"
)

// counting wraps the file backend and counts the refs it is asked for.
type counting struct {
	plugin.Backend
	reads atomic.Int64
}

func (c *counting) Get(ctx context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	c.reads.Add(int64(len(refs)))
	return c.Backend.Get(ctx, refs)
}

const distinctRefs = 6 // seed 000's spec names six secrets

type fixture struct {
	srv     *server.Server
	backend *counting
	fetch   *fetch.Server
	https   *httptest.Server
	now     atomic.Pointer[time.Time]
	host    *host.Host
}

// clock is the fixture's clock.
func (f *fixture) clock() time.Time { return *f.now.Load() }

// builder is the fixture's host, for another Server.
func (f *fixture) builder(testing.TB) *host.Host { return f.host }

func newFixture(t testing.TB) *fixture {
	t.Helper()
	root := t.TempDir()
	filetest.Seed(t, root, "store-pass-1")
	f := &fixture{backend: &counting{Backend: file.New()}}
	start := time.Unix(1_800_000_000, 0)
	f.now.Store(&start)
	clock := func() time.Time { return *f.now.Load() }
	cfg := &config.Config{DefaultBackend: "file", Backends: map[string]config.Backend{"file": {Config: map[string]string{"root": root}}}}
	h := host.New(cfg, host.WithBuiltin("file", func() plugin.Backend { return f.backend }))
	t.Cleanup(func() { _ = h.Close() })
	f.host = h
	mux := http.NewServeMux()
	f.https = httptest.NewTLSServer(mux)
	t.Cleanup(f.https.Close)
	f.fetch = fetch.New(f.https.URL, fetch.WithClock(clock))
	mux.Handle(fetch.Prefix, f.fetch)
	f.srv = server.New(h, f.fetch, server.WithClock(clock))
	return f
}

func (f *fixture) advance(d time.Duration) {
	n := f.now.Load().Add(d)
	f.now.Store(&n)
}

func tasks(prefix string, n int) []*hostv1.Task {
	out := make([]*hostv1.Task, n)
	for i := range out {
		out[i] = &hostv1.Task{Id: fmt.Sprintf("%s-%d", prefix, i), Role: "executor", Hosts: []string{"node1.example.com"}}
	}
	return out
}

func shipReq(job string, ts []*hostv1.Task, targets ...hostv1.Target) *hostv1.ShipRequest {
	return &hostv1.ShipRequest{JobId: job, Spec: []byte(filetest.Spec), Tasks: ts, Targets: targets}
}

func TestThousandExecutorsOneReadPerRef(t *testing.T) {
	f := newFixture(t)
	resp, err := f.srv.Ship(context.Background(), shipReq("job-1", tasks("exec", 1000), hostv1.Target_TARGET_MESOS, hostv1.Target_TARGET_FETCH))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.backend.reads.Load(); got != distinctRefs {
		t.Fatalf("1 job x 1000 executors cost %d backend reads, want %d (one per distinct ref)", got, distinctRefs)
	}
	if len(resp.GetTasks()) != 1000 {
		t.Fatalf("%d task shipments", len(resp.GetTasks()))
	}
	first := resp.GetTasks()[0].GetVolumes()
	for _, ts := range resp.GetTasks() {
		if len(ts.GetUris()) != len(resp.GetFiles()) || len(ts.GetVolumes()) != len(first) || len(ts.GetEnv()) != 3 {
			t.Fatalf("task %s: %d uris, %d volumes, %d env", ts.GetTaskId(), len(ts.GetUris()), len(ts.GetVolumes()), len(ts.GetEnv()))
		}
		for i, v := range ts.GetVolumes() {
			if !bytes.Equal(v.GetSecret().GetValue(), first[i].GetSecret().GetValue()) || v.GetContainerPath() != first[i].GetContainerPath() {
				t.Fatalf("task %s volume %d differs from task 0's", ts.GetTaskId(), i)
			}
		}
	}
	if resp.GetFiles()[0].GetContents() != nil {
		t.Error("file contents returned without TARGET_FILES")
	}
}

func TestConcurrentShipsShareOneBuild(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	versions := make([]string, 100)
	errs := make([]error, 100)
	for i := range 100 {
		wg.Go(func() {
			resp, err := f.srv.Ship(context.Background(), shipReq("job-2", tasks(fmt.Sprint("c", i), 10), hostv1.Target_TARGET_MESOS))
			if err != nil {
				errs[i] = err
				return
			}
			versions[i] = resp.GetFiles()[0].GetVersion()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if got := f.backend.reads.Load(); got != distinctRefs {
		t.Fatalf("100 concurrent Ship calls cost %d backend reads, want %d", got, distinctRefs)
	}
	for i, v := range versions {
		if v != versions[0] {
			t.Fatalf("call %d got keystore version %q, call 0 %q", i, v, versions[0])
		}
	}
	if f.srv.Jobs() != 1 {
		t.Errorf("%d jobs held, want 1", f.srv.Jobs())
	}
}

func TestFlinkAppMasterEndToEnd(t *testing.T) {
	f := newFixture(t)
	client := f.https.Client()
	var stores [][]byte
	// The AppMaster ships for the JobManager, then for each TaskManager it
	// launches, with the same job id.
	calls := [][]*hostv1.Task{{{Id: "jobmanager", Role: "jobmanager"}}}
	for _, tm := range tasks("taskmanager", 5) {
		calls = append(calls, []*hostv1.Task{tm})
	}
	for _, ts := range calls {
		resp, err := f.srv.Ship(context.Background(), shipReq("flink-job", ts))
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range resp.GetTasks() {
			u := task.GetUris()[0]
			if u.GetOutputFile() != ".keyship/keystore.jks" || u.GetCache() || u.GetExtract() || u.GetExecutable() {
				t.Fatalf("URI %+v", u)
			}
			r, err := client.Get(u.GetValue())
			if err != nil || r.StatusCode != 200 {
				t.Fatalf("fetch %s: %v %v", task.GetTaskId(), err, r)
			}
			data, _ := io.ReadAll(r.Body)
			_ = r.Body.Close()
			stores = append(stores, data)
		}
	}
	if got := f.backend.reads.Load(); got != distinctRefs {
		t.Fatalf("JobManager + TaskManagers cost %d reads, want %d", got, distinctRefs)
	}
	for i, s := range stores {
		if !bytes.Equal(s, stores[0]) || len(s) == 0 {
			t.Fatalf("process %d fetched a different keystore", i)
		}
	}
}

func TestBundleLivesOnlyForItsTTL(t *testing.T) {
	f := newFixture(t)
	req := shipReq("job-ttl", tasks("e", 1), hostv1.Target_TARGET_MESOS)
	req.TtlSeconds = 60
	if _, err := f.srv.Ship(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	f.advance(30 * time.Second)
	if _, err := f.srv.Ship(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := f.backend.reads.Load(); got != distinctRefs {
		t.Fatalf("a Ship inside the TTL read again (%d reads)", got)
	}
	f.advance(31 * time.Second)
	if _, err := f.srv.Ship(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := f.backend.reads.Load(); got != 2*distinctRefs {
		t.Fatalf("after the TTL: %d reads, want a fresh resolution (%d)", got, 2*distinctRefs)
	}
	f.advance(3 * time.Minute)
	f.srv.Sweep()
	if f.srv.Jobs() != 0 {
		t.Errorf("%d jobs held after every TTL ended", f.srv.Jobs())
	}
}

func TestShipRequestValidation(t *testing.T) {
	f := newFixture(t)
	for _, req := range []*hostv1.ShipRequest{
		{Spec: []byte(filetest.Spec), Tasks: tasks("e", 1)},
		{JobId: "j", Tasks: tasks("e", 1)},
		{JobId: "j", Spec: []byte(filetest.Spec)},
		{JobId: "j", Spec: []byte(filetest.Spec), Tasks: []*hostv1.Task{{Id: "a"}, {Id: "a"}}},
		{JobId: "j", Spec: []byte("not a spec in any dialect"), Tasks: tasks("e", 1)},
		{JobId: "j", Spec: []byte(filetest.Spec), Tasks: tasks("e", 1), Dialect: hostv1.Dialect(99)},
	} {
		if _, err := f.srv.Ship(context.Background(), req); err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
			t.Errorf("bad request accepted or wrong code: %v", err)
		}
	}
}

func TestCheckReportsProblems(t *testing.T) {
	f := newFixture(t)
	bad := strings.Replace(filetest.Spec, `"/spark/key_password"`, `"/spark/keystore_password"`, 1)
	resp, err := f.srv.Check(context.Background(), &hostv1.CheckRequest{Spec: []byte(bad)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetOk() || len(resp.GetProblems()) == 0 || resp.GetProblems()[0].GetField() != "security.tls.key_password" {
		t.Fatalf("Check = %v", resp)
	}
	if strings.Contains(resp.String(), "store-pass-1") {
		t.Fatal("a password appeared in the Check response")
	}
	good, err := f.srv.Check(context.Background(), &hostv1.CheckRequest{Spec: []byte(filetest.Spec)})
	if err != nil || !good.GetOk() {
		t.Fatalf("Check of a good spec: %v %v", good, err)
	}
}

func TestOverUnixSocket(t *testing.T) {
	f := newFixture(t)
	sock := filepath.Join(t.TempDir(), "keyship.sock")
	l, err := server.Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(sock)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", st.Mode().Perm())
	}
	g := grpc.NewServer()
	hostv1.RegisterShipperServiceServer(g, f.srv)
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	c, err := server.Dial("unix://"+sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	resp, err := c.Ship(context.Background(), shipReq("job-sock", tasks("e", 2), hostv1.Target_TARGET_FILES))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetFiles()) == 0 || len(resp.GetFiles()[0].GetContents()) == 0 {
		t.Fatal("TARGET_FILES returned no contents")
	}
	if _, err := server.Dial("tcp://127.0.0.1:1", nil); err == nil {
		t.Error("tcp without mutual TLS was allowed")
	}
}
