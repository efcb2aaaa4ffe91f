package zookeeper_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/keyship/keyship/shipper/server/replicas"
	"github.com/keyship/keyship/shipper/server/replicas/replicastest"
	"github.com/keyship/keyship/shipper/server/replicas/zookeeper"
	"github.com/keyship/keyship/shipper/server/replicas/zookeeper/zktest"
)

// sessionTimeout is the tests' ZooKeeper session timeout: the bound of a
// takeover after a crash.
const sessionTimeout = 4 * time.Second

var clusters atomic.Int64

func openState(t testing.TB, servers []string, clusterID string) *zookeeper.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := zookeeper.Open(ctx, zookeeper.Config{Servers: servers, Root: "/keyship-test", ClusterID: clusterID, SessionTimeout: sessionTimeout})
	if err != nil {
		t.Fatalf("zookeeper.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestConformance runs the replicas suite against a 3-server ensemble; a
// crash is a client whose TCP connection is cut (its session expires on
// the servers' clock).
func TestConformance(t *testing.T) {
	e := zktest.Start(t, 3)
	replicastest.Run(t, func(t *testing.T) replicastest.Shared {
		id := fmt.Sprintf("conformance-%d", clusters.Add(1))
		return replicastest.Shared{
			Open: func(t testing.TB) replicas.State { return openState(t, e.Servers, id) },
			Crashable: func(t testing.TB) (replicas.State, func()) {
				p := zktest.NewProxy(t, e.Servers[0])
				return openState(t, []string{p.Addr}, id), p.Cut
			},
			Raw:      e.Raw,
			Takeover: 10 * sessionTimeout,
		}
	})
}

// TestOneMultiOpPerShip counts ZooKeeper write transactions (zxids) per
// Ship of 10 tasks: a new job's, a known job's (its record known to exist,
// as after a first Ship on this replica), and a job's whose record another
// replica wrote first.
func TestOneMultiOpPerShip(t *testing.T) {
	e := zktest.Start(t, 3)
	st := openState(t, e.Servers, "writes")
	s, err := replicas.NewStore(st, replicastest.Key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	job := replicastest.Job("spark-writes", exp, "spec")
	for _, c := range []struct {
		ship string
		job  *replicas.Job
		want int64
	}{
		{"a new job", job, 1},
		{"a known job", nil, 1},
		{"a job another replica wrote first", job, 2}, // a failed multi-op, then the grants'
	} {
		grants, _ := replicastest.Grants(job.ID, 10, exp)
		before := e.Zxid(t)
		if err := s.Publish(ctx, c.job, grants); err != nil {
			t.Fatal(err)
		}
		writes := e.Zxid(t) - before
		t.Logf("Ship of %s (10 tasks): %d ZooKeeper write transactions", c.ship, writes)
		if writes != c.want {
			t.Errorf("Ship of %s: %d ZooKeeper write transactions, want %d", c.ship, writes, c.want)
		}
	}
}

// TestZooKeeperLeaderKilled kills the ZooKeeper leader (kill -9) between
// writes. Every server then drops its clients until a new leader is
// elected: the next write still lands without an error (the client waits
// for its session to come back, within the session timeout), and every
// record written before is there.
func TestZooKeeperLeaderKilled(t *testing.T) {
	e := zktest.Start(t, 3)
	st := openState(t, e.Servers, "leader-killed")
	s, err := replicas.NewStore(st, replicastest.Key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	grants, _ := replicastest.Grants("job-before", 5, exp)
	if err := s.Publish(ctx, replicastest.Job("job-before", exp, "spec"), grants); err != nil {
		t.Fatal(err)
	}
	e.Kill(e.Leader(t))
	after, _ := replicastest.Grants("job-after", 5, exp)
	began := time.Now()
	if err := s.Publish(ctx, replicastest.Job("job-after", exp, "spec"), after); err != nil {
		t.Fatalf("Publish after the ZooKeeper leader was killed: %v", err)
	}
	t.Logf("Publish after the ZooKeeper leader was killed: landed in %s (session timeout %s)", time.Since(began).Round(time.Millisecond), sessionTimeout)
	jobs, err := s.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 {
		t.Errorf("%d jobs after the ZooKeeper leader was killed, want 2", len(jobs))
	}
	for _, g := range append(grants, after...) {
		if _, err := s.Consume(ctx, g.TokenHash, "keystore.jks"); err != nil {
			t.Errorf("grant of %s: %v", g.JobID, err)
		}
	}
}

func TestOpenChecksConfig(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []zookeeper.Config{
		{},
		{Servers: []string{"127.0.0.1:1"}, Root: "keyship"},
		{Servers: []string{"127.0.0.1:1"}, Root: "/keyship/../x"},
		{Servers: []string{"127.0.0.1:1"}, ClusterID: "a/b"},
	} {
		if _, err := zookeeper.Open(ctx, cfg); err == nil {
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := zookeeper.Open(short, zookeeper.Config{Servers: []string{"127.0.0.1:1"}}); !errors.Is(err, replicas.ErrUnavailable) {
		t.Errorf("Open with no server listening: %v, want ErrUnavailable", err)
	}
}

// BenchmarkPublishConsume is one Ship's record put (a job and one task's
// grant, one multi-op) and one fetch's compare-and-set (a get and a
// setData), against a 3-server ensemble on loopback.
func BenchmarkPublishConsume(b *testing.B) {
	e := zktest.Start(b, 3)
	s, err := replicas.NewStore(openState(b, e.Servers, "bench"), replicastest.Key)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	spec := strings.Repeat("x", 2048)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("job-%d", i)
		grants, _ := replicastest.Grants(id, 1, exp)
		if err := s.Publish(ctx, replicastest.Job(id, exp, spec), grants); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Consume(ctx, grants[0].TokenHash, "keystore.jks"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDigestACL: with digest credentials, only that identity reads or
// writes the records; the password is not in ZooKeeper's data.
func TestDigestACL(t *testing.T) {
	e := zktest.Start(t, 3)
	const password = "canary-zk-digest-Pa55"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := func(digest string) *zookeeper.State {
		t.Helper()
		st, err := zookeeper.Open(ctx, zookeeper.Config{Servers: e.Servers, ClusterID: "acl", SessionTimeout: sessionTimeout, Digest: digest})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	s, err := replicas.NewStore(open("keyship:"+password), replicastest.Key)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	grants, _ := replicastest.Grants("spark-acl", 1, exp)
	if err := s.Publish(ctx, replicastest.Job("spark-acl", exp, "spec"), grants); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Consume(ctx, grants[0].TokenHash, "keystore.jks"); err != nil {
		t.Fatalf("Consume with the digest identity: %v", err)
	}
	for name, digest := range map[string]string{"no credentials": "", "another password": "keyship:wrong"} {
		_, err := zookeeper.Open(ctx, zookeeper.Config{Servers: e.Servers, ClusterID: "acl", SessionTimeout: sessionTimeout, Digest: digest})
		if err == nil || !strings.Contains(err.Error(), "ACL does not admit") {
			t.Errorf("Open with %s: %v, want an error naming the ACL", name, err)
		} else if strings.Contains(err.Error(), password) {
			t.Errorf("%s: the error quotes the password", name)
		}
	}
	// And a raw client without the credentials can neither read nor
	// delete a record.
	conn, _, err := zk.Connect(e.Servers, sessionTimeout, zk.WithLogInfo(false), zk.WithLogger(quiet{}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	node := "/keyship/acl/grant/" + replicas.GrantName(grants[0].TokenHash)
	if _, _, err := conn.Get(node); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("get %s without credentials: %v, want ErrNoAuth", node, err)
	}
	if err := conn.Delete(node, -1); err == nil {
		t.Errorf("deleted %s without credentials", node)
	}
	if raw := e.Raw(t); strings.Contains(string(raw), password) {
		t.Error("the digest password is in ZooKeeper's data")
	}
	if _, err := zookeeper.Open(ctx, zookeeper.Config{Servers: e.Servers, Digest: "nopassword"}); err == nil {
		t.Error("Open took digest credentials without a password")
	}
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
