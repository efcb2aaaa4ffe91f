package server

// The host API's wire seam: every conversion between the generated hostv1
// types and the domain's (Request, shipper.Delivery, errors) is here, as
// pure functions; the server and the Go client use them and nothing else
// touches a generated type's fields.

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"strings"
	"time"

	"google.golang.org/grpc/status"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/conf"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/kube"
	"github.com/keyship/keyship/shipper/mesos"
	"github.com/keyship/keyship/shipper/watch"
)

// Target names a target of a Ship (hostv1.Target on the wire).
type Target int

// The targets, numbered as hostv1.Target.
const (
	TargetFetch              = Target(hostv1.Target_TARGET_FETCH)
	TargetMesos              = Target(hostv1.Target_TARGET_MESOS)
	TargetFiles              = Target(hostv1.Target_TARGET_FILES)
	TargetKubernetes         = Target(hostv1.Target_TARGET_KUBERNETES)
	TargetSandbox            = Target(hostv1.Target_TARGET_SANDBOX)
	TargetMesosTaskInfo      = Target(hostv1.Target_TARGET_MESOS_TASKINFO)
	TargetMarathonApp        = Target(hostv1.Target_TARGET_MARATHON_APP)
	TargetKubernetesManifest = Target(hostv1.Target_TARGET_KUBERNETES_MANIFEST)
)

// String is the target's wire name, e.g. "TARGET_MESOS".
func (t Target) String() string { return hostv1.Target(t).String() }

// Request is one Ship in the domain's terms; see hostv1.ShipRequest for
// each field's constraints.
type Request struct {
	JobID string
	Spec  []byte
	// Dialect is host/spec's name ("" detects); Consumer conf's ("" the
	// dialect's).
	Dialect, Consumer string
	// SparkVersion and FlinkVersion are releases as "MAJOR.MINOR[.PATCH]".
	SparkVersion, FlinkVersion string
	// Dir is where the caller puts the files ("" is shipper.TaskDir).
	Dir     string
	Tasks   []spec.Task
	Targets []Target
	// FetchUses is how many times each fetch URI may be used (0: once).
	FetchUses int
	// TTL is how long the bundle lives (0: the server's default).
	TTL        time.Duration
	Kubernetes KubernetesRequest
}

// KubernetesRequest is what TARGET_KUBERNETES and TARGET_KUBERNETES_MANIFEST
// take.
type KubernetesRequest struct {
	Namespace, Secret, MountPath string
	// Operator is "", kube.OperatorSpark or kube.OperatorFlink.
	Operator string
	// Persist keeps the Secret after the TTL; PEM adds the PEM files.
	Persist, PEM bool
}

// dialects maps the API's dialects to host/spec's.
var dialects = map[hostv1.Dialect]string{
	hostv1.Dialect_DIALECT_UNSPECIFIED: "",
	hostv1.Dialect_DIALECT_DCOS:        spec.DialectDCOS,
	hostv1.Dialect_DIALECT_SPARK:       spec.DialectSpark,
	hostv1.Dialect_DIALECT_FLINK:       spec.DialectFlink,
	hostv1.Dialect_DIALECT_LIBPROCESS:  spec.DialectLibprocess,
}

// consumers maps the API's consumers to conf's.
var consumers = map[hostv1.Consumer]string{
	hostv1.Consumer_CONSUMER_UNSPECIFIED: "",
	hostv1.Consumer_CONSUMER_SPARK:       conf.ConsumerSpark,
	hostv1.Consumer_CONSUMER_FLINK:       conf.ConsumerFlink,
	hostv1.Consumer_CONSUMER_LIBPROCESS:  conf.ConsumerLibprocess,
}

// operators maps the API's Kubernetes operators to kube's.
var operators = map[hostv1.KubernetesOperator]string{
	hostv1.KubernetesOperator_KUBERNETES_OPERATOR_UNSPECIFIED: "",
	hostv1.KubernetesOperator_KUBERNETES_OPERATOR_SPARK:       kube.OperatorSpark,
	hostv1.KubernetesOperator_KUBERNETES_OPERATOR_FLINK:       kube.OperatorFlink,
}

// keyOf returns the key of m whose value is v, and whether there is one.
func keyOf[K comparable](m map[K]string, v string) (K, bool) {
	for k, x := range m {
		if x == v {
			return k, true
		}
	}
	var zero K
	return zero, false
}

// DialectOf returns the API dialect of a host/spec dialect name ("" is
// DIALECT_UNSPECIFIED: detect).
func DialectOf(name string) hostv1.Dialect {
	d, _ := keyOf(dialects, name)
	return d
}

// requestToProto is r on the wire.
func requestToProto(r Request) *hostv1.ShipRequest {
	out := &hostv1.ShipRequest{
		JobId: r.JobID, Spec: r.Spec, Dialect: DialectOf(r.Dialect),
		FetchUses: uint32(r.FetchUses), TtlSeconds: int64(r.TTL / time.Second),
		SparkVersion: r.SparkVersion, FlinkVersion: r.FlinkVersion, Dir: r.Dir,
		KubernetesNamespace: r.Kubernetes.Namespace, KubernetesSecret: r.Kubernetes.Secret,
		KubernetesMountPath: r.Kubernetes.MountPath, KubernetesPersist: r.Kubernetes.Persist,
		KubernetesPem: r.Kubernetes.PEM,
	}
	out.Consumer, _ = keyOf(consumers, r.Consumer)
	out.KubernetesOperator, _ = keyOf(operators, r.Kubernetes.Operator)
	for _, t := range r.Tasks {
		out.Tasks = append(out.Tasks, &hostv1.Task{Id: t.ID, Role: t.Role, Hosts: t.Hosts})
	}
	for _, t := range r.Targets {
		out.Targets = append(out.Targets, hostv1.Target(t))
	}
	return out
}

// requestFromProto is the domain's Request of req; an enum value this
// server does not know is the caller's error (INVALID_ARGUMENT).
func requestFromProto(req *hostv1.ShipRequest) (Request, error) {
	r := Request{
		JobID: req.GetJobId(), Spec: req.GetSpec(), FetchUses: int(req.GetFetchUses()),
		SparkVersion: req.GetSparkVersion(), FlinkVersion: req.GetFlinkVersion(), Dir: req.GetDir(),
		Kubernetes: KubernetesRequest{Namespace: req.GetKubernetesNamespace(), Secret: req.GetKubernetesSecret(),
			MountPath: req.GetKubernetesMountPath(), Persist: req.GetKubernetesPersist(), PEM: req.GetKubernetesPem()},
	}
	if err := errors.Join(checkTTL(req.GetTtlSeconds()), checkTargets(req.GetTargets())); err != nil {
		return r, err
	}
	r.TTL = time.Duration(req.GetTtlSeconds()) * time.Second
	var ok bool
	var errs []string
	if r.Dialect, ok = dialects[req.GetDialect()]; !ok {
		errs = append(errs, fmt.Sprintf("dialect %s", req.GetDialect()))
	}
	if r.Consumer, ok = consumers[req.GetConsumer()]; !ok {
		errs = append(errs, fmt.Sprintf("consumer %s", req.GetConsumer()))
	}
	if r.Kubernetes.Operator, ok = operators[req.GetKubernetesOperator()]; !ok {
		errs = append(errs, fmt.Sprintf("kubernetes_operator %s", req.GetKubernetesOperator()))
	}
	if len(errs) > 0 {
		return r, fmt.Errorf("%s: %w", strings.Join(errs, ", "), plugin.ErrUnsupported)
	}
	if n := len(req.GetTasks()); n > 0 {
		r.Tasks = make([]spec.Task, n)
		for i, t := range req.GetTasks() {
			r.Tasks[i] = spec.Task{ID: t.GetId(), Role: t.GetRole(), Hosts: t.GetHosts()}
		}
	}
	for _, t := range req.GetTargets() {
		r.Targets = append(r.Targets, Target(t))
	}
	return r, nil
}

// deliveryToProto is d as the API's response; bytes are shared with d.
func deliveryToProto(d *shipper.Delivery, expires time.Time) *hostv1.ShipResponse {
	resp := &hostv1.ShipResponse{JobId: d.JobID, Warnings: d.Warnings, ExpiresUnix: expires.Unix(),
		Printed: d.Printed, Fragment: d.Fragment, FragmentFile: d.FragmentFile}
	resp.Consumer, _ = keyOf(consumers, d.Consumer)
	if !expires.IsZero() {
		resp.ExpiresUnix = expires.Unix()
	} else {
		resp.ExpiresUnix = 0
	}
	resp.Files = make([]*hostv1.File, len(d.Files))
	for i, f := range d.Files {
		pf := &hostv1.File{Path: path.Join(d.Dir, f.Path), Mode: uint32(f.Mode), Version: f.Version, Role: string(f.Role)}
		if t, ok := d.NotAfter[f.Path]; ok {
			pf.NotAfterUnix = t.Unix()
		}
		if d.Contents {
			pf.Contents = f.Contents
		}
		resp.Files[i] = pf
	}
	vols, env := mesosToProto(d.Mesos)
	if len(d.Tasks) > 0 {
		tasks := make([]hostv1.TaskShipment, len(d.Tasks))
		resp.Tasks = make([]*hostv1.TaskShipment, len(d.Tasks))
		for i, t := range d.Tasks {
			ts := &tasks[i]
			ts.TaskId, ts.Volumes, ts.Env = t.TaskID, vols, env
			for _, u := range t.URIs {
				ts.Uris = append(ts.Uris, &hostv1.FetchURI{Value: u.Value, OutputFile: u.OutputFile})
			}
			resp.Tasks[i] = ts
		}
	}
	for _, st := range d.Settings {
		if st.Password == nil {
			resp.Settings = append(resp.Settings, &hostv1.Setting{Key: st.Key, Value: st.Value})
		}
	}
	if s := d.Secret; s != nil {
		ks := &hostv1.KubernetesSecret{Namespace: s.Namespace, Name: s.Name, MountPath: s.MountPath,
			ResourceVersion: s.ResourceVersion, Keys: s.Keys, Versions: s.Versions}
		if !s.DeleteAt.IsZero() {
			ks.DeleteUnix = s.DeleteAt.Unix()
		}
		resp.Kubernetes = ks
	}
	return resp
}

// mesosToProto is plan's secret volumes (one per file) and secret
// environment variables (the passwords): a REFERENCE where DC/OS holds
// exactly the bytes, a VALUE where keyship built them. A nil plan has none.
func mesosToProto(plan *mesos.Plan) ([]*hostv1.SecretVolume, []*hostv1.SecretEnv) {
	if plan == nil {
		return nil, nil
	}
	var vols []*hostv1.SecretVolume
	var env []*hostv1.SecretEnv
	for _, it := range plan.Items {
		sec := &hostv1.Secret{}
		if ms := it.Secret(); ms.Reference != nil {
			sec.Source = &hostv1.Secret_Reference{Reference: &hostv1.SecretReference{Name: ms.Reference.Name, Key: ms.Reference.Key}}
		} else {
			sec.Source = &hostv1.Secret_Value{Value: ms.Value.Data}
		}
		if it.Env != "" {
			env = append(env, &hostv1.SecretEnv{Name: it.Env, Secret: sec})
		} else {
			vols = append(vols, &hostv1.SecretVolume{ContainerPath: it.Path, Secret: sec})
		}
	}
	return vols, env
}

// deliveryFromProto is the domain's Delivery of resp, for a caller that
// asked for dir: file paths become relative to it. The Mesos secrets stay
// on the wire (they are the TaskInfo's, in the TaskInfo's terms).
func deliveryFromProto(resp *hostv1.ShipResponse, dir string) *shipper.Delivery {
	if dir == "" {
		dir = shipper.TaskDir
	}
	d := &shipper.Delivery{JobID: resp.GetJobId(), Consumer: consumers[resp.GetConsumer()], Dir: dir,
		Warnings: resp.GetWarnings(), Printed: resp.GetPrinted(), Fragment: resp.GetFragment(), FragmentFile: resp.GetFragmentFile()}
	if len(d.Fragment) == 0 {
		d.Fragment = nil
	}
	for _, f := range resp.GetFiles() {
		name := strings.TrimPrefix(f.GetPath(), dir+"/")
		d.Files = append(d.Files, materialize.File{Path: name, Role: materialize.Role(f.GetRole()), Mode: fs.FileMode(f.GetMode()), Contents: f.GetContents(), Version: f.GetVersion()})
		if f.GetContents() != nil {
			d.Contents = true
			d.Own(f.GetContents())
		}
		if t := f.GetNotAfterUnix(); t > 0 {
			if d.NotAfter == nil {
				d.NotAfter = map[string]time.Time{}
			}
			d.NotAfter[name] = time.Unix(t, 0)
		}
	}
	for _, st := range resp.GetSettings() {
		d.Settings = append(d.Settings, conf.Setting{Key: st.GetKey(), Value: st.GetValue()})
	}
	for _, t := range resp.GetTasks() {
		td := shipper.TaskDelivery{TaskID: t.GetTaskId()}
		for _, u := range t.GetUris() {
			td.URIs = append(td.URIs, fetch.URI{Value: u.GetValue(), OutputFile: u.GetOutputFile()})
		}
		d.Tasks = append(d.Tasks, td)
	}
	if k := resp.GetKubernetes(); k != nil {
		d.Secret = &shipper.Secret{Namespace: k.GetNamespace(), Name: k.GetName(), MountPath: k.GetMountPath(),
			ResourceVersion: k.GetResourceVersion(), Keys: k.GetKeys(), Versions: maps.Clone(k.GetVersions())}
		if t := k.GetDeleteUnix(); t > 0 {
			d.Secret.DeleteAt = time.Unix(t, 0)
		}
	}
	return d
}

// watchReasons maps the API's watch reasons to the watch package's.
var watchReasons = map[hostv1.WatchReason]watch.Reason{
	hostv1.WatchReason_WATCH_REASON_INITIAL: watch.Initial,
	hostv1.WatchReason_WATCH_REASON_CHANGED: watch.Changed,
	hostv1.WatchReason_WATCH_REASON_RENEWED: watch.Renewed,
}

// watchSetFromProto is the domain's WatchSet of resp, for a caller that
// asked for dir (see deliveryFromProto). A reason this client does not know
// reads as watch.Changed: a new set all the same.
func watchSetFromProto(resp *hostv1.WatchResponse, dir string) *WatchSet {
	ws := &WatchSet{Delivery: deliveryFromProto(resp.GetShipment(), dir), Reason: watch.Changed,
		Changes: resp.GetChanges()}
	if r, ok := watchReasons[resp.GetReason()]; ok {
		ws.Reason = r
	}
	if t := resp.GetRenewAtUnix(); t > 0 {
		ws.RenewAt = time.Unix(t, 0)
	}
	return ws
}

// errorFromProto is the domain's error of a failed call: the server's
// message, wrapping the kind of its code (shipper.KindOf); an error that is
// not a status (the connection's) passes unchanged.
func errorFromProto(err error) error {
	st, ok := status.FromError(err)
	if !ok || err == nil {
		return err
	}
	return &wireError{msg: st.Message(), kind: shipper.KindOf(st.Code())}
}

// wireError is an error that came over the wire: the server's message, and
// the kind its code stands for.
type wireError struct {
	msg  string
	kind error
}

func (e *wireError) Error() string { return e.msg }
func (e *wireError) Unwrap() error { return e.kind }

// problemsToProto is the API's form of failed checks.
func problemsToProto(in []shipper.Problem) []*hostv1.Problem {
	out := make([]*hostv1.Problem, len(in))
	for i, p := range in {
		out[i] = &hostv1.Problem{Field: p.Field, Ref: p.Ref, Reason: p.Reason}
	}
	return out
}
