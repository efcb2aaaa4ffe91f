package main

import (
	"context"
	"fmt"
	"os"

	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper/server"
)

// shipThroughServer ships req through a running keyship serve: the server
// resolves, builds and delivers to the same targets a local ship would
// (the request carries the consumer, the releases, where the files go and
// the --emit choice), and this process writes the sandbox and prints the
// delivery as ship does.
func (g *globals) shipThroughServer(ctx context.Context, f shipFlags, e emitTargets, req *spec.Request, dir string) error {
	if e.kube != nil && f.kube.kubeconfig != "" {
		return usageError{fmt.Errorf("--kubeconfig with --server: the server applies with its own credentials")}
	}
	doc, err := os.ReadFile(f.specPath)
	if err != nil {
		return usageError{fmt.Errorf("--spec: %w", err)}
	}
	c, err := server.Dial(f.server, nil)
	if err != nil {
		return usageError{err}
	}
	defer func() { _ = c.Close() }()
	r := server.Request{JobID: req.JobID, Spec: doc, Dialect: f.dialect, Consumer: e.consumer,
		SparkVersion: f.sparkVersion, FlinkVersion: f.flinkVersion, Dir: dir,
		Tasks:   []spec.Task{{ID: "local", Role: "component", Hosts: f.hosts}},
		Targets: []server.Target{server.TargetSandbox}}
	switch {
	case e.fragment != nil && e.fragment.Marathon:
		r.Targets = append(r.Targets, server.TargetMarathonApp)
	case e.fragment != nil:
		r.Targets = append(r.Targets, server.TargetMesosTaskInfo)
	case e.kube != nil:
		k := e.kube
		r.Kubernetes = server.KubernetesRequest{Namespace: k.Namespace, Secret: k.Name, MountPath: k.MountPath, Operator: k.Operator, PEM: f.kube.pem, Persist: true}
		r.Targets = append(r.Targets, server.TargetKubernetesManifest)
		if f.kube.apply {
			r.Targets = append(r.Targets, server.TargetKubernetes)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	d, err := c.Deliver(ctx, r)
	if err != nil {
		return fmt.Errorf("nothing shipped:\n%w", err)
	}
	defer d.Zero()
	return g.shipped(ctx, f, d)
}
