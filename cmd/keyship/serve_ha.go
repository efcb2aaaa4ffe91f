package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper/server/daemon"
	"github.com/keyship/keyship/shipper/server/replicas"
	"github.com/keyship/keyship/shipper/server/replicas/kubernetes"
	"github.com/keyship/keyship/shipper/server/replicas/zookeeper"
)

// serveHAFlags are keyship serve's replica flags, named after Flink's
// high-availability options.
type serveHAFlags struct {
	mode      string
	quorum    string
	pathRoot  string
	clusterID string
	namespace string
	key       string
	// session is the ZooKeeper session timeout, lease the Kubernetes
	// Lease's duration: how long a crashed refresher keeps its leadership.
	session time.Duration
	lease   time.Duration

	fl *pflag.FlagSet // which flags were given
}

// The bounds of --ha-zookeeper-session-timeout and
// --ha-kubernetes-lease-duration: below them a busy replica or API server
// loses its leadership in a pause; above them a crashed refresher's
// watches stall for minutes.
const (
	minSessionTimeout = time.Second
	minLeaseDuration  = 3 * time.Second
	maxHATimeout      = 5 * time.Minute
)

func addServeHAFlags(fl *pflag.FlagSet, h *serveHAFlags) {
	fl.StringVar(&h.mode, "ha", "none", "where replicas share jobs, fetch grants and the refresher's leadership: none (this process's memory), zookeeper or kubernetes")
	fl.StringVar(&h.quorum, "ha-zookeeper-quorum", "", "ZooKeeper quorum host:port,host:port,… (--ha zookeeper), e.g. master.mesos:2181")
	fl.StringVar(&h.pathRoot, "ha-path-root", "/keyship", "ZooKeeper path under which replicas keep their state (--ha zookeeper)")
	fl.StringVar(&h.clusterID, "ha-cluster-id", "default", "separates keyship deployments sharing one ZooKeeper root or Kubernetes namespace")
	fl.StringVar(&h.namespace, "ha-kubernetes-namespace", "", "namespace of the replicas' ConfigMaps and Lease (--ha kubernetes; default: the kubeconfig context's, or the pod's)")
	fl.DurationVar(&h.session, "ha-zookeeper-session-timeout", zookeeper.DefaultSessionTimeout, "ZooKeeper session timeout (--ha zookeeper; Flink's high-availability.zookeeper.client.session-timeout): a crashed refresher's leadership ends within it (the ensemble may clamp it to its tickTime's bounds)")
	fl.DurationVar(&h.lease, "ha-kubernetes-lease-duration", kubernetes.DefaultLeaseDuration, "duration of the refresher's Lease (--ha kubernetes; Flink's high-availability.kubernetes.leader-election.lease-duration): a crashed refresher's Lease is taken over after it; the renew deadline and retry period are 2/3 and 2/15 of it")
	h.fl = fl
	fl.StringVar(&h.key, "ha-key", "", "secret ref of the 32-byte key that seals every shared record (AES-256-GCM), read through keyship's backends, e.g. vault:secret/keyship/ha-key; required with --ha other than none")
}

// config returns the daemon's HA config of the flags (nil for --ha none),
// or a usage error naming the flag that is wrong.
func (h serveHAFlags) config(kubeconfig string) (*daemon.HA, error) {
	switch h.mode {
	case "none", "":
		for name, v := range map[string]string{"--ha-zookeeper-quorum": h.quorum, "--ha-kubernetes-namespace": h.namespace, "--ha-key": h.key} {
			if v != "" {
				return nil, usageError{fmt.Errorf("%s is only for --ha zookeeper or kubernetes (--ha is none)", name)}
			}
		}
		for _, name := range []string{"ha-zookeeper-session-timeout", "ha-kubernetes-lease-duration"} {
			if h.given(name) {
				return nil, usageError{fmt.Errorf("--%s is only for --ha zookeeper or kubernetes (--ha is none)", name)}
			}
		}
		return nil, nil
	case "zookeeper", "kubernetes":
	default:
		return nil, usageError{fmt.Errorf("--ha %q: want none, zookeeper or kubernetes", h.mode)}
	}
	if h.key == "" {
		return nil, usageError{fmt.Errorf("--ha %s needs --ha-key REF: the secret ref of the 32-byte key that seals the replicas' shared records (e.g. vault:secret/keyship/ha-key)", h.mode)}
	}
	key, err := spec.ParseRef(h.key)
	if err != nil {
		return nil, usageError{fmt.Errorf("--ha-key %q: %w", h.key, err)}
	}
	if h.clusterID == "" {
		return nil, usageError{errors.New("--ha-cluster-id: must not be empty")}
	}
	ha := &daemon.HA{Engine: h.mode, Key: key}
	if h.mode == "zookeeper" {
		servers, err := parseQuorum(h.quorum)
		if err != nil {
			return nil, usageError{err}
		}
		if h.namespace != "" {
			return nil, usageError{errors.New("--ha-kubernetes-namespace is only for --ha kubernetes")}
		}
		if !strings.HasPrefix(h.pathRoot, "/") || strings.HasSuffix(h.pathRoot, "/") && h.pathRoot != "/" || strings.Contains(h.pathRoot, "//") {
			return nil, usageError{fmt.Errorf("--ha-path-root %q: want an absolute ZooKeeper path like /keyship", h.pathRoot)}
		}
		if strings.Contains(h.clusterID, "/") {
			return nil, usageError{fmt.Errorf("--ha-cluster-id %q: must not contain /", h.clusterID)}
		}
		if h.given("ha-kubernetes-lease-duration") {
			return nil, usageError{errors.New("--ha-kubernetes-lease-duration is only for --ha kubernetes")}
		}
		if err := inBounds("--ha-zookeeper-session-timeout", h.session, minSessionTimeout); err != nil {
			return nil, usageError{err}
		}
		cfg := zookeeper.Config{Servers: servers, Root: h.pathRoot, ClusterID: h.clusterID, SessionTimeout: h.session}
		ha.Open = func(ctx context.Context) (replicas.State, error) { return zookeeper.Open(ctx, cfg) }
		return ha, nil
	}
	if h.quorum != "" {
		return nil, usageError{errors.New("--ha-zookeeper-quorum is only for --ha zookeeper")}
	}
	if h.given("ha-zookeeper-session-timeout") {
		return nil, usageError{errors.New("--ha-zookeeper-session-timeout is only for --ha zookeeper")}
	}
	if err := inBounds("--ha-kubernetes-lease-duration", h.lease, minLeaseDuration); err != nil {
		return nil, usageError{err}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	rest, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--ha kubernetes: no client configuration (--kubeconfig, $KUBECONFIG, ~/.kube/config or in-cluster): %w", err)
	}
	ns := h.namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil || ns == "" {
			return nil, usageError{fmt.Errorf("--ha kubernetes: no namespace (--ha-kubernetes-namespace, or the kubeconfig context's)")}
		}
	}
	st, err := kubernetes.Open(kubernetes.Config{REST: rest, Namespace: ns, ClusterID: h.clusterID,
		LeaseDuration: h.lease, RenewDeadline: h.lease * 2 / 3, RetryPeriod: h.lease * 2 / 15})
	if err != nil {
		return nil, usageError{err}
	}
	ha.Open = func(context.Context) (replicas.State, error) { return st, nil }
	return ha, nil
}

// given reports whether the flag name was on the command line.
func (h serveHAFlags) given(name string) bool { return h.fl != nil && h.fl.Changed(name) }

// inBounds checks a leadership timeout flag's value d.
func inBounds(flag string, d, least time.Duration) error {
	if d < least || d > maxHATimeout {
		return fmt.Errorf("%s %s: want between %s and %s", flag, d, least, maxHATimeout)
	}
	return nil
}

// parseQuorum splits --ha-zookeeper-quorum into host:port servers.
func parseQuorum(q string) ([]string, error) {
	if q == "" {
		return nil, errors.New("--ha zookeeper needs --ha-zookeeper-quorum host:port,… (e.g. master.mesos:2181)")
	}
	var servers []string
	for _, s := range strings.Split(q, ",") {
		s = strings.TrimSpace(s)
		host, port, err := net.SplitHostPort(s)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("--ha-zookeeper-quorum %q: server %q: want host:port", q, s)
		}
		servers = append(servers, s)
	}
	return servers, nil
}
