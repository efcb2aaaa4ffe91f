package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/kube"
	"github.com/keyship/keyship/shipper/watch"
)

// The environment an --on-change command gets besides the sandbox's, when
// keyship ship --watch ships a Kubernetes Secret.
const (
	envK8sSecret   = "KEYSHIP_K8S_SECRET"   // namespace/name of the Secret
	envK8sManifest = "KEYSHIP_K8S_MANIFEST" // the Secret's manifest file (0600)
)

// shipKubeWatch ships req as a Kubernetes Secret like shipKubernetes, then
// keeps it fresh like shipWatch (the same package shipper/watch loop): each
// new set the watch builds (a rotated secret, a renewed certificate) is
// planned again (kube.NewPlan), server-side-applied in place with
// --k8s-apply, and its manifest file replaced; --on-change runs after each.
// A refresh that fails, or an apply the API server refuses, leaves the
// Secret as it is, and the watch tries again.
func (g *globals) shipKubeWatch(ctx context.Context, f shipFlags, req *spec.Request, opts shipper.Options) error {
	k := f.kube
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
	manifestPath := filepath.Join(dir, kubeManifestFile)
	kopts := kube.Options{Name: k.secret, Namespace: k.namespace, MountPath: opts.Dir}
	var client *kube.Client
	if k.apply {
		if client, err = kube.NewClient(k.kubeconfig); err != nil {
			return err
		}
		if kopts.Namespace == "" {
			kopts.Namespace = client.Namespace
		}
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	h := g.newHost(cfg)
	defer func() { _ = h.Close() }()

	// current, plan and applied are the shipped set, its Secret and what
	// the API server answered; only the watch's ship calls touch them.
	var (
		current *shipper.Shipment
		plan    *kube.Plan
		applied *kube.Applied
	)
	defer func() { plan.Zero(); current.Zero() }()
	watching := ctx // --on-change runs for the watch's life, not a rebuild's deadline
	ship := func(ctx context.Context, sh *shipper.Shipment, u watch.Update) error {
		p, err := kube.NewPlan(sh, kopts)
		if err != nil {
			return usageError{err}
		}
		var a *kube.Applied
		if client != nil {
			if a, err = client.Apply(ctx, p); err != nil {
				p.Zero()
				return err
			}
		}
		// The manifest file follows the Secret: applying the same set
		// again, after a failed write, changes nothing.
		manifest := p.Manifest()
		_, err = writeSandboxFiles(ctx, dir, []materialize.File{{Path: kubeManifestFile, Mode: materialize.FileMode, Contents: manifest}}, nil, sopts)
		clear(manifest)
		if err != nil {
			p.Zero()
			return err
		}
		oldPlan, old := plan, current
		current, plan, applied = sh, p, a
		oldPlan.Zero()
		old.Zero()
		if u.Reason == watch.Initial {
			return nil
		}
		now := time.Now().UTC().Format(time.RFC3339)
		if a != nil {
			fmt.Fprintf(g.stdout, "# %s keyship applied new stores to Secret %s/%s (resourceVersion %s): %s\n", now, a.Namespace, a.Name, a.ResourceVersion, updateText(u))
		} else {
			fmt.Fprintf(g.stdout, "# %s keyship wrote new stores to %s (Secret %s): %s\n", now, manifestPath, secretWhere(p), updateText(u))
		}
		g.runOnChange(watching, f.watch, dir, u, envK8sSecret+"="+secretWhere(p), envK8sManifest+"="+manifestPath)
		return nil
	}
	job, err := watch.Start(ctx, h, req, watch.Options{
		Prepare:     opts,
		Timeout:     f.timeout,
		RenewBefore: f.watch.renewBefore,
		RetryMax:    f.watch.refresh,
		Logger:      g.logger.Named("watch"),
	}, ship)
	if ue := (usageError{}); errors.As(err, &ue) {
		return ue
	}
	if err != nil {
		return fmt.Errorf("nothing shipped:\n%w", err)
	}
	for _, w := range current.Bundle.Warnings {
		g.logger.Warn(w)
	}
	g.printKubeManifest(plan, manifestPath)
	if applied != nil {
		fmt.Fprintf(g.stdout, "# applied Secret %s/%s (resourceVersion %s, field manager %s)\n", applied.Namespace, applied.Name, applied.ResourceVersion, kube.FieldManager)
	} else {
		fmt.Fprintf(g.stdout, "# apply it with: kubectl apply --server-side --field-manager=%s -f %s (or from --on-change, with %s set to it)\n", kube.FieldManager, manifestPath, envK8sManifest)
	}
	fmt.Fprintf(g.stdout, "# keyship watches the secrets (refresh every %s", f.watch.refresh)
	if t := job.RenewAt(); !t.IsZero() {
		fmt.Fprintf(g.stdout, "; the issued certificate is renewed at %s", t.UTC().Format(time.RFC3339))
	}
	if client != nil {
		fmt.Fprintf(g.stdout, ") and applies each new set to Secret %s in place.\n", secretWhere(plan))
	} else {
		fmt.Fprintf(g.stdout, ") and rewrites %s with each new set.\n", manifestPath)
	}
	fmt.Fprintf(g.stdout, "# Pods that mount the Secret as a volume at %s see the new files once kubelet refreshes the volume (its sync period, about a minute);\n", plan.MountPath)
	fmt.Fprintln(g.stdout, "# a subPath mount never sees an updated Secret: mount the whole volume.")
	fmt.Fprintln(g.stdout, "# The JVM reads its keystore at start, and the password variables (secretKeyRef) are set at container start: restart the pods with --on-change.")
	if err := g.printKubeSettings(plan, req.Spec, k.operator); err != nil {
		return err
	}

	err = g.runWatch(ctx, h, job, f.watch.refresh, hup)
	g.logger.Info("watch stopped; the Secret in place stays", "secret", secretWhere(plan))
	return err
}
