package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper/conf"
	"github.com/keyship/keyship/shipper/sandbox"
)

// The files next to the stores that carry their passwords, for launchers
// that export them into the task environment (conf.Env* names).
const (
	keystorePasswordFile   = "keystore.password"
	keyPasswordFile        = "key.password"
	truststorePasswordFile = "truststore.password"
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
}

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
    "key_password": "/spark/key_password"}}}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return g.ship(cmd.Context(), f) },
	}
	cmd.Flags().StringVar(&f.specPath, "spec", "", "the job's TLS spec: security.tls JSON, Spark properties, flink-conf.yaml or LIBPROCESS_SSL_* lines (required)")
	cmd.Flags().StringVar(&f.sandbox, "sandbox", defaultSandbox(), "directory to write the stores into (default $MESOS_SANDBOX/.keyship when set)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", defaultShipTimeout, "deadline for resolving and building")
	cmd.Flags().StringSliceVar(&f.hosts, "hosts", nil, "hostnames the keystore's certificate must cover (comma-separated)")
	cmd.Flags().StringVar(&f.server, "server", "", "ship through a running keyship serve at unix:///path (the same bundle, built there)")
	cmd.Flags().StringVar(&f.jobID, "job-id", "", "job id for --server (default: derived from the spec)")
	cmd.Flags().StringVar(&f.dialect, "dialect", "", "the spec's dialect: dcos, spark, flink or libprocess (default: detect from the content)")
	cmd.Flags().StringVar(&f.owner, "owner", "", "uid:gid to own the sandbox and its files (needs root); default: this process")
	_ = cmd.MarkFlagRequired("spec")
	return cmd
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
	if f.server != "" {
		return g.shipThroughServer(ctx, f)
	}
	s, err := readSpec(f.specPath, f.dialect)
	if err != nil {
		return err
	}
	s.Hosts = append(s.Hosts, f.hosts...)
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	h := g.newHost(cfg)
	defer func() { _ = h.Close() }()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	bundle, err := h.Build(ctx, s, materialize.Options{})
	if err != nil {
		return fmt.Errorf("nothing shipped:\n%w", err)
	}
	defer bundle.Zero()
	dir, err := g.writeSandbox(f, sandboxFiles(bundle), bundle.Files, bundle.Warnings)
	if err != nil {
		return err
	}
	fmt.Fprint(g.stdout, conf.Properties(conf.Spark(bundle, dir, s.Protocol)))
	return nil
}

// writeSandbox writes files and their manifest.json atomically into
// f.sandbox and prints what it shipped; it returns the sandbox's absolute path.
func (g *globals) writeSandbox(f shipFlags, files []sandbox.File, stores []materialize.File, warnings []string) (string, error) {
	opts, err := ownerOptions(f.owner)
	if err != nil {
		return "", err
	}
	versions := map[string]string{}
	for _, st := range stores {
		versions[st.Path] = st.Version
	}
	manifest, err := sandbox.Manifest(files, versions)
	if err != nil {
		return "", err
	}
	dir := f.sandbox
	res, err := sandbox.Write(dir, append(files, manifest), opts)
	if err != nil {
		return "", err
	}
	for _, w := range warnings {
		g.logger.Warn(w)
	}
	abs, _ := filepath.Abs(dir)
	fmt.Fprintf(g.stdout, "# keyship shipped %d files to %s\n", len(res.Paths), abs)
	for _, fl := range stores {
		fmt.Fprintf(g.stdout, "#   %s (version %s)\n", fl.Path, fl.Version)
	}
	fmt.Fprintf(g.stdout, "# Spark properties; export the passwords first, e.g.\n#   export %s=\"$(cat %s)\"\n",
		conf.EnvKeystorePassword, filepath.Join(abs, keystorePasswordFile))
	return abs, nil
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

// passwordFiles maps the password environment variables to the files that
// carry them in the sandbox.
var passwordFiles = map[string]string{
	conf.EnvKeystorePassword:   keystorePasswordFile,
	conf.EnvKeyPassword:        keyPasswordFile,
	conf.EnvTruststorePassword: truststorePasswordFile,
}

// sandboxFiles lists the bundle's stores and its password files.
func sandboxFiles(b *materialize.Bundle) []sandbox.File {
	var out []sandbox.File
	for _, f := range b.Files {
		out = append(out, sandbox.File{Path: f.Path, Mode: f.Mode, Contents: f.Contents})
	}
	for _, pw := range []struct {
		env string
		pw  []byte
	}{{conf.EnvKeystorePassword, b.KeystorePassword}, {conf.EnvKeyPassword, b.KeyPassword}, {conf.EnvTruststorePassword, b.TruststorePassword}} {
		if pw.pw != nil {
			out = append(out, sandbox.File{Path: passwordFiles[pw.env], Mode: 0o600, Contents: pw.pw})
		}
	}
	return out
}

// readSpec reads and parses a spec file in dialect ("" detects it).
func readSpec(path, dialect string) (*spec.Spec, error) {
	if dialect != "" && !slices.Contains(spec.Dialects, dialect) {
		return nil, usageError{fmt.Errorf("--dialect %q: want one of %s", dialect, strings.Join(spec.Dialects, ", "))}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("--spec: %w", err)}
	}
	s, err := spec.Parse(data, dialect)
	if err != nil {
		return nil, fmt.Errorf("spec %s:\n%w", path, err)
	}
	return s, nil
}
