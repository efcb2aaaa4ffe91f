package main_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyship/keyship/backends/file/filetest"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/server/replicas/zookeeper/zktest"
)

// TestServeHAFlagsRefuseBadValues: every wrong --ha* value is refused
// before serve starts, with exit 2 and an error naming the flag.
func TestServeHAFlagsRefuseBadValues(t *testing.T) {
	j := newJob(t)
	base := []string{"serve", "--config", j.config, "--listen", "unix://" + t.TempDir() + "/k.sock"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ha", "etcd"}, "--ha \"etcd\""},
		{[]string{"--ha", "zookeeper", "--ha-zookeeper-quorum", "127.0.0.1:2181"}, "--ha-key"},
		{[]string{"--ha", "kubernetes", "--ha-kubernetes-namespace", "ns"}, "--ha-key"},
		{[]string{"--ha", "zookeeper", "--ha-key", "/ha-key"}, "--ha-zookeeper-quorum"},
		{[]string{"--ha", "zookeeper", "--ha-key", "/ha-key", "--ha-zookeeper-quorum", "zk1,zk2:2181"}, "--ha-zookeeper-quorum"},
		{[]string{"--ha", "zookeeper", "--ha-key", "/ha-key", "--ha-zookeeper-quorum", "zk1:99999"}, "--ha-zookeeper-quorum"},
		{[]string{"--ha", "zookeeper", "--ha-key", "/ha-key", "--ha-zookeeper-quorum", "zk1:2181", "--ha-path-root", "keyship"}, "--ha-path-root"},
		{[]string{"--ha", "zookeeper", "--ha-key", "/ha-key", "--ha-zookeeper-quorum", "zk1:2181", "--ha-cluster-id", ""}, "--ha-cluster-id"},
		{[]string{"--ha", "zookeeper", "--ha-key", "../x", "--ha-zookeeper-quorum", "zk1:2181"}, "--ha-key"},
		{[]string{"--ha-key", "/ha-key"}, "--ha-key"},
		{[]string{"--ha-zookeeper-quorum", "zk1:2181"}, "--ha-zookeeper-quorum"},
		{[]string{"--ha", "zookeeper", "--ha-key", "/ha-key", "--ha-zookeeper-quorum", "zk1:2181", "--ha-zookeeper-session-timeout", "0s"}, "--ha-zookeeper-session-timeout 0s: want between"},
		{[]string{"--ha", "zookeeper", "--ha-key", "/ha-key", "--ha-zookeeper-quorum", "zk1:2181", "--ha-zookeeper-session-timeout", "-4s"}, "--ha-zookeeper-session-timeout -4s: want between"},
		{[]string{"--ha", "zookeeper", "--ha-key", "/ha-key", "--ha-zookeeper-quorum", "zk1:2181", "--ha-zookeeper-session-timeout", "1h"}, "--ha-zookeeper-session-timeout 1h0m0s: want between"},
		{[]string{"--ha", "zookeeper", "--ha-key", "/ha-key", "--ha-zookeeper-quorum", "zk1:2181", "--ha-zookeeper-session-timeout", "soon"}, "--ha-zookeeper-session-timeout"},
		{[]string{"--ha", "zookeeper", "--ha-key", "/ha-key", "--ha-zookeeper-quorum", "zk1:2181", "--ha-kubernetes-lease-duration", "15s"}, "--ha-kubernetes-lease-duration is only for"},
		{[]string{"--ha", "kubernetes", "--ha-key", "/ha-key", "--ha-kubernetes-namespace", "ns", "--ha-kubernetes-lease-duration", "0s"}, "--ha-kubernetes-lease-duration 0s: want between"},
		{[]string{"--ha", "kubernetes", "--ha-key", "/ha-key", "--ha-kubernetes-namespace", "ns", "--ha-kubernetes-lease-duration", "1s"}, "--ha-kubernetes-lease-duration 1s: want between"},
		{[]string{"--ha", "kubernetes", "--ha-key", "/ha-key", "--ha-kubernetes-namespace", "ns", "--ha-kubernetes-lease-duration", "1h"}, "--ha-kubernetes-lease-duration 1h0m0s: want between"},
		{[]string{"--ha", "kubernetes", "--ha-key", "/ha-key", "--ha-kubernetes-namespace", "ns", "--ha-zookeeper-session-timeout", "4s"}, "--ha-zookeeper-session-timeout is only for"},
		{[]string{"--ha-zookeeper-session-timeout", "4s"}, "--ha-zookeeper-session-timeout is only for"},
		{[]string{"--ha-kubernetes-lease-duration", "15s"}, "--ha-kubernetes-lease-duration is only for"},
	} {
		r := keyship(t, append(base, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("serve %v: exit %d, want 2 naming %s:\n%s", tc.args, r.code, tc.want, r.stderr)
		}
	}
}

// TestServeHAKeyMustBe32Bytes: a --ha-key secret of another size stops
// serve before it connects anywhere, naming the flag and the sizes, not the
// bytes.
func TestServeHAKeyMustBe32Bytes(t *testing.T) {
	j := newJob(t)
	j.put(t, "ha-key", []byte(canary))
	r := keyship(t, "serve", "--config", j.config, "--listen", "unix://"+t.TempDir()+"/k.sock",
		"--ha", "zookeeper", "--ha-zookeeper-quorum", "127.0.0.1:1", "--ha-key", "/ha-key")
	if r.code == 0 || !strings.Contains(r.stderr, "--ha-key /ha-key") || !strings.Contains(r.stderr, "must be exactly 32") {
		t.Fatalf("serve with an 18-byte key: exit %d:\n%s", r.code, r.stderr)
	}
	assertNoCanary(t, r)
}

// TestServeReplicasOnZooKeeper runs two real keyship serve processes with
// --ha zookeeper on a 3-server ensemble: a URI from replica A is served by
// B with the bytes A serves for the same file, once; ZooKeeper's files hold
// no password.
func TestServeReplicasOnZooKeeper(t *testing.T) {
	e := zktest.Start(t, 3)
	j := newJob(t)
	j.put(t, "keyship/ha-key", bytes.Repeat([]byte{7}, 32))
	ha := []string{"--fetch-listen", "127.0.0.1:0", "--ha", "zookeeper", "--ha-zookeeper-quorum", strings.Join(e.Servers, ","),
		"--ha-path-root", "/keyship-cli", "--ha-cluster-id", "cli", "--ha-key", "/keyship/ha-key"}
	sockA, _ := startServe(t, j, ha...)
	b := serve(t, j, append([]string{"--listen", "unix://" + filepath.Join(t.TempDir(), "b.sock")}, ha...)...)
	c, err := server.Dial("unix://"+sockA, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	resp, err := c.Ship(context.Background(), &hostv1.ShipRequest{JobId: "job-cli", Spec: []byte(filetest.Spec),
		Tasks: []*hostv1.Task{{Id: "e1", Role: "executor"}, {Id: "e2", Role: "executor"}}, Targets: []hostv1.Target{hostv1.Target_TARGET_FETCH}})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // each replica's throwaway certificate
	get := func(base, uri string) (int, []byte) {
		t.Helper()
		r, err := hc.Get(base + uri[strings.Index(uri, fetch.Prefix):])
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = r.Body.Close() }()
		body, _ := io.ReadAll(r.Body)
		return r.StatusCode, body
	}
	aBase := resp.GetTasks()[0].GetUris()[0].GetValue()
	aBase = aBase[:strings.Index(aBase, fetch.Prefix)]
	for i, u := range resp.GetTasks()[0].GetUris() {
		codeB, fromB := get(b.fetch, u.GetValue())
		codeA, fromA := get(aBase, resp.GetTasks()[1].GetUris()[i].GetValue())
		if codeA != 200 || codeB != 200 || !bytes.Equal(fromA, fromB) {
			t.Fatalf("%s: A %d (%d bytes), B %d (%d bytes), want 200 and the same bytes", u.GetOutputFile(), codeA, len(fromA), codeB, len(fromB))
		}
		if code, _ := get(aBase, u.GetValue()); code != http.StatusForbidden {
			t.Fatalf("%s served by B, then asked of A: %d, want 403", u.GetOutputFile(), code)
		}
	}
	raw := e.Raw(t)
	if !bytes.Contains(raw, []byte("/keyship-cli/cli")) {
		t.Fatal("the scan does not hold the replicas' node paths")
	}
	if bytes.Contains(raw, []byte(canary)) {
		t.Fatal("the keystore password is in ZooKeeper's data directory")
	}
}
