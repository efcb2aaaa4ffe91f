package kube

import (
	"context"
	"fmt"
	"strings"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/conf"
)

// ManifestFile holds the Secret's manifest in a sandbox: it carries the
// stores and passwords, so it is 0600 and never printed.
const ManifestFile = "kubernetes-secret.yaml"

// The operators whose resource fragment Target prints instead of the native
// settings.
const (
	OperatorSpark = "spark-operator"
	OperatorFlink = "flink-operator"
)

// Target is the pipeline's Kubernetes target: the job's Secret (NewPlan),
// applied through Client when it is set, written as a manifest among the
// delivery's files when Manifest is set; the delivery's settings are the
// ones that mount it, and its Printed text those settings (or Operator's
// resource fragment) in the consumer's syntax.
type Target struct {
	Options
	// Client applies the Secret; nil leaves it to the caller (Manifest).
	Client *Client
	// Manifest makes the manifest the delivery's one file (ManifestFile).
	Manifest bool
	// Operator is "", OperatorSpark or OperatorFlink.
	Operator string
}

// operatorConsumers are the consumers of the operators.
var operatorConsumers = map[string]string{OperatorSpark: conf.ConsumerSpark, OperatorFlink: conf.ConsumerFlink}

// Check checks the target for a job as Deliver does, before anything is
// built: the operator, and the options (Options.Check).
func (t Target) Check(jobID string) error {
	if t.Operator != "" && operatorConsumers[t.Operator] == "" {
		return fmt.Errorf("kubernetes operator %q: want %s or %s", t.Operator, OperatorSpark, OperatorFlink)
	}
	return t.Options.Check(jobID)
}

// CheckConsumer checks that the target's operator (if any) runs consumer.
func (t Target) CheckConsumer(consumer string) error {
	if want := operatorConsumers[t.Operator]; want != "" && want != consumer {
		return fmt.Errorf("kubernetes operator %s: the spec is for %s", t.Operator, consumer)
	}
	return nil
}

// Deliver implements shipper.Target.
func (t Target) Deliver(ctx context.Context, sh *shipper.Shipment, d *shipper.Delivery) error {
	if err := t.Check(sh.Request.JobID); err != nil {
		return err
	}
	if err := t.CheckConsumer(sh.Request.Consumer); err != nil {
		return err
	}
	plan, err := NewPlan(sh, t.Options)
	if err != nil {
		return err
	}
	sec := &shipper.Secret{Namespace: plan.Namespace, Name: plan.Name, MountPath: plan.MountPath, Versions: map[string]string{}, DeleteAt: t.Expires}
	for _, k := range plan.Keys {
		sec.Keys = append(sec.Keys, k.Name)
		if k.Version != "" {
			sec.Versions[k.Name] = k.Version
		}
	}
	if t.Client != nil {
		a, err := t.Client.Apply(ctx, plan)
		if err != nil {
			return err
		}
		sec.Namespace, sec.Name, sec.UID, sec.ResourceVersion = a.Namespace, a.Name, string(a.UID), a.ResourceVersion
	}
	if t.Manifest {
		m := plan.Manifest()
		d.Own(m)
		d.Files, d.Contents, d.NotAfter = []materialize.File{{Path: ManifestFile, Mode: materialize.FileMode, Contents: m}}, true, nil
	}
	d.Secret, d.SettingsDir = sec, plan.MountPath
	d.Settings = d.Settings[:0:0]
	for _, st := range plan.Settings {
		if st.Password == nil {
			d.Settings = append(d.Settings, st)
		}
	}
	d.Printed, err = printed(plan, sh, t.Operator)
	return err
}

// printed is the plan's settings, or the operator's fragment, as keyship
// ship prints them: neither holds secret bytes.
func printed(plan *Plan, sh *shipper.Shipment, operator string) (string, error) {
	var head string
	var out []byte
	var err error
	switch operator {
	case OperatorSpark:
		head = "# SparkApplication (sparkoperator.k8s.io/v1beta2) fragment\n"
		out, err = SparkApplication(plan)
	case OperatorFlink:
		head = fmt.Sprintf("# FlinkDeployment (flink.apache.org/v1beta1) fragment. %s\n", FlinkPasswords(plan))
		out, err = FlinkDeployment(plan)
	default:
		switch plan.Consumer {
		case conf.ConsumerSpark:
			head = "# Spark on Kubernetes properties: the Secret mounted in the driver and executors, the passwords from it as environment variables\n"
		case conf.ConsumerFlink:
			head = fmt.Sprintf("# Flink native Kubernetes configuration. %s\n", FlinkPasswords(plan))
		}
		out = []byte(conf.Format(plan.Consumer, plan.Settings))
		if plan.Consumer == conf.ConsumerFlink {
			// The settings for the Flink client's configuration, in the
			// release's own syntax: none is a password (those stay in the
			// Secret's fragment).
			var public []conf.Setting
			for _, st := range plan.Settings {
				if st.Password == nil {
					public = append(public, st)
				}
			}
			out = conf.FlinkFragment(public, sh.Profile)
		}
	}
	if err != nil {
		return "", err
	}
	return head + string(out), nil
}

// PEMOutputs are the build's outputs for a Secret with PEM files (keyship
// ship --k8s-pem): the spec's store type and PEM.
func PEMOutputs(storeType string) []materialize.Format {
	f := materialize.FormatJKS
	switch strings.ToLower(storeType) {
	case spec.StoreTypePKCS12:
		f = materialize.FormatPKCS12
	case spec.StoreTypePEM:
		f = materialize.FormatPEM
	}
	return []materialize.Format{f, materialize.FormatPEM}
}
