// Package kube is the pipeline's Kubernetes target: it turns a Shipment into
// one Opaque Secret per job (the stores, the PEM files when built, Flink's
// secret fragment and the store passwords, each a key), the settings that
// make Spark or Flink on Kubernetes mount it and read the passwords from it,
// and applies it with server-side apply.
//
// The Secret is a function of the Shipment and Options only: the same inputs
// give the same bytes, so applying it again changes nothing (the API server
// keeps the resourceVersion). A rotation loop re-plans and re-applies; there
// is no other state.
//
// Quickstart:
//
//	sh, err := shipper.Prepare(ctx, h, req, shipper.Options{Dir: kube.DefaultMountPath})
//	plan, err := kube.NewPlan(sh, kube.Options{Namespace: "spark-jobs"})
//	c, err := kube.NewClient("") // $KUBECONFIG, ~/.kube/config or in-cluster
//	applied, err := c.Apply(ctx, plan)
//	fmt.Print(conf.Properties(plan.Settings)) // spark.kubernetes.*.secrets.*, spark.ssl.*
//
// Secret bytes live in the Plan's keys and in Manifest's result only; neither
// is printed or logged. Labels and annotations carry names and versions.
package kube

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/conf"
	"github.com/keyship/keyship/shipper/mesos"
)

// The labels and annotations keyship puts on its Secrets. Label values are
// at most 63 characters of a restricted set, so the job's full id and the
// versions are annotations.
const (
	// LabelManagedBy marks a Secret as keyship's; Apply refuses to take
	// over a Secret without it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is LabelManagedBy's value.
	ManagedBy = "keyship"
	// LabelJob is the job id made a valid label value (JobLabel).
	LabelJob = "keyship.io/job"
	// AnnotationJobID is the job's full id.
	AnnotationJobID = "keyship.io/job-id"
	// AnnotationExpires is when keyship serve deletes the Secret (RFC 3339,
	// UTC); absent when the Secret persists.
	AnnotationExpires = "keyship.io/expires"
	// AnnotationVersionPrefix, followed by a key of the Secret, is the
	// version of that key's file (materialize.File.Version).
	AnnotationVersionPrefix = "keyship.io/version-"
)

// FieldManager is the server-side apply field manager of keyship's writes.
const FieldManager = "keyship"

// DefaultMountPath is where the consumer's pods mount the Secret when
// Options.MountPath is empty.
const DefaultMountPath = "/etc/keyship/tls"

// MaxNameLen is the longest Secret name keyship uses: Spark and Flink name
// the pod volume of a secret "<name>-volume" (Spark's
// MountSecretsFeatureStep.secretVolumeName, Flink's MountSecretsDecorator),
// and a volume name is a DNS-1123 label of at most 63 characters.
const MaxNameLen = 63 - len("-volume")

// The keys that carry the store passwords, beside the files' keys (which are
// the files' names: keystore.jks, truststore.p12, key.pem, flink-ssl.yaml, ...).
const (
	KeyKeystorePassword   = conf.KeystorePasswordFile
	KeyKeyPassword        = conf.KeyPasswordFile
	KeyTruststorePassword = conf.TruststorePasswordFile
)

// Options says where and how a Shipment becomes a Secret.
type Options struct {
	// Name is the Secret's name, a DNS-1123 label of at most MaxNameLen
	// characters; "" derives one from the job id (SecretName).
	Name string
	// Namespace is the Secret's namespace; "" leaves it out of the
	// manifest (kubectl then uses its context's). Apply needs one.
	Namespace string
	// MountPath is where the pods mount the Secret, absolute; ""
	// means DefaultMountPath. The settings point at the files there.
	MountPath string
	// Expires, when set, is written as AnnotationExpires: the time keyship
	// serve deletes the Secret. Zero means the Secret persists.
	Expires time.Time
}

// Key is one key of the Secret.
type Key struct {
	// Name is the key, e.g. "keystore.jks" or "keystore.password".
	Name string
	// Role is the file's role, or "" for a password.
	Role materialize.Role
	// Version is the file's version, or "" when unknown or a password.
	Version string
	// Env is the environment variable a password key is exposed as
	// (secretKeyRef), or "" for a file.
	Env string
	// Contents are the key's bytes. They are the Shipment's (the files made
	// for the mount path too, see shipper.Shipment.At): zero the Shipment,
	// not the keys.
	Contents materialize.Sensitive
}

// Plan is one job's Secret and the consumer settings that point at it.
type Plan struct {
	// Name, Namespace and MountPath are the Secret's and its mount's.
	Name, Namespace, MountPath string
	// JobID is the job's id.
	JobID string
	// Consumer is who reads Settings: spark, flink or libprocess.
	Consumer string
	// Keys are the Secret's keys, in name order.
	Keys []Key
	// Labels and Annotations are the Secret's.
	Labels, Annotations map[string]string
	// Settings are the consumer's settings for Kubernetes: mount the Secret
	// at MountPath, read the passwords from it (see Settings), and the TLS
	// settings pointing at MountPath. None holds a password in Value.
	Settings []conf.Setting
}

// NewPlan makes sh's Secret and settings. The settings point at files in
// opts.MountPath whatever sh.Dir is: the consumer's files for the mount path
// are sh.At's (made once per directory), so one Shipment can feed a
// sandbox, Mesos and Kubernetes. Errors name the option at fault.
func NewPlan(sh *shipper.Shipment, opts Options) (*Plan, error) {
	if sh == nil || sh.Bundle == nil || sh.Request == nil {
		return nil, errors.New("kube: no shipment")
	}
	req := sh.Request
	p, err := opts.plan(req.JobID)
	if err != nil {
		return nil, err
	}
	p.Consumer = req.Consumer
	at, err := sh.At(p.MountPath)
	if err != nil {
		return nil, err
	}
	settings := at.Settings
	b := sh.Bundle
	for _, f := range at.Files {
		p.Keys = append(p.Keys, Key{Name: path.Base(f.Path), Role: f.Role, Version: f.Version, Contents: f.Contents})
	}
	for _, pw := range mesos.Passwords(b) {
		if pw.Value != nil {
			p.Keys = append(p.Keys, Key{Name: pw.File, Env: pw.Env, Contents: pw.Value})
		}
	}
	slices.SortFunc(p.Keys, func(a, b Key) int { return strings.Compare(a.Name, b.Name) })
	for i, k := range p.Keys {
		if errs := validation.IsConfigMapKey(k.Name); len(errs) > 0 {
			return nil, fmt.Errorf("kube: Secret key %q: %s", k.Name, strings.Join(errs, "; "))
		}
		if i > 0 && p.Keys[i-1].Name == k.Name {
			return nil, fmt.Errorf("kube: two files would be Secret key %q", k.Name)
		}
	}
	p.Labels = map[string]string{LabelManagedBy: ManagedBy, LabelJob: JobLabel(req.JobID)}
	p.Annotations = map[string]string{AnnotationJobID: req.JobID}
	for _, k := range p.Keys {
		if k.Version != "" {
			p.Annotations[AnnotationVersionPrefix+k.Name] = k.Version
		}
	}
	if !opts.Expires.IsZero() {
		p.Annotations[AnnotationExpires] = opts.Expires.UTC().Format(time.RFC3339)
	}
	p.Settings = append(consumerSettings(p), settings...)
	return p, nil
}

// Check checks the options for a job's Secret as NewPlan does, before
// anything is built: the errors name the option at fault.
func (o Options) Check(jobID string) error {
	_, err := o.plan(jobID)
	return err
}

// plan is the Plan of o for a job, its defaults filled in and checked.
func (o Options) plan(jobID string) (*Plan, error) {
	p := &Plan{Name: o.Name, Namespace: o.Namespace, MountPath: o.MountPath, JobID: jobID}
	if p.Name == "" {
		p.Name = SecretName(jobID)
	}
	if p.MountPath == "" {
		p.MountPath = DefaultMountPath
	}
	return p, checkOptions(p)
}

// checkOptions checks the Secret's name, namespace and mount path.
func checkOptions(p *Plan) error {
	var errs []error
	if msgs := validation.IsDNS1123Label(p.Name); len(msgs) > 0 || len(p.Name) > MaxNameLen {
		errs = append(errs, fmt.Errorf("secret name %q: want a DNS-1123 label (lower-case letters, digits and '-') of at most %d characters, "+
			"since Spark and Flink name its pod volume %q", p.Name, MaxNameLen, p.Name+"-volume"))
	}
	if p.Namespace != "" {
		if msgs := validation.IsDNS1123Label(p.Namespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("namespace %q: %s", p.Namespace, strings.Join(msgs, "; ")))
		}
	}
	// Flink's kubernetes.secrets is "name:path,name:path": no ',' or ':'.
	if !path.IsAbs(p.MountPath) || path.Clean(p.MountPath) != p.MountPath || p.MountPath == "/" || strings.ContainsAny(p.MountPath, ",:; \t\n\"'\\") {
		errs = append(errs, fmt.Errorf("mount path %q: want a clean absolute directory other than / without ',', ':', ';', quotes or spaces (Flink's kubernetes.secrets is name:path,name:path)", p.MountPath))
	}
	return errors.Join(errs...)
}

var (
	notNameChar  = regexp.MustCompile(`[^a-z0-9-]+`)
	notLabelChar = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
)

// SecretName derives a Secret name from a job id: "keyship-" and the id in
// lower case with every run of other characters than letters, digits and
// '-' made one '-'. When that changes or shortens the id, a hash of the
// full id follows, so that two job ids never share a name. The result is a
// DNS-1123 label of at most MaxNameLen characters.
func SecretName(jobID string) string {
	s := strings.Trim(notNameChar.ReplaceAllString(strings.ToLower(jobID), "-"), "-")
	changed := s != jobID || s == ""
	if !strings.HasPrefix(s, "keyship-") {
		s = strings.TrimSuffix("keyship-"+s, "-")
	}
	if !changed && len(s) <= MaxNameLen {
		return s
	}
	sum := sha256.Sum256([]byte(jobID))
	suffix := "-" + hex.EncodeToString(sum[:5])
	s = strings.TrimRight(s[:min(len(s), MaxNameLen-len(suffix))], "-")
	return s + suffix
}

// JobLabel makes a job id a label value (at most 63 characters: letters,
// digits, '-', '_' and '.', alphanumeric at both ends), with a hash of the
// full id when it had to change it.
func JobLabel(jobID string) string {
	if len(validation.IsValidLabelValue(jobID)) == 0 && jobID != "" {
		return jobID
	}
	sum := sha256.Sum256([]byte(jobID))
	suffix := hex.EncodeToString(sum[:5])
	s := strings.Trim(notLabelChar.ReplaceAllString(jobID, "-"), "-_.")
	s = strings.TrimRight(s[:min(len(s), 63-len(suffix)-1)], "-_.")
	if s == "" {
		return suffix
	}
	return s + "-" + suffix
}

// Manifest is the Secret as a YAML manifest (`kubectl apply
// --server-side -f` reads it; Apply sends exactly these bytes). It holds the
// stores and passwords: write it only to a 0600 file, never to stdout or a
// log, and clear it after use. Its bytes are the same for the same Plan.
func (p *Plan) Manifest() materialize.Sensitive {
	n := 512
	for _, k := range p.Keys {
		n += len(k.Name) + base64.StdEncoding.EncodedLen(len(k.Contents)) + 8
	}
	for k, v := range p.Labels {
		n += len(k) + len(v) + 16
	}
	for k, v := range p.Annotations {
		n += len(k) + len(v) + 16
	}
	// One allocation, sized up front, so that no partial copy of a secret is
	// left behind by a growing buffer.
	b := make([]byte, 0, n)
	b = append(b, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: "...)
	b = strconv.AppendQuote(b, p.Name)
	if p.Namespace != "" {
		b = append(b, "\n  namespace: "...)
		b = strconv.AppendQuote(b, p.Namespace)
	}
	b = appendMap(b, "labels", p.Labels)
	b = appendMap(b, "annotations", p.Annotations)
	b = append(b, "\ntype: Opaque\ndata:\n"...)
	for _, k := range p.Keys {
		b = append(b, "  "...)
		b = strconv.AppendQuote(b, k.Name)
		b = append(b, ": "...)
		b = base64.StdEncoding.AppendEncode(b, k.Contents)
		b = append(b, '\n')
	}
	return b
}

// appendMap appends a metadata map in key order, keys and values quoted
// (YAML double-quoted scalars take Go's quoting of printable ASCII).
func appendMap(b []byte, name string, m map[string]string) []byte {
	if len(m) == 0 {
		return b
	}
	b = append(b, "\n  "+name+":"...)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = append(b, "\n    "...)
		b = strconv.AppendQuoteToASCII(b, k)
		b = append(b, ": "...)
		b = strconv.AppendQuoteToASCII(b, m[k])
	}
	return b
}

// Key returns the Plan's key named name, or nil.
func (p *Plan) Key(name string) *Key {
	for i := range p.Keys {
		if p.Keys[i].Name == name {
			return &p.Keys[i]
		}
	}
	return nil
}
