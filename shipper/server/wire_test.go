package server

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/conf"
	"github.com/keyship/keyship/shipper/fetch"
)

// TestRequestRoundTrip: a Request survives the wire unchanged, the zero
// Request included, and a nil or empty ShipRequest reads as the zero one.
func TestRequestRoundTrip(t *testing.T) {
	for name, r := range map[string]Request{
		"zero": {},
		"full": {
			JobID: "job-1", Spec: []byte("{}"), Dialect: spec.DialectFlink, Consumer: conf.ConsumerFlink,
			SparkVersion: "2.2", FlinkVersion: "1.18", Dir: "/sandbox",
			Tasks:     []spec.Task{{ID: "t1", Role: "executor", Hosts: []string{"h1"}}},
			Targets:   []Target{TargetSandbox, TargetMesosTaskInfo, TargetKubernetesManifest},
			FetchUses: 3, TTL: time.Minute,
			Kubernetes: KubernetesRequest{Namespace: "ns", Secret: "s", MountPath: "/m", Operator: "flink-operator", Persist: true, PEM: true},
		},
	} {
		got, err := requestFromProto(requestToProto(r))
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("%s: round trip %+v (%v), want %+v", name, got, err, r)
		}
	}
	for _, req := range []*hostv1.ShipRequest{nil, {}} {
		if got, err := requestFromProto(req); err != nil || !reflect.DeepEqual(got, Request{}) {
			t.Errorf("requestFromProto(%v) = %+v, %v; want the zero Request", req, got, err)
		}
	}
}

// TestRequestFromProtoRefusesUnknownEnums: an enum value this server does
// not know is the request's fault, named, not a silent default.
func TestRequestFromProtoRefusesUnknownEnums(t *testing.T) {
	for field, req := range map[string]*hostv1.ShipRequest{
		"dialect":             {Dialect: 99},
		"consumer":            {Consumer: 99},
		"kubernetes_operator": {KubernetesOperator: 99},
	} {
		_, err := requestFromProto(req)
		if err == nil || !errors.Is(err, plugin.ErrUnsupported) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s 99: error %v, want one naming the field", field, err)
		}
	}
}

// TestDeliveryRoundTrip: what the CLI reads back from the wire is the
// delivery the server made: files relative to the request's dir with
// their bytes and expiry, settings without passwords, what ship prints,
// the fragment, the fetch URIs and the Secret.
func TestDeliveryRoundTrip(t *testing.T) {
	notAfter := time.Unix(1_900_000_000, 0)
	d := &shipper.Delivery{
		JobID: "job-1", Consumer: conf.ConsumerSpark, Dir: "/sb", SettingsDir: "/sb", Contents: true,
		Files:    []materialize.File{{Path: "keystore.jks", Mode: 0o600, Version: "v1", Role: materialize.RoleKeystore, Contents: []byte("ks")}},
		NotAfter: map[string]time.Time{"keystore.jks": notAfter},
		Warnings: []string{"w"},
		Settings: []conf.Setting{{Key: "a", Value: "b"}, {Key: "pw", Password: []byte("secret")}},
		Printed:  "# printed\n", Fragment: []byte("{}"), FragmentFile: "",
		Tasks:  []shipper.TaskDelivery{{TaskID: "t1", URIs: []fetch.URI{{Value: "https://x/t", OutputFile: ".keyship/keystore.jks"}}}},
		Secret: &shipper.Secret{Namespace: "ns", Name: "s", MountPath: "/m", ResourceVersion: "7", Keys: []string{"keystore.jks"}, Versions: map[string]string{"keystore.jks": "v1"}, DeleteAt: notAfter},
	}
	resp := deliveryToProto(d, notAfter)
	got := deliveryFromProto(resp, "/sb")
	if got.Files[0].Path != "keystore.jks" || string(got.Files[0].Contents) != "ks" || got.Files[0].Mode != 0o600 || got.Files[0].Version != "v1" || got.Files[0].Role != materialize.RoleKeystore {
		t.Errorf("file %+v", got.Files[0])
	}
	if !got.NotAfter["keystore.jks"].Equal(notAfter) || !got.Contents {
		t.Errorf("not after %v, contents %t", got.NotAfter, got.Contents)
	}
	if len(got.Settings) != 1 || got.Settings[0].Key != "a" {
		t.Errorf("settings %+v: want the one without a password", got.Settings)
	}
	if got.Printed != d.Printed || string(got.Fragment) != "{}" || got.Consumer != conf.ConsumerSpark || got.JobID != "job-1" {
		t.Errorf("delivery %+v", got)
	}
	if len(got.Tasks) != 1 || !reflect.DeepEqual(got.Tasks[0].URIs, d.Tasks[0].URIs) {
		t.Errorf("tasks %+v", got.Tasks)
	}
	if s := got.Secret; s == nil || s.Name != "s" || s.Versions["keystore.jks"] != "v1" || !s.DeleteAt.Equal(notAfter) || s.ResourceVersion != "7" {
		t.Errorf("secret %+v", got.Secret)
	}
	// Metadata only: no bytes on the wire without a target that asks.
	d.Contents = false
	if c := deliveryToProto(d, notAfter).GetFiles()[0].GetContents(); c != nil {
		t.Errorf("contents %q without TARGET_FILES or TARGET_SANDBOX", c)
	}
}

// TestDeliveryZero: the zero and empty forms convert without a panic and
// without inventing anything.
func TestDeliveryZero(t *testing.T) {
	resp := deliveryToProto(&shipper.Delivery{}, time.Time{})
	if !proto.Equal(resp, &hostv1.ShipResponse{Files: []*hostv1.File{}}) && len(resp.GetFiles()) != 0 {
		t.Errorf("zero delivery: %v", resp)
	}
	if resp.GetExpiresUnix() != 0 || resp.GetKubernetes() != nil || resp.GetTasks() != nil {
		t.Errorf("zero delivery: %v", resp)
	}
	for _, r := range []*hostv1.ShipResponse{nil, {}} {
		d := deliveryFromProto(r, "")
		if d.Dir != shipper.TaskDir || d.Files != nil || d.Fragment != nil || d.Secret != nil || d.Contents {
			t.Errorf("deliveryFromProto(%v) = %+v", r, d)
		}
	}
	if vols, env := mesosToProto(nil); vols != nil || env != nil {
		t.Errorf("mesosToProto(nil) = %v, %v", vols, env)
	}
	if p := problemsToProto(nil); len(p) != 0 {
		t.Errorf("problemsToProto(nil) = %v", p)
	}
}

// TestErrorFromProto: a status becomes the server's message wrapping the
// kind its code stands for; nil and non-status errors pass unchanged.
func TestErrorFromProto(t *testing.T) {
	if errorFromProto(nil) != nil {
		t.Error("nil became an error")
	}
	plain := errors.New("dial: refused")
	if errorFromProto(plain) != plain {
		t.Error("a non-status error changed")
	}
	for code, kind := range map[codes.Code]error{
		codes.NotFound: plugin.ErrNotFound, codes.InvalidArgument: shipper.ErrInvalidRequest,
		codes.ResourceExhausted: shipper.ErrLimit, codes.Unavailable: plugin.ErrUnavailable,
	} {
		err := errorFromProto(status.Error(code, "security.tls.keystore_secret (/x): not found"))
		if err.Error() != "security.tls.keystore_secret (/x): not found" || !errors.Is(err, kind) {
			t.Errorf("%s: %q, is %v: %t", code, err, kind, errors.Is(err, kind))
		}
	}
	if err := errorFromProto(status.Error(codes.Internal, "boom")); errors.Is(err, plugin.ErrPluginExited) {
		t.Error("any Internal became a dead plugin")
	}
}
