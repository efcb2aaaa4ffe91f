package plugin

import (
	"maps"

	"google.golang.org/grpc/codes"

	backendv1 "github.com/keyship/keyship/proto/keyship/backend/v1"
)

// The converters below are the only place where domain types meet the
// generated wire types. They are pure: no I/O, no logging, nil-safe.

func refToProto(r Ref) *backendv1.Ref {
	return &backendv1.Ref{Path: r.Path, Field: r.Field, Version: r.Version}
}

func refFromProto(p *backendv1.Ref) Ref {
	if p == nil {
		return Ref{}
	}
	return Ref{Path: p.GetPath(), Field: p.GetField(), Version: p.GetVersion()}
}

func refsToProto(refs []Ref) []*backendv1.Ref {
	out := make([]*backendv1.Ref, len(refs))
	for i, r := range refs {
		out[i] = refToProto(r)
	}
	return out
}

func refsFromProto(ps []*backendv1.Ref) []Ref {
	out := make([]Ref, len(ps))
	for i, p := range ps {
		out[i] = refFromProto(p)
	}
	return out
}

func resultToProto(r Result) *backendv1.Result {
	if r.Err != nil {
		return &backendv1.Result{Outcome: &backendv1.Result_Error{Error: &backendv1.Error{
			Code:    int32(codeOf(r.Err)),
			Message: r.Err.Error(),
		}}}
	}
	return &backendv1.Result{Outcome: &backendv1.Result_Secret{Secret: &backendv1.Secret{
		Data:     r.Secret.Data,
		Version:  r.Secret.Version,
		Metadata: maps.Clone(r.Secret.Metadata),
	}}}
}

// resultFromProto converts one wire result. A nil or empty result (neither
// secret nor error) is a protocol violation and becomes an error.
func resultFromProto(p *backendv1.Result) Result {
	switch o := p.GetOutcome().(type) {
	case *backendv1.Result_Secret:
		if o.Secret == nil {
			return Result{Err: errorFromCode(codes.Unknown, "backend returned an empty secret result")}
		}
		return Result{Secret: Secret{
			Data:     o.Secret.GetData(),
			Version:  o.Secret.GetVersion(),
			Metadata: maps.Clone(o.Secret.GetMetadata()),
		}}
	case *backendv1.Result_Error:
		code := codes.Code(o.Error.GetCode())
		if code == codes.OK {
			code = codes.Unknown
		}
		return Result{Err: errorFromCode(code, o.Error.GetMessage())}
	default:
		return Result{Err: errorFromCode(codes.Unknown, "backend returned a result with neither secret nor error")}
	}
}

func infoToProto(i Info) *backendv1.InfoResponse {
	return &backendv1.InfoResponse{
		Name:             i.Name,
		Version:          i.Version,
		ProtocolVersions: append([]uint32(nil), i.ProtocolVersions...),
		Capabilities:     append([]string(nil), i.Capabilities...),
	}
}

func infoFromProto(p *backendv1.InfoResponse) Info {
	if p == nil {
		return Info{}
	}
	return Info{
		Name:             p.GetName(),
		Version:          p.GetVersion(),
		ProtocolVersions: append([]uint32(nil), p.GetProtocolVersions()...),
		Capabilities:     append([]string(nil), p.GetCapabilities()...),
	}
}
