package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/conf"
	"github.com/keyship/keyship/shipper/kube"
	"github.com/keyship/keyship/shipper/sandbox"
)

// defaultShipTimeout bounds resolving and building one job.
const defaultShipTimeout = 30 * time.Second

type shipFlags struct {
	specPath string
	sandbox  string
	timeout  time.Duration
	hosts    []string
	server   string
	jobID    string
	owner    string
	dialect  string
	emit     string
	watch    watchFlags
	// Consumer releases (issue 11): override what the spec's parser infers.
	sparkVersion string
	flinkVersion string
	kube         kubeFlags
}

// The --emit values beyond the consumers of conf.Consumers.
const (
	emitMesos      = "mesos"
	emitMarathon   = "marathon"
	emitKubernetes = "kubernetes"
)

func newShipCmd(g *globals) *cobra.Command {
	var f shipFlags
	cmd := &cobra.Command{
		Use:   "ship --spec FILE --sandbox DIR",
		Short: "Resolve a job's TLS spec, check the stores and write them into a sandbox directory",
		Long: `ship reads a job's TLS request (DC/OS security.tls JSON, Spark properties,
flink-conf.yaml or LIBPROCESS_SSL_* lines; the dialect is detected), reads every
secret ref it names once, checks the keystore and truststore before anything
ships, and writes them atomically into the sandbox directory (files 0600,
directory 0700). The store passwords go into keystore.password, key.password
and truststore.password beside them. It prints the Spark settings that point
at the stores; the settings refer to the passwords through environment
variables and never contain them.`,
		Example: `  keyship ship --config keyship.yaml --spec job.json --sandbox "$MESOS_SANDBOX/.keyship"

  # job.json, as DC/OS Spark takes it:
  {"security": {"tls": {"enabled": true,
    "keystore_secret": "/spark/keystore", "keystore_password": "/spark/keystore_password",
    "key_password": "/spark/key_password", "truststore_secret": "/spark/truststore",
    "truststore_password": "/spark/truststore_password", "ca_bundle_secret": "/spark/ca_bundle_truststore"}}}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.watch.refreshSet = cmd.Flags().Changed("refresh")
			return g.ship(cmd.Context(), f)
		},
	}
	cmd.Flags().StringVar(&f.specPath, "spec", "", "the job's TLS spec: security.tls JSON, Spark properties, flink-conf.yaml or LIBPROCESS_SSL_* lines (required)")
	cmd.Flags().StringVar(&f.sandbox, "sandbox", defaultSandbox(), "directory to write the stores into (default $MESOS_SANDBOX/.keyship when set)")
	deadlineVar(cmd.Flags(), &f.timeout, "timeout", defaultShipTimeout, "deadline for resolving, building and writing (positive)")
	cmd.Flags().StringSliceVar(&f.hosts, "hosts", nil, "hostnames the keystore's certificate must cover (comma-separated)")
	cmd.Flags().StringVar(&f.server, "server", "", "ship through a running keyship serve at unix:///path (the same bundle, built there)")
	cmd.Flags().StringVar(&f.jobID, "job-id", "", "job id for --server and --emit kubernetes (default: derived from the spec)")
	cmd.Flags().StringVar(&f.emit, "emit", "", "what to print: spark, flink, libprocess (settings), mesos or marathon (JSON fragments), kubernetes (a Secret, and the settings that mount it); default: the settings of the spec's consumer")
	cmd.Flags().StringVar(&f.dialect, "dialect", "", "the spec's dialect: dcos, spark, flink or libprocess (default: detect from the content)")
	cmd.Flags().StringVar(&f.owner, "owner", "", "uid:gid to own the sandbox and its files (needs root); default: this process")
	// Consumer releases (issue 11).
	cmd.Flags().StringVar(&f.sparkVersion, "spark-version", "", "the Spark release the settings are for, e.g. 2.2 or 3.5 (default: inferred from the spec, else the newest); Spark 2.2 and before get the passwords in a 0600 properties file")
	cmd.Flags().StringVar(&f.flinkVersion, "flink-version", "", "the Flink release the settings are for, e.g. 1.5, 1.18 or 2.0 (default: the newest that reads every key of the spec); selects the keys and config.yaml or flink-conf.yaml")
	addKubeFlags(cmd, &f.kube)
	addWatchFlags(cmd, &f.watch)
	_ = cmd.MarkFlagRequired("spec")
	return cmd
}

func defaultSandbox() string {
	if d := os.Getenv("MESOS_SANDBOX"); d != "" {
		return filepath.Join(d, ".keyship")
	}
	return ""
}

// emitTargets are the targets of --emit: what ship delivers besides the
// sandbox, for which consumer, with the settings pointing where.
type emitTargets struct {
	consumer string // "" for the spec's
	fragment *shipper.Fragment
	kube     *kube.Target
}

// targets reads --emit and the --k8s-* flags.
func (f shipFlags) targets() (emitTargets, error) {
	var e emitTargets
	switch {
	case f.emit == emitKubernetes:
		k := f.kube
		if k.operator != "" && k.operator != kube.OperatorSpark && k.operator != kube.OperatorFlink {
			return e, usageError{fmt.Errorf("--k8s-operator %q: want %s or %s", k.operator, kube.OperatorSpark, kube.OperatorFlink)}
		}
		if len(f.jobID) > spec.MaxJobIDLen {
			return e, usageError{fmt.Errorf("--job-id: longer than %d bytes", spec.MaxJobIDLen)}
		}
		e.kube = &kube.Target{Options: kube.Options{Name: k.secret, Namespace: k.namespace, MountPath: k.mountPath}, Manifest: true, Operator: k.operator}
		if e.kube.MountPath == "" {
			e.kube.MountPath = kube.DefaultMountPath
		}
	case f.kube.any():
		return e, usageError{fmt.Errorf("the --k8s-* flags and --kubeconfig go with --emit kubernetes")}
	case f.emit == emitMesos, f.emit == emitMarathon:
		e.fragment = &shipper.Fragment{Marathon: f.emit == emitMarathon}
	case slices.Contains(conf.Consumers, f.emit), f.emit == "":
		e.consumer = f.emit
	default:
		return e, usageError{fmt.Errorf("--emit %q: want spark, flink, libprocess, mesos, marathon or kubernetes", f.emit)}
	}
	return e, nil
}

// list is the targets of a ship in this process: the sandbox, then the
// fragment or the Secret (applied with --k8s-apply through --kubeconfig).
func (e emitTargets) list(k kubeFlags) ([]shipper.Target, error) {
	targets := []shipper.Target{shipper.Sandbox}
	switch {
	case e.fragment != nil:
		targets = append(targets, e.fragment)
	case e.kube != nil:
		if k.apply {
			c, err := kube.NewClient(k.kubeconfig)
			if err != nil {
				return nil, err
			}
			e.kube.Client = c
			if e.kube.Namespace == "" {
				e.kube.Namespace = c.Namespace
			}
		}
		targets = append(targets, e.kube)
	}
	return targets, nil
}

// dir is where the consumer reads the files: the sandbox, the task's
// sandbox for a Mesos fragment, or the Secret's mount path.
func (e emitTargets) dir(sandbox string) (string, error) {
	switch {
	case e.kube != nil:
		return e.kube.MountPath, nil
	case e.fragment != nil:
		return shipper.TaskDir, nil
	}
	return filepath.Abs(sandbox)
}

func (g *globals) ship(ctx context.Context, f shipFlags) error {
	if f.sandbox == "" {
		return usageError{fmt.Errorf("--sandbox is required (or set MESOS_SANDBOX)")}
	}
	if err := f.watch.check(f); err != nil {
		return usageError{err}
	}
	e, err := f.targets()
	if err != nil {
		return err
	}
	dir, err := e.dir(f.sandbox)
	if err != nil {
		return err
	}
	// The request is read here whichever process builds, so that a bad
	// spec or flag reads the same with --server.
	req, err := readRequest(f.specPath, f.dialect, e.consumer, f.hosts)
	if err != nil {
		return err
	}
	if err := (shipper.Releases{Spark: f.sparkVersion, Flink: f.flinkVersion}).Apply(req.Spec); err != nil {
		return usageError{err}
	}
	if f.jobID != "" {
		req.JobID = f.jobID
	}
	opts := shipper.Options{Dir: dir}
	if e.kube != nil {
		if err := e.kube.Check(req.JobID); err != nil {
			return usageError{err}
		}
		if err := e.kube.CheckConsumer(req.Consumer); err != nil {
			return usageError{err}
		}
		if f.kube.pem {
			opts.Build.Outputs = kube.PEMOutputs(req.Spec.StoreType)
		}
	}
	if f.server != "" {
		return g.shipThroughServer(ctx, f, e, req, dir)
	}
	if f.watch.on {
		return g.shipWatch(ctx, f, e, req, opts)
	}
	h, ctx, done, err := g.startHost(ctx, f.timeout)
	if err != nil {
		return err
	}
	defer done()
	targets, err := e.list(f.kube)
	if err != nil {
		return err
	}
	sh, d, err := shipper.Ship(ctx, h, req, opts, targets...)
	if err != nil {
		return fmt.Errorf("nothing shipped:\n%w", err)
	}
	defer sh.Zero()
	defer d.Zero()
	return g.shipped(ctx, f, d)
}

// shipped writes d's files into the sandbox and prints what ship prints,
// for a delivery made here or by keyship serve alike: the files shipped,
// then the settings (or the fragment, or the Secret and the settings that
// mount it). Nothing printed holds a password.
func (g *globals) shipped(ctx context.Context, f shipFlags, d *shipper.Delivery) error {
	abs, err := g.writeSandbox(ctx, f, d.Files, d.NotAfter, d.Warnings)
	if err != nil {
		return err
	}
	switch {
	case d.Secret != nil:
		manifest := filepath.Join(abs, kube.ManifestFile)
		g.printSecret(d.Secret, manifest)
		if d.Secret.ResourceVersion != "" {
			fmt.Fprintf(g.stdout, "# applied Secret %s/%s (resourceVersion %s, field manager %s)\n", d.Secret.Namespace, d.Secret.Name, d.Secret.ResourceVersion, kube.FieldManager)
		} else {
			fmt.Fprintf(g.stdout, "# apply it with: kubectl apply --server-side --field-manager=%s -f %s\n", kube.FieldManager, manifest)
		}
		fmt.Fprintf(g.stdout, "# mounted at %s; a subPath mount never sees an updated Secret: mount the whole volume\n", d.Secret.MountPath)
	case d.Fragment != nil:
		// The settings go to stderr when stdout is the JSON fragment.
		if _, err = g.stdout.Write(d.Fragment); err != nil {
			return err
		}
		fmt.Fprintf(g.stderr, "# the task's %s settings, for the files at %s/ in its sandbox:\n%s", d.Consumer, shipper.TaskDir, d.Printed)
		return nil
	case d.FragmentFile != "":
		fmt.Fprintf(g.stdout, "# the TaskInfo fragment carries secret values (keyship built the stores), so it is not printed:\n# merge %s (0600) into the TaskInfo\n", filepath.Join(abs, d.FragmentFile))
		fmt.Fprintf(g.stdout, "# the task's %s settings, for the files at %s/ in its sandbox:\n", d.Consumer, shipper.TaskDir)
	}
	_, err = fmt.Fprint(g.stdout, d.Printed)
	return err
}

// writeSandbox writes files and their manifest.json atomically into
// f.sandbox and prints what it shipped; it returns the sandbox's absolute path.
// Waiting for another keyship writing the same sandbox is bounded by ctx and
// --timeout.
func (g *globals) writeSandbox(ctx context.Context, f shipFlags, files []materialize.File, notAfter map[string]time.Time, warnings []string) (string, error) {
	opts, err := ownerOptions(f.owner)
	if err != nil {
		return "", err
	}
	dir := f.sandbox
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	res, err := writeSandboxFiles(ctx, dir, files, notAfter, opts)
	if err != nil {
		return "", err
	}
	for _, w := range warnings {
		g.logger.Warn(w)
	}
	abs, _ := filepath.Abs(dir)
	fmt.Fprintf(g.stdout, "# keyship shipped %d files to %s\n", len(res.Paths), abs)
	for _, fl := range files {
		if fl.Role != "" && fl.Version != "" {
			fmt.Fprintf(g.stdout, "#   %s (version %s)\n", fl.Path, fl.Version)
		}
	}
	return abs, nil
}

// writeSandboxFiles writes files and their manifest.json (paths, modes,
// versions, and each store's not_after) atomically into dir.
func writeSandboxFiles(ctx context.Context, dir string, files []materialize.File, notAfter map[string]time.Time, opts sandbox.Options) (*sandbox.Result, error) {
	manifest, err := sandbox.ManifestWithExpiry(files, notAfter)
	if err != nil {
		return nil, err
	}
	return sandbox.Write(ctx, dir, append(slices.Clone(files), manifest), opts)
}

// ownerOptions parses --owner uid:gid.
func ownerOptions(owner string) (sandbox.Options, error) {
	if owner == "" {
		return sandbox.Options{}, nil
	}
	var uid, gid int
	if n, err := fmt.Sscanf(owner, "%d:%d", &uid, &gid); err != nil || n != 2 || uid < 0 || gid < 0 {
		return sandbox.Options{}, usageError{fmt.Errorf("--owner %q: want numeric uid:gid, e.g. 1000:1000", owner)}
	}
	return sandbox.Options{Owner: &sandbox.Owner{UID: uid, GID: gid}}, nil
}

// readRequest reads a spec file in dialect ("" detects it) and makes it the
// request of a local ship or check: for consumer ("" for the dialect's) and
// hosts.
func readRequest(path, dialect, consumer string, hosts []string) (*spec.Request, error) {
	if dialect != "" && !slices.Contains(spec.Dialects, dialect) {
		return nil, usageError{fmt.Errorf("--dialect %q: want one of %s", dialect, strings.Join(spec.Dialects, ", "))}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("--spec: %w", err)}
	}
	req, err := spec.ReadRequest(spec.Document{JobID: localJobID(data), Data: data, Dialect: dialect, Consumer: consumer, Hosts: hosts})
	if err != nil {
		return nil, fmt.Errorf("spec %s:\n%w", path, err)
	}
	return req, nil
}

// localJobID names the job of a local ship or check after its spec.
func localJobID(doc []byte) string {
	sum := sha256.Sum256(doc)
	return "keyship-cli-" + hex.EncodeToString(sum[:8])
}
