package plugin

import (
	"maps"
	"time"

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
		return &backendv1.Result{Outcome: &backendv1.Result_Error{Error: statusToProto(r.Err)}}
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
		return Result{Err: statusFromProto(o.Error)}
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

func issueRequestToProto(r IssueRequest) *backendv1.IssueRequest {
	return &backendv1.IssueRequest{
		Path:        r.Path,
		CommonName:  r.CommonName,
		DnsNames:    append([]string(nil), r.DNSNames...),
		IpAddresses: append([]string(nil), r.IPAddresses...),
		TtlSeconds:  int64(r.TTL / time.Second),
	}
}

func issueRequestFromProto(p *backendv1.IssueRequest) IssueRequest {
	if p == nil {
		return IssueRequest{}
	}
	return IssueRequest{
		Path:        p.GetPath(),
		CommonName:  p.GetCommonName(),
		DNSNames:    append([]string(nil), p.GetDnsNames()...),
		IPAddresses: append([]string(nil), p.GetIpAddresses()...),
		TTL:         time.Duration(p.GetTtlSeconds()) * time.Second,
	}
}

func issuedToProto(i Issued) *backendv1.IssueResponse {
	return &backendv1.IssueResponse{
		PrivateKey:     i.PrivateKey,
		Chain:          i.Chain,
		CaCertificates: i.CACertificates,
		Version:        i.Version,
	}
}

func issuedFromProto(p *backendv1.IssueResponse) Issued {
	if p == nil {
		return Issued{}
	}
	return Issued{
		PrivateKey:     p.GetPrivateKey(),
		Chain:          p.GetChain(),
		CACertificates: p.GetCaCertificates(),
		Version:        p.GetVersion(),
	}
}
