package main_test

import (
	"strings"
	"testing"
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
