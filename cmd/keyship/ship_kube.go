package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/conf"
	"github.com/keyship/keyship/shipper/kube"
)

// emitKubernetes ships to a Kubernetes Secret.
const emitKubernetes = "kubernetes"

// kubeManifestFile holds the Secret's manifest in the sandbox: it carries
// the stores and passwords, so it is 0600 and never printed.
const kubeManifestFile = "kubernetes-secret.yaml"

// The --k8s-operator values: print an operator's resource fragment instead
// of the native settings.
const (
	operatorSpark = "spark-operator"
	operatorFlink = "flink-operator"
)

type kubeFlags struct {
	secret, namespace, kubeconfig, mountPath, operator string
	apply, pem                                         bool
}

func (k kubeFlags) any() bool {
	return k.secret != "" || k.namespace != "" || k.kubeconfig != "" || k.mountPath != "" || k.operator != "" || k.apply || k.pem
}

func addKubeFlags(cmd *cobra.Command, k *kubeFlags) {
	fl := cmd.Flags()
	fl.StringVar(&k.secret, "k8s-secret", "", "--emit kubernetes: the Secret's name (default: keyship- and the job id, DNS-1123)")
	fl.StringVar(&k.namespace, "k8s-namespace", "", "--emit kubernetes: the Secret's namespace (default: the kubeconfig context's)")
	fl.StringVar(&k.kubeconfig, "kubeconfig", "", "--k8s-apply: kubeconfig file (default $KUBECONFIG, ~/.kube/config, or in-cluster)")
	fl.StringVar(&k.mountPath, "k8s-mount-path", "", "--emit kubernetes: where the pods mount the Secret (default "+kube.DefaultMountPath+")")
	fl.StringVar(&k.operator, "k8s-operator", "", "--emit kubernetes: print a "+operatorSpark+" SparkApplication or "+operatorFlink+" FlinkDeployment fragment instead of the settings")
	fl.BoolVar(&k.apply, "k8s-apply", false, "--emit kubernetes: server-side-apply the Secret (field manager keyship)")
	fl.BoolVar(&k.pem, "k8s-pem", false, "--emit kubernetes: add key.pem, cert.pem and ca.pem to the Secret")
}

// shipKubernetes ships the spec as a Kubernetes Secret: the manifest goes to
// a 0600 file in the sandbox (and to the API server with --k8s-apply), the
// settings that mount it to stdout.
func (g *globals) shipKubernetes(ctx context.Context, f shipFlags) error {
	k := f.kube
	if f.server != "" {
		return usageError{fmt.Errorf("--emit kubernetes ships from this process; with keyship serve, ask for TARGET_KUBERNETES")}
	}
	if k.operator != "" && k.operator != operatorSpark && k.operator != operatorFlink {
		return usageError{fmt.Errorf("--k8s-operator %q: want %s or %s", k.operator, operatorSpark, operatorFlink)}
	}
	if len(f.jobID) > spec.MaxJobIDLen {
		return usageError{fmt.Errorf("--job-id: longer than %d bytes", spec.MaxJobIDLen)}
	}
	mount := k.mountPath
	if mount == "" {
		mount = kube.DefaultMountPath
	}
	req, err := readRequest(f.specPath, f.dialect, "", f.hosts)
	if err != nil {
		return err
	}
	if err := applyVersions(req.Spec, f); err != nil {
		return err
	}
	if f.jobID != "" {
		req.JobID = f.jobID
	}
	want := map[string]string{operatorSpark: conf.ConsumerSpark, operatorFlink: conf.ConsumerFlink}[k.operator]
	if want != "" && want != req.Consumer {
		return usageError{fmt.Errorf("--k8s-operator %s: the spec is for %s", k.operator, req.Consumer)}
	}
	opts := shipper.Options{Dir: mount}
	if k.pem {
		opts.Build.Outputs = []materialize.Format{storeFormat(req.Spec.StoreType), materialize.FormatPEM}
	}
	if f.watch.on {
		return g.shipKubeWatch(ctx, f, req, opts)
	}
	h, ctx, done, err := g.startHost(ctx, f.timeout)
	if err != nil {
		return err
	}
	defer done()
	sh, err := shipper.Prepare(ctx, h, req, opts)
	if err != nil {
		return fmt.Errorf("nothing shipped:\n%w", err)
	}
	defer sh.Zero()
	var client *kube.Client
	ns := k.namespace
	if k.apply {
		if client, err = kube.NewClient(k.kubeconfig); err != nil {
			return err
		}
		if ns == "" {
			ns = client.Namespace
		}
	}
	plan, err := kube.NewPlan(sh, kube.Options{Name: k.secret, Namespace: ns, MountPath: mount})
	if err != nil {
		return usageError{err}
	}
	defer plan.Zero()
	manifest := plan.Manifest()
	defer clear(manifest)
	dir, err := g.writeSandbox(ctx, f, []materialize.File{{Path: kubeManifestFile, Mode: materialize.FileMode, Contents: manifest}}, nil, sh.Bundle.Warnings)
	if err != nil {
		return err
	}
	g.printKubeManifest(plan, filepath.Join(dir, kubeManifestFile))
	if k.apply {
		a, err := client.Apply(ctx, plan)
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "# applied Secret %s/%s (resourceVersion %s, field manager %s)\n", a.Namespace, a.Name, a.ResourceVersion, kube.FieldManager)
	} else {
		fmt.Fprintf(g.stdout, "# apply it with: kubectl apply --server-side --field-manager=%s -f %s\n", kube.FieldManager, filepath.Join(dir, kubeManifestFile))
	}
	fmt.Fprintf(g.stdout, "# mounted at %s; a subPath mount never sees an updated Secret: mount the whole volume\n", plan.MountPath)
	return g.printKubeSettings(plan, req.Spec, k.operator)
}

// secretWhere names plan's Secret as namespace/name, or name when the
// manifest leaves the namespace to kubectl.
func secretWhere(plan *kube.Plan) string {
	if plan.Namespace != "" {
		return plan.Namespace + "/" + plan.Name
	}
	return plan.Name
}

// printKubeManifest says where the Secret's manifest is and which keys (and
// versions) it holds, never their bytes.
func (g *globals) printKubeManifest(plan *kube.Plan, path string) {
	fmt.Fprintf(g.stdout, "# %s (0600) is Secret %s with the stores and passwords; never print it.\n", path, secretWhere(plan))
	var keys []string
	for _, key := range plan.Keys {
		if key.Version != "" {
			keys = append(keys, key.Name+" (version "+key.Version+")")
		} else {
			keys = append(keys, key.Name)
		}
	}
	fmt.Fprintf(g.stdout, "# keys: %s\n", strings.Join(keys, ", "))
}

// printKubeSettings prints the settings or the operator fragment; neither
// holds secret bytes.
func (g *globals) printKubeSettings(plan *kube.Plan, s *spec.Spec, operator string) error {
	var out []byte
	var err error
	switch operator {
	case operatorSpark:
		fmt.Fprintln(g.stdout, "# SparkApplication (sparkoperator.k8s.io/v1beta2) fragment")
		out, err = kube.SparkApplication(plan)
	case operatorFlink:
		fmt.Fprintf(g.stdout, "# FlinkDeployment (flink.apache.org/v1beta1) fragment. %s\n", kube.FlinkPasswords(plan))
		out, err = kube.FlinkDeployment(plan)
	default:
		switch plan.Consumer {
		case conf.ConsumerSpark:
			fmt.Fprintln(g.stdout, "# Spark on Kubernetes properties: the Secret mounted in the driver and executors, the passwords from it as environment variables")
		case conf.ConsumerFlink:
			fmt.Fprintf(g.stdout, "# Flink native Kubernetes configuration. %s\n", kube.FlinkPasswords(plan))
		}
		out = []byte(conf.Format(plan.Consumer, plan.Settings))
		if plan.Consumer == conf.ConsumerFlink {
			// The settings for the Flink client's configuration, in the
			// release's own syntax: none is a password (those stay in
			// the Secret's fragment).
			var public []conf.Setting
			for _, st := range plan.Settings {
				if st.Password == nil {
					public = append(public, st)
				}
			}
			out = conf.FlinkFragment(public, s)
		}
	}
	if err != nil {
		return err
	}
	_, err = g.stdout.Write(out)
	return err
}

// storeFormat is the output format of a spec's store type.
func storeFormat(storeType string) materialize.Format {
	switch strings.ToLower(storeType) {
	case spec.StoreTypePKCS12:
		return materialize.FormatPKCS12
	case spec.StoreTypePEM:
		return materialize.FormatPEM
	default:
		return materialize.FormatJKS
	}
}
