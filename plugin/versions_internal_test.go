package plugin

import (
	"errors"
	"fmt"
	"testing"

	spb "google.golang.org/genproto/googleapis/rpc/status"

	backendv1 "github.com/keyship/keyship/proto/keyship/backend/v1"
)

func TestVersionResultConverters(t *testing.T) {
	for _, v := range []string{"secret/spark/tls@3", "h1:0123", ""} {
		got := versionResultFromProto(versionResultToProto(VersionResult{Version: v}))
		if got.Err != nil || got.Version != v {
			t.Errorf("round trip of version %q: %+v", v, got)
		}
	}
	for _, sentinel := range []error{ErrNotFound, ErrPermissionDenied, ErrInvalidConfig, ErrUnavailable, ErrUnsupported} {
		in := fmt.Errorf("backend: ref /x: %w", sentinel)
		out := versionResultFromProto(versionResultToProto(VersionResult{Err: in}))
		if !errors.Is(out.Err, sentinel) || out.Err.Error() != in.Error() || out.Version != "" {
			t.Errorf("error round trip of %v: got %+v", in, out)
		}
	}
	// garbage: nil, empty oneof, nil error, error with code OK
	for i, p := range []*backendv1.VersionResult{
		nil,
		{},
		{Outcome: &backendv1.VersionResult_Error{}},
		{Outcome: &backendv1.VersionResult_Error{Error: &spb.Status{Code: 0, Message: "said ok"}}},
	} {
		if r := versionResultFromProto(p); r.Err == nil {
			t.Errorf("garbage version result %d converted without error: %+v", i, r)
		}
	}
}
