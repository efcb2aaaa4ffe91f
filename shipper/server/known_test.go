package server

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/keyship/keyship/host/spec"
)

// TestRequestDigestCoversEveryInput: a request that differs in any input of
// readRequest or jobKey has another digest, one that differs elsewhere
// (where the files go, the targets, the TTL) has the same; moving bytes
// from one field to the next changes it; and Request and spec.Task have
// no field the digest has not been decided for.
func TestRequestDigestCoversEveryInput(t *testing.T) {
	base := func() Request {
		return Request{JobID: "job", Spec: []byte(`{"security":{}}`), Dialect: "dcos", Consumer: "spark",
			SparkVersion: "3.5", FlinkVersion: "1.20", Dir: "tls", Targets: []Target{TargetMesos}, FetchUses: 2, TTL: time.Minute,
			Kubernetes: KubernetesRequest{Namespace: "ns", Secret: "s", MountPath: "/m", Operator: "", Persist: true, PEM: false},
			Tasks:      []spec.Task{{ID: "exec-1", Role: "executor", Hosts: []string{"a", "b"}}}}
	}
	d0 := requestDigest(base())
	read := map[string]func(*Request){
		"JobID":          func(r *Request) { r.JobID = "job2" },
		"Spec":           func(r *Request) { r.Spec = []byte(`{"security": {}}`) },
		"Dialect":        func(r *Request) { r.Dialect = "spark" },
		"Consumer":       func(r *Request) { r.Consumer = "flink" },
		"SparkVersion":   func(r *Request) { r.SparkVersion = "3.4" },
		"FlinkVersion":   func(r *Request) { r.FlinkVersion = "1.19" },
		"Kubernetes.PEM": func(r *Request) { r.Kubernetes.PEM = true },
		"Tasks":          func(r *Request) { r.Tasks = append(r.Tasks, spec.Task{ID: "exec-2", Role: "executor"}) },
		"Task.ID":        func(r *Request) { r.Tasks[0].ID = "exec-9" },
		"Task.Role":      func(r *Request) { r.Tasks[0].Role = "driver" },
		"Task.Hosts":     func(r *Request) { r.Tasks[0].Hosts = []string{"a"} },
		"Task.Hosts[1]":  func(r *Request) { r.Tasks[0].Hosts[1] = "c" },
		"moved bytes":    func(r *Request) { r.JobID, r.Spec = "jo", append([]byte("b"), r.Spec...) },
	}
	for name, change := range read {
		r := base()
		change(&r)
		if requestDigest(r) == d0 {
			t.Errorf("%s changed, the digest did not", name)
		}
	}
	notRead := map[string]func(*Request){
		"Dir":       func(r *Request) { r.Dir = "other" },
		"Targets":   func(r *Request) { r.Targets = []Target{TargetFetch} },
		"FetchUses": func(r *Request) { r.FetchUses = 3 },
		"TTL":       func(r *Request) { r.TTL = time.Hour },
		"Kubernetes": func(r *Request) {
			r.Kubernetes = KubernetesRequest{Namespace: "x", Secret: "y", MountPath: "/z", Operator: "spark", Persist: false}
		},
	}
	for name, change := range notRead {
		r := base()
		change(&r)
		if requestDigest(r) != d0 {
			t.Errorf("%s changed the digest: it is not an input of the parse or the job key", name)
		}
	}
	// Every field is in one of the two lists (or Tasks, covered by
	// spec.Task's): a new field must be sorted into one.
	var fields []string
	for f := range reflect.TypeFor[Request]().Fields() {
		fields = append(fields, f.Name)
	}
	want := []string{"JobID", "Spec", "Dialect", "Consumer", "SparkVersion", "FlinkVersion", "Dir", "Tasks", "Targets", "FetchUses", "TTL", "Kubernetes"}
	if !slices.Equal(fields, want) {
		t.Errorf("Request's fields are %v, requestDigest was written for %v: decide whether the parse or jobKey reads the new ones", fields, want)
	}
	var taskFields []string
	for f := range reflect.TypeFor[spec.Task]().Fields() {
		taskFields = append(taskFields, f.Name)
	}
	if !slices.Equal(taskFields, []string{"ID", "Role", "Hosts"}) {
		t.Errorf("spec.Task's fields are %v, requestDigest hashes ID, Role and Hosts", taskFields)
	}
	var kubeFields []string
	for f := range reflect.TypeFor[KubernetesRequest]().Fields() {
		kubeFields = append(kubeFields, f.Name)
	}
	if !slices.Equal(kubeFields, []string{"Namespace", "Secret", "MountPath", "Operator", "Persist", "PEM"}) {
		t.Errorf("KubernetesRequest's fields are %v, requestDigest hashes PEM alone (jobKey's)", kubeFields)
	}
}
