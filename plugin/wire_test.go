package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	backendv1 "github.com/keyship/keyship/proto/keyship/backend/v1"
)

func TestProtocolVersionMatchesProtoPackage(t *testing.T) {
	pkg := string(backendv1.File_keyship_backend_v1_backend_proto.Package())
	if want := fmt.Sprintf("keyship.backend.v%d", ProtocolVersion); pkg != want {
		t.Fatalf("proto package %q does not match ProtocolVersion %d (want %q)", pkg, ProtocolVersion, want)
	}
	if Handshake.ProtocolVersion != ProtocolVersion {
		t.Fatalf("go-plugin handshake version %d != ProtocolVersion %d", Handshake.ProtocolVersion, ProtocolVersion)
	}
	// The proto names the version: its enum's highest value is the current one.
	values := backendv1.ProtocolVersion(0).Descriptor().Values()
	newest := values.Get(values.Len() - 1)
	if int(newest.Number()) != ProtocolVersion || string(newest.Name()) != fmt.Sprintf("PROTOCOL_VERSION_%d", ProtocolVersion) {
		t.Fatalf("backend.proto's newest ProtocolVersion is %s = %d, want PROTOCOL_VERSION_%d", newest.Name(), newest.Number(), ProtocolVersion)
	}
}

func TestRefConverters(t *testing.T) {
	cases := []Ref{{}, {Path: "/spark/keystore"}, {Path: "secret/x", Field: "f", Version: "3"}, {Path: "ünï/\x01"}}
	for _, r := range cases {
		if got := refFromProto(refToProto(r)); got != r {
			t.Errorf("round trip %#v -> %#v", r, got)
		}
	}
	if got := refFromProto(nil); got != (Ref{}) {
		t.Errorf("refFromProto(nil) = %#v", got)
	}
	if got := refsFromProto(nil); len(got) != 0 {
		t.Errorf("refsFromProto(nil) = %v", got)
	}
	if got := refsFromProto([]*backendv1.Ref{nil}); len(got) != 1 || got[0] != (Ref{}) {
		t.Errorf("refsFromProto([nil]) = %v", got)
	}
}

func TestRefString(t *testing.T) {
	for r, want := range map[Ref]string{
		{Path: "/a"}:                           "/a",
		{Path: "a", Field: "f"}:                "a#f",
		{Path: "a", Version: "2"}:              "a@2",
		{Path: "a", Field: "f", Version: "v1"}: "a#f@v1",
	} {
		if got := r.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", r, got, want)
		}
	}
}

func TestResultConverters(t *testing.T) {
	sec := Result{Secret: Secret{Data: []byte{0, 1, 0xFF}, Version: "v", Metadata: map[string]string{"k": "v"}}}
	got := resultFromProto(resultToProto(sec))
	if got.Err != nil || !bytes.Equal(got.Secret.Data, sec.Secret.Data) || got.Secret.Version != "v" || got.Secret.Metadata["k"] != "v" {
		t.Errorf("secret round trip: %+v", got)
	}
	zero := resultFromProto(resultToProto(Result{}))
	if zero.Err != nil || len(zero.Secret.Data) != 0 {
		t.Errorf("zero secret round trip: %+v", zero)
	}
	for _, sentinel := range []error{ErrNotFound, ErrPermissionDenied, ErrInvalidConfig, ErrUnavailable, ErrUnsupported} {
		in := fmt.Errorf("backend: ref /x: %w", sentinel)
		out := resultFromProto(resultToProto(Result{Err: in}))
		if !errors.Is(out.Err, sentinel) || out.Err.Error() != in.Error() {
			t.Errorf("error round trip of %v: got %v (Is=%v)", in, out.Err, errors.Is(out.Err, sentinel))
		}
	}
	plain := resultFromProto(resultToProto(Result{Err: errors.New("boom")}))
	if plain.Err == nil || plain.Err.Error() != "boom" {
		t.Errorf("plain error: %v", plain.Err)
	}
	// garbage: nil, empty oneof, nil secret, error with code OK
	for i, p := range []*backendv1.Result{
		nil,
		{},
		{Outcome: &backendv1.Result_Secret{}},
		{Outcome: &backendv1.Result_Error{}},
		{Outcome: &backendv1.Result_Error{Error: &spb.Status{Code: 0, Message: "said ok"}}},
		{Outcome: &backendv1.Result_Error{Error: &spb.Status{Code: 999}}},
	} {
		if r := resultFromProto(p); r.Err == nil {
			t.Errorf("garbage result %d converted without error: %+v", i, r)
		}
	}
}

func TestInfoConverters(t *testing.T) {
	in := Info{Name: "n", Version: "1", ProtocolVersions: []uint32{1}, Capabilities: []string{"list"}}
	out := infoFromProto(infoToProto(in))
	if out.Name != in.Name || out.Version != in.Version || len(out.ProtocolVersions) != 1 || out.Capabilities[0] != "list" {
		t.Errorf("info round trip: %+v", out)
	}
	if got := infoFromProto(nil); got.Name != "" || got.ProtocolVersions != nil {
		t.Errorf("infoFromProto(nil) = %+v", got)
	}
	if got := infoFromProto(infoToProto(Info{})); got.Name != "" || len(got.Capabilities) != 0 {
		t.Errorf("zero info round trip: %+v", got)
	}
}

func TestStatusMapping(t *testing.T) {
	cases := []struct {
		err      error
		code     codes.Code
		sentinel error
	}{
		{fmt.Errorf("a: %w", ErrNotFound), codes.NotFound, ErrNotFound},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", ErrPermissionDenied)), codes.PermissionDenied, ErrPermissionDenied},
		{ErrInvalidConfig, codes.InvalidArgument, ErrInvalidConfig},
		{ErrUnavailable, codes.Unavailable, ErrUnavailable},
		{ErrUnsupported, codes.Unimplemented, ErrUnsupported},
		{context.Canceled, codes.Canceled, context.Canceled},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded, context.DeadlineExceeded},
		{errors.New("other"), codes.Unknown, nil},
	}
	for _, c := range cases {
		if got := Code(c.err); got != c.code {
			t.Errorf("Code(%v) = %v, want %v", c.err, got, c.code)
		}
		st := status.Convert(StatusError(c.err))
		if st.Code() != c.code || st.Message() != c.err.Error() {
			t.Errorf("StatusError(%v) = %v %q, want %v", c.err, st.Code(), st.Message(), c.code)
		}
		back := ErrorFromStatus(StatusError(c.err))
		if c.sentinel != nil && !errors.Is(back, c.sentinel) {
			t.Errorf("ErrorFromStatus(StatusError(%v)) = %v does not wrap its sentinel", c.err, back)
		}
		if Code(back) != c.code {
			t.Errorf("an error that crossed the wire changed code: %v, want %v", Code(back), c.code)
		}
		// The per-result google.rpc.Status uses the same table.
		res := resultFromProto(resultToProto(Result{Err: c.err}))
		if pc := resultToProto(Result{Err: c.err}).GetError().GetCode(); codes.Code(pc) != c.code {
			t.Errorf("Result.error code for %v = %v, want %v", c.err, codes.Code(pc), c.code)
		}
		if c.sentinel != nil && !errors.Is(res.Err, c.sentinel) {
			t.Errorf("Result.error for %v came back as %v, without its sentinel", c.err, res.Err)
		}
	}
	if StatusError(nil) != nil || ErrorFromStatus(nil) != nil || Code(nil) != codes.OK {
		t.Error("nil must map to nil and OK")
	}
	pre := status.Error(codes.NotFound, "already a status")
	if got := StatusError(pre); got != pre {
		t.Errorf("status error not passed through: %v", got)
	}
	if Code(pre) != codes.NotFound || Code(status.Error(codes.ResourceExhausted, "x")) != codes.ResourceExhausted {
		t.Error("Code of a status error is not its own code")
	}
	if got := ErrorFromStatus(errors.New("not a status")); got.Error() != "not a status" || strings.Contains(got.Error(), "rpc error") {
		t.Errorf("non-status error changed: %v", got)
	}
	// A dead plugin has a code for the host API, but nothing a plugin sends
	// reads back as "the plugin exited".
	exited := fmt.Errorf("backend x: %w", ErrPluginExited)
	if Code(exited) != codes.Internal {
		t.Errorf("Code(ErrPluginExited) = %v, want Internal", Code(exited))
	}
	if errors.Is(ErrorFromStatus(status.Error(codes.Internal, "boom")), ErrPluginExited) {
		t.Error("an Internal status from a plugin reads as ErrPluginExited")
	}
}

func TestIssueConverters(t *testing.T) {
	in := IssueRequest{Path: "pki/issue/r", CommonName: "cn", DNSNames: []string{"a"}, IPAddresses: []string{"::1"}, TTL: 90 * time.Second}
	out := issueRequestFromProto(issueRequestToProto(in))
	if out.Path != in.Path || out.CommonName != "cn" || out.DNSNames[0] != "a" || out.IPAddresses[0] != "::1" || out.TTL != in.TTL {
		t.Errorf("issue request round trip: %+v", out)
	}
	if got := issueRequestFromProto(nil); got.Path != "" || got.TTL != 0 {
		t.Errorf("nil request: %+v", got)
	}
	is := Issued{PrivateKey: []byte{1}, Chain: [][]byte{{2}, {3}}, CACertificates: [][]byte{{4}}, Version: "7"}
	back := issuedFromProto(issuedToProto(is))
	if !bytes.Equal(back.PrivateKey, is.PrivateKey) || len(back.Chain) != 2 || back.Chain[1][0] != 3 || back.CACertificates[0][0] != 4 || back.Version != "7" {
		t.Errorf("issued round trip: %+v", back)
	}
	if got := issuedFromProto(nil); got.PrivateKey != nil || got.Chain != nil {
		t.Errorf("nil issued: %+v", got)
	}
}
