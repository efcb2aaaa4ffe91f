package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/conf"
	"github.com/keyship/keyship/shipper/kube"
	"github.com/keyship/keyship/shipper/sandbox"
	"github.com/keyship/keyship/shipper/watch"
)

// defaultRefresh is how often keyship ship --watch asks for the refs'
// versions.
const defaultRefresh = time.Minute

type watchFlags struct {
	on          bool
	refresh     time.Duration
	renewBefore time.Duration
	onChange    string
	// onChangeTimeout bounds each --on-change run (watch.Hook).
	onChangeTimeout time.Duration
	// refreshSet is whether --refresh was given (refused with --server).
	refreshSet bool
}

// The environment of an --on-change command; with --emit kubernetes also
// the Secret's name and its manifest file.
const (
	envK8sSecret   = "KEYSHIP_K8S_SECRET"   // namespace/name of the Secret
	envK8sManifest = "KEYSHIP_K8S_MANIFEST" // the Secret's manifest file (0600)
	envManifest    = "KEYSHIP_MANIFEST"     // the new set's manifest.json
	envSandbox     = "KEYSHIP_SANDBOX"      // the sandbox directory
	envReason      = "KEYSHIP_REASON"       // changed or renewed
)

func addWatchFlags(cmd *cobra.Command, f *watchFlags) {
	fl := cmd.Flags()
	fl.BoolVar(&f.on, "watch", false, "keep running: re-check the secrets every --refresh, rebuild, re-check and swap the sandbox (with --emit kubernetes --k8s-apply: apply the Secret in place) when one changes or an issued certificate is due for renewal (SIGHUP: check now; SIGTERM: stop)")
	fl.DurationVar(&f.refresh, "refresh", defaultRefresh, "with --watch: how often to check the secrets' versions (at least 1s)")
	fl.DurationVar(&f.renewBefore, "renew-before", 0, "with --watch: renew an issued certificate this long before it expires (default: at 2/3 of its lifetime)")
	fl.StringVar(&f.onChange, "on-change", "", "with --watch: shell command to run after each swap or Secret apply (not after a failed refresh), with "+envManifest+" set to the new manifest ("+envK8sSecret+" and "+envK8sManifest+" with --emit kubernetes)")
	fl.DurationVar(&f.onChangeTimeout, "on-change-timeout", watch.DefaultHookTimeout, "with --on-change: kill the command and every process of its process group when it runs this long (the watch logs it and goes on refreshing)")
}

// check refuses flag combinations that --watch does not support.
func (w watchFlags) check(f shipFlags) error {
	if !w.on {
		if w.onChange != "" || w.renewBefore != 0 {
			return errors.New("--on-change and --renew-before need --watch")
		}
		return nil
	}
	switch {
	case f.watch.onChangeTimeout <= 0:
		return fmt.Errorf("--on-change-timeout %s: must be positive", f.watch.onChangeTimeout)
	case f.server != "" && w.refreshSet:
		return errors.New("--refresh with --server: the server checks its watched jobs at its own keyship serve --refresh (its Watch call takes no refresh)")
	case f.server != "" && w.renewBefore != 0:
		return errors.New("--renew-before with --server: the server renews an issued certificate at its own keyship serve --renew-before (its Watch call takes no renewal point)")
	case f.emit == emitMesos || f.emit == emitMarathon:
		return fmt.Errorf("--watch keeps a sandbox fresh; --emit %s prints a fragment once (keyship serve's Watch streams new ones)", f.emit)
	case f.watch.refresh < time.Second:
		return fmt.Errorf("--refresh %s: at least 1s", f.watch.refresh)
	case f.watch.renewBefore < 0:
		return fmt.Errorf("--renew-before %s: must not be negative", f.watch.renewBefore)
	}
	return nil
}

// watchSignals is the signal handling of a watch: the context ends at
// SIGTERM or SIGINT, and SIGHUP arrives on hup (refresh now). Call stop when
// the watch ends.
func watchSignals(ctx context.Context) (_ context.Context, hup <-chan os.Signal, stop func()) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	h := make(chan os.Signal, 1)
	signal.Notify(h, syscall.SIGHUP)
	return ctx, h, func() { signal.Stop(h); cancel() }
}

// shipWatch ships req like ship, to the sandbox or (e.kube) a Kubernetes
// Secret, then keeps it fresh until SIGTERM or SIGINT (see package
// shipper/watch): a refresh every --refresh, SIGHUP for one now, and after
// each new set the same targets again (the sandbox swapped; the Secret
// planned again, server-side-applied in place with --k8s-apply, its
// manifest file replaced) and --on-change. A refresh that fails, or an
// apply the API server refuses, leaves what is in place, and the watch
// tries again.
func (g *globals) shipWatch(ctx context.Context, f shipFlags, e emitTargets, req *spec.Request, opts shipper.Options) error {
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
	targets, err := e.list(f.kube)
	if err != nil {
		return err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	h := g.newHost(cfg)
	defer func() { _ = h.Close() }()

	// current and delivered are the shipped set and its delivery; only the
	// watch's ship calls touch them.
	var (
		current   *shipper.Shipment
		delivered *shipper.Delivery
	)
	defer func() { delivered.Zero(); current.Zero() }()
	watching := ctx // --on-change runs for the watch's life, not a rebuild's deadline
	ship := func(ctx context.Context, sh *shipper.Shipment, u watch.Update) error {
		d, err := sh.Deliver(ctx, targets...)
		if err != nil {
			return err
		}
		// The manifest file follows the Secret: applying the same set
		// again, after a failed write, changes nothing.
		if _, err := writeSandboxFiles(ctx, dir, d.Files, d.NotAfter, sopts); err != nil {
			d.Zero()
			return err
		}
		oldD, old := delivered, current
		current, delivered = sh, d
		oldD.Zero()
		old.Zero()
		if u.Reason != watch.Initial {
			g.swapped(watching, f.watch, dir, d, u.Reason, updateText(u))
		}
		return nil
	}
	job, err := watch.Start(ctx, h, req, watch.Options{
		Prepare:     opts,
		Timeout:     f.timeout,
		RenewBefore: f.watch.renewBefore,
		RetryMax:    f.watch.refresh,
		Logger:      g.logger.Named("watch"),
	}, ship)
	if err != nil {
		return fmt.Errorf("nothing shipped:\n%w", err)
	}
	for _, w := range current.Bundle.Warnings {
		g.logger.Warn(w)
	}
	if delivered.Secret != nil {
		g.printSecretWatch(f, job, delivered, filepath.Join(dir, kube.ManifestFile))
	} else {
		g.printSandboxWatch(f, job, current, delivered, dir)
	}
	err = g.runWatch(ctx, h, job, f.watch.refresh, hup)
	g.logger.Info("watch stopped; what is in place stays", "sandbox", dir)
	return err
}

// printSandboxWatch prints what a sandbox watch shipped and the settings,
// with those that make the consumer reload what it can.
func (g *globals) printSandboxWatch(f shipFlags, job *watch.Job, sh *shipper.Shipment, d *shipper.Delivery, dir string) {
	fmt.Fprintf(g.stdout, "# keyship shipped %d files to %s, and watches them (refresh every %s", len(d.Files)+1, dir, f.watch.refresh)
	if t := job.RenewAt(); !t.IsZero() {
		fmt.Fprintf(g.stdout, "; the issued certificate is renewed at %s", t.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(g.stdout, ")")
	settings := d.Settings
	reloads := false
	if d.Consumer == conf.ConsumerSpark {
		extra := conf.SparkReload(sh.Bundle, sh.Profile.SparkVersion.Version, f.watch.refresh)
		settings, reloads = append(slices.Clone(settings), extra...), len(extra) > 0
	}
	fmt.Fprint(g.stdout, conf.ReloadNote(d.Consumer, reloads))
	fmt.Fprint(g.stdout, conf.Print(d.Consumer, settings, sh.Bundle, sh.Profile, d.SettingsDir))
}

// printSecretWatch prints the Secret a watch shipped, how it stays fresh in
// the pods, and the settings that mount it.
func (g *globals) printSecretWatch(f shipFlags, job *watch.Job, d *shipper.Delivery, manifestPath string) {
	s := d.Secret
	g.printSecret(s, manifestPath)
	if s.ResourceVersion != "" {
		fmt.Fprintf(g.stdout, "# applied Secret %s/%s (resourceVersion %s, field manager %s)\n", s.Namespace, s.Name, s.ResourceVersion, kube.FieldManager)
	} else {
		fmt.Fprintf(g.stdout, "# apply it with: kubectl apply --server-side --field-manager=%s -f %s (or from --on-change, with %s set to it)\n", kube.FieldManager, manifestPath, envK8sManifest)
	}
	fmt.Fprintf(g.stdout, "# keyship watches the secrets (refresh every %s", f.watch.refresh)
	if t := job.RenewAt(); !t.IsZero() {
		fmt.Fprintf(g.stdout, "; the issued certificate is renewed at %s", t.UTC().Format(time.RFC3339))
	}
	if s.ResourceVersion != "" {
		fmt.Fprintf(g.stdout, ") and applies each new set to Secret %s in place.\n", secretWhere(s))
	} else {
		fmt.Fprintf(g.stdout, ") and rewrites %s with each new set.\n", manifestPath)
	}
	fmt.Fprintf(g.stdout, "# Pods that mount the Secret as a volume at %s see the new files once kubelet refreshes the volume (its sync period, about a minute);\n", s.MountPath)
	fmt.Fprintln(g.stdout, "# a subPath mount never sees an updated Secret: mount the whole volume.")
	fmt.Fprintln(g.stdout, "# The JVM reads its keystore at start, and the password variables (secretKeyRef) are set at container start: restart the pods with --on-change.")
	fmt.Fprint(g.stdout, d.Printed)
}

// runWatch keeps job fresh through h until ctx ends: a refresh every
// refresh, and one at once for each SIGHUP on hup.
func (g *globals) runWatch(ctx context.Context, h watch.Host, job *watch.Job, refresh time.Duration, hup <-chan os.Signal) error {
	w := watch.NewWatcher(h, refresh)
	w.Add(job)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				g.logger.Info("SIGHUP: checking the secrets now")
				w.RefreshNow()
			}
		}
	}()
	return w.Run(ctx)
}

// swapped says that new set d is in place in dir (the sandbox swapped, or
// the Secret applied or its manifest rewritten), and why, then runs
// --on-change: what a watch does after each new set, whichever process built
// it.
func (g *globals) swapped(ctx context.Context, w watchFlags, dir string, d *shipper.Delivery, reason watch.Reason, why string) {
	now := time.Now().UTC().Format(time.RFC3339)
	var extra []string
	switch s := d.Secret; {
	case s == nil:
		fmt.Fprintf(g.stdout, "# %s keyship shipped new stores to %s: %s\n", now, dir, why)
	case s.ResourceVersion != "":
		fmt.Fprintf(g.stdout, "# %s keyship applied new stores to Secret %s/%s (resourceVersion %s): %s\n", now, s.Namespace, s.Name, s.ResourceVersion, why)
	default:
		fmt.Fprintf(g.stdout, "# %s keyship wrote new stores to %s (Secret %s): %s\n", now, filepath.Join(dir, kube.ManifestFile), secretWhere(s), why)
	}
	if d.Secret != nil {
		extra = []string{envK8sSecret + "=" + secretWhere(d.Secret), envK8sManifest + "=" + filepath.Join(dir, kube.ManifestFile)}
	}
	g.runOnChange(ctx, w, dir, reason, extra...)
}

// updateText says in a line why a set was shipped.
func updateText(u watch.Update) string {
	var changes []string
	for _, c := range u.Changes {
		changes = append(changes, c.String())
	}
	return reasonText(u.Reason, changes, u.RenewAt)
}

// reasonText says in a line why a set was shipped: the certificate renewed
// (next at renewAt), or the settings whose secret changed.
func reasonText(reason watch.Reason, changes []string, renewAt time.Time) string {
	if reason == watch.Renewed {
		return "the issued certificate was renewed (next renewal " + renewAt.UTC().Format(time.RFC3339) + ")"
	}
	return "changed " + strings.Join(changes, "; ")
}

// runOnChange runs the --on-change command after a swap (watch.Hook: its own
// process group, killed at --on-change-timeout or when the watch stops), with
// the manifest path in its environment (and extra, NAME=value); its output
// goes to keyship's stderr. Its failure is logged: the swap stands.
func (g *globals) runOnChange(ctx context.Context, w watchFlags, dir string, reason watch.Reason, extra ...string) {
	hook := watch.Hook{Command: w.onChange, Timeout: w.onChangeTimeout, Output: g.stderr}
	env := append([]string{
		envManifest + "=" + filepath.Join(dir, sandbox.ManifestName),
		envSandbox + "=" + dir,
		envReason + "=" + string(reason)}, extra...)
	if err := hook.Run(ctx, env...); err != nil {
		g.logger.Error("--on-change command failed (the new stores are in place)", "error", err)
	}
}
