package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	"github.com/keyship/keyship/shipper/mesos"
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
	emitMesos    = "mesos"
	emitMarathon = "marathon"
)

// mesosFragmentFile holds the Mesos TaskInfo fragment when it carries secret
// values, so that they never reach stdout.
const mesosFragmentFile = "mesos-taskinfo.json"

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
		RunE: func(cmd *cobra.Command, _ []string) error { return g.ship(cmd.Context(), f) },
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

// applyVersions sets the consumer releases of s that --spark-version and
// --flink-version give (issue 11).
func applyVersions(s *spec.Spec, f shipFlags) error {
	for _, o := range []struct {
		flag, v, consumer string
		dst               *spec.ConsumerVersion
	}{{"--spark-version", f.sparkVersion, spec.ConsumerSpark, &s.SparkVersion}, {"--flink-version", f.flinkVersion, spec.ConsumerFlink, &s.FlinkVersion}} {
		if o.v == "" {
			continue
		}
		v, err := spec.ParseRelease(o.consumer, o.v)
		if err != nil {
			return usageError{fmt.Errorf("%s: %w", o.flag, err)}
		}
		*o.dst = spec.ConsumerVersion{Version: v, From: o.flag}
	}
	return nil
}

func defaultSandbox() string {
	if d := os.Getenv("MESOS_SANDBOX"); d != "" {
		return filepath.Join(d, ".keyship")
	}
	return ""
}

func (g *globals) ship(ctx context.Context, f shipFlags) error {
	if f.sandbox == "" {
		return usageError{fmt.Errorf("--sandbox is required (or set MESOS_SANDBOX)")}
	}
	if err := f.watch.check(f); err != nil {
		return usageError{err}
	}
	switch {
	case f.emit == emitKubernetes:
		return g.shipKubernetes(ctx, f)
	case f.kube.any():
		return usageError{fmt.Errorf("the --k8s-* flags and --kubeconfig go with --emit kubernetes")}
	}
	if f.server != "" {
		return g.shipThroughServer(ctx, f)
	}
	consumer := ""
	switch {
	case slices.Contains(conf.Consumers, f.emit), f.emit == "":
		consumer = f.emit
	case f.emit != emitMesos && f.emit != emitMarathon:
		return usageError{fmt.Errorf("--emit %q: want spark, flink, libprocess, mesos, marathon or kubernetes", f.emit)}
	}
	toMesos := f.emit == emitMesos || f.emit == emitMarathon
	req, err := readRequest(f.specPath, f.dialect, consumer, f.hosts)
	if err != nil {
		return err
	}
	if err := applyVersions(req.Spec, f); err != nil {
		return err
	}
	if f.watch.on {
		return g.shipWatch(ctx, f, req)
	}
	h, ctx, done, err := g.startHost(ctx, f.timeout)
	if err != nil {
		return err
	}
	defer done()

	// Settings point at the files where the task reads them: the sandbox
	// here, or .keyship in the task's sandbox for a Mesos fragment.
	dir, err := filepath.Abs(f.sandbox)
	if err != nil {
		return err
	}
	if toMesos {
		dir = shipper.TaskDir
	}
	sh, err := shipper.Prepare(ctx, h, req, shipper.Options{Dir: dir})
	if err != nil {
		return fmt.Errorf("nothing shipped:\n%w", err)
	}
	defer sh.Zero()
	settings := sh.Settings
	// Spark with every file a Mesos secret by reference: the driver and
	// executors mount them (spark.mesos.*.secret.*), so the settings point
	// at their place in the container.
	if req.Consumer == conf.ConsumerSpark && !toMesos {
		if plan, err := sh.MesosIn(shipper.TaskDir); err == nil {
			if mesosSettings, _, ok := conf.SparkMesos(sh.Bundle, req.Spec, plan); ok {
				settings, dir = mesosSettings, shipper.TaskDir
			}
		}
	}
	files := sh.SandboxFiles()
	var out []byte
	if toMesos {
		plan, err := sh.Mesos()
		if err != nil {
			return err
		}
		if out, err = mesosFragment(f.emit, plan); err != nil {
			return err
		}
		if f.emit == emitMesos && plan.ByValue() {
			files = append(files, materialize.File{Path: mesosFragmentFile, Mode: 0o600, Contents: out})
			out = nil
		}
	}
	abs, err := g.writeSandbox(ctx, f, files, sh.NotAfter(), sh.Bundle.Warnings)
	if err != nil {
		return err
	}
	// The consumer's settings never hold a password; with --emit mesos or
	// marathon they point at the container paths (issue 11), and go to
	// stderr when stdout is the JSON fragment.
	printed := conf.Print(req.Consumer, settings, sh.Bundle, req.Spec, dir)
	switch {
	case out != nil:
		if _, err = g.stdout.Write(out); err != nil {
			return err
		}
		fmt.Fprintf(g.stderr, "# the task's %s settings, for the files at %s/ in its sandbox:\n%s", req.Consumer, shipper.TaskDir, printed)
		return nil
	case f.emit == emitMesos:
		fmt.Fprintf(g.stdout, "# the TaskInfo fragment carries secret values (keyship built the stores), so it is not printed:\n# merge %s (0600) into the TaskInfo\n", filepath.Join(abs, mesosFragmentFile))
		fmt.Fprintf(g.stdout, "# the task's %s settings, for the files at %s/ in its sandbox:\n", req.Consumer, shipper.TaskDir)
	}
	fmt.Fprint(g.stdout, printed)
	return nil
}

// mesosFragment is the JSON of plan as a Mesos TaskInfo fragment or a
// Marathon app fragment. Marathon secrets can only be references: a plan
// with keyship-built items has no Marathon form.
func mesosFragment(emit string, plan *mesos.Plan) ([]byte, error) {
	var v any = plan.TaskInfo()
	if emit == emitMarathon {
		app, left := plan.Marathon()
		if len(left) > 0 {
			var what []string
			for _, it := range left {
				what = append(what, it.Path+it.Env)
			}
			return nil, fmt.Errorf("--emit marathon: Marathon secrets must be references to the DC/OS secret store, and keyship built %s; ship them with --sandbox, --emit mesos or keyship serve's fetch URIs", strings.Join(what, ", "))
		}
		v = app
	}
	data, err := json.MarshalIndent(v, "", "  ")
	return append(data, '\n'), err
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
