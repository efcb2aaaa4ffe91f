package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/server"
	"github.com/keyship/keyship/shipper/watch"
)

// shipThroughServer ships req through a running keyship serve: the server
// resolves, builds and delivers to the same targets a local ship would
// (the request carries the consumer, the releases, where the files go and
// the --emit choice), and this process writes the sandbox and prints the
// delivery as ship does.
func (g *globals) shipThroughServer(ctx context.Context, f shipFlags, e emitTargets, req *spec.Request, dir string) error {
	r, err := serverRequest(f, e, req, dir)
	if err != nil {
		return err
	}
	c, err := server.Dial(f.server, nil)
	if err != nil {
		return usageError{err}
	}
	defer func() { _ = c.Close() }()
	if f.watch.on {
		return g.watchThroughServer(ctx, f, c, r)
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

// serverRequest is the request of a ship through keyship serve: the spec's
// document, the consumer, the releases, where the files go and the targets
// of --emit.
func serverRequest(f shipFlags, e emitTargets, req *spec.Request, dir string) (server.Request, error) {
	if e.kube != nil && f.kube.kubeconfig != "" {
		return server.Request{}, usageError{fmt.Errorf("--kubeconfig with --server: the server applies with its own credentials")}
	}
	doc, err := os.ReadFile(f.specPath)
	if err != nil {
		return server.Request{}, usageError{fmt.Errorf("--spec: %w", err)}
	}
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
	return r, nil
}

// watchThroughServer is ship --watch --server: keyship serve builds the job
// and keeps it fresh (its --refresh and --renew-before), and this process
// delivers each set its Watch streams as the local watch does: the first as
// ship --server does, each new one swapped into the sandbox (the Secret's
// manifest rewritten), reported, and followed by --on-change. SIGTERM or
// SIGINT stops it with what is in place; SIGHUP is logged (the server
// refreshes at its own cadence). When the stream ends (the server's bundle
// passed its TTL) or fails, the watch asks again, backing off while it
// fails; the stores in place stay meanwhile.
func (g *globals) watchThroughServer(ctx context.Context, f shipFlags, c *server.Client, r server.Request) error {
	ctx, hup, stop := watchSignals(ctx)
	defer stop()
	sopts, err := ownerOptions(f.owner)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(f.sandbox)
	if err != nil {
		return err
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				g.logger.Info("SIGHUP: keyship serve checks the secrets at its own --refresh; nothing to do here")
			}
		}
	}()
	var current *shipper.Delivery // the set in place
	defer func() { current.Zero() }()
	const retryMax = time.Minute
	retry := time.Second
	for {
		for ws, err := range c.WatchSets(ctx, r) {
			if ctx.Err() != nil {
				if ws != nil {
					ws.Delivery.Zero()
				}
				break
			}
			if err != nil {
				if current == nil {
					return fmt.Errorf("nothing shipped:\n%w", err)
				}
				g.logger.Error("watching through keyship serve failed; the stores in place stay", "error", err, "retry in", retry)
				break
			}
			retry = time.Second
			d := ws.Delivery
			if current == nil {
				if err := g.shipped(ctx, f, d); err != nil {
					d.Zero()
					return err
				}
				current = d
				g.printServerWatch(f, ws)
				continue
			}
			if sameFiles(current, d) {
				d.Zero()
				continue
			}
			wctx, cancel := context.WithTimeout(ctx, f.timeout)
			_, err := writeSandboxFiles(wctx, dir, d.Files, d.NotAfter, sopts)
			cancel()
			if err != nil {
				g.logger.Error("writing the new stores failed; the stores in place stay", "error", err)
				d.Zero()
				continue
			}
			for _, w := range d.Warnings {
				g.logger.Warn(w)
			}
			current.Zero()
			current = d
			reason, why := ws.Reason, reasonText(ws.Reason, ws.Changes, ws.RenewAt)
			if reason == watch.Initial {
				reason, why = watch.Changed, "keyship serve built the job anew (its bundle's TTL passed)"
			}
			g.swapped(ctx, f.watch, dir, d, reason, why)
		}
		if current == nil {
			if ctx.Err() != nil {
				return errors.New("nothing shipped:\nstopped before keyship serve sent the job's stores")
			}
			return errors.New("nothing shipped:\nkeyship serve ended the watch before it sent the job's stores")
		}
		if ctx.Err() != nil {
			break
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		retry = min(2*retry, retryMax)
	}
	g.logger.Info("watch stopped; what is in place stays", "sandbox", dir)
	return nil
}

// printServerWatch says that keyship serve keeps the shipped set fresh, and
// when it renews the certificate it issued.
func (g *globals) printServerWatch(f shipFlags, ws *server.WatchSet) {
	fmt.Fprintf(g.stdout, "# keyship watches them through keyship serve at %s (its refresh", f.server)
	if !ws.RenewAt.IsZero() {
		fmt.Fprintf(g.stdout, "; the issued certificate is renewed at %s", ws.RenewAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(g.stdout, ")")
}

// sameFiles is whether b holds the files of a, byte for byte: a set the
// server built anew with nothing changed is not swapped in.
func sameFiles(a, b *shipper.Delivery) bool {
	return slices.EqualFunc(a.Files, b.Files, func(x, y materialize.File) bool {
		return x.Path == y.Path && x.Mode == y.Mode && x.Version == y.Version && bytes.Equal(x.Contents, y.Contents)
	})
}
