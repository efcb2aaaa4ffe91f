package plugin

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"

	backendv1 "github.com/keyship/keyship/proto/keyship/backend/v1"
)

// Versioner is the optional interface of a backend that can tell a ref's
// current version without reading its data (Vault KV v2 keeps version
// metadata beside the data). A host that watches a job's refs asks it at
// every refresh, so a refresh that finds nothing changed reads no secret.
// A backend that implements it declares CapabilityVersions.
type Versioner interface {
	// Versions returns exactly len(refs) results, in order. Each Version is
	// the Secret.Version a Get of the same ref would return now, and each
	// Err the error that Get would give (wrapping ErrNotFound, ...). A ref
	// whose version can only be known by reading it (a store without
	// versions) gets an Err wrapping ErrUnsupported: the caller then reads
	// it with Get. A non-nil error means the whole batch failed.
	Versions(ctx context.Context, refs []Ref) ([]VersionResult, error)
}

// CapabilityVersions is the capability of a backend that implements
// Versioner from version metadata, without reading secret data.
const CapabilityVersions = "versions"

// VersionResult is the outcome for one ref of a Versions batch: Version, or
// Err.
type VersionResult struct {
	Version string
	Err     error
}

// VersionsOf returns the current version of each ref of b: through b's
// Versions when it implements Versioner, and through Get for the refs it
// cannot tell (ErrUnsupported, per ref or for the whole batch) and for
// backends without it. The data a Get reads is zeroed before VersionsOf
// returns; only versions and errors leave it. The plugin SDK answers the
// Versions rpc with it, and a host uses it for any backend, so that an old
// plugin without the rpc costs a Get, never a failure.
func VersionsOf(ctx context.Context, b Backend, refs []Ref) ([]VersionResult, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	out := make([]VersionResult, len(refs))
	var read []int // indexes of the refs to Get
	if v, ok := b.(Versioner); ok {
		res, err := v.Versions(ctx, refs)
		switch {
		case errors.Is(err, ErrUnsupported):
			read = allIndexes(len(refs))
		case err != nil:
			return nil, err
		case len(res) != len(refs):
			return nil, fmt.Errorf("versions: backend returned %d results for %d refs", len(res), len(refs))
		default:
			copy(out, res)
			for i, r := range res {
				if errors.Is(r.Err, ErrUnsupported) {
					read = append(read, i)
				}
			}
		}
	} else {
		read = allIndexes(len(refs))
	}
	if len(read) == 0 {
		return out, nil
	}
	batch := make([]Ref, len(read))
	for j, i := range read {
		batch[j] = refs[i]
	}
	res, err := b.Get(ctx, batch)
	if err != nil {
		return nil, err
	}
	if len(res) != len(batch) {
		return nil, fmt.Errorf("versions: backend's Get returned %d results for %d refs", len(res), len(batch))
	}
	for j, i := range read {
		clear(res[j].Secret.Data)
		out[i] = VersionResult{Version: res[j].Secret.Version, Err: res[j].Err}
	}
	return out, nil
}

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// Versions answers the Versions rpc with VersionsOf: a backend without
// Versioner costs a Get inside the plugin, and no secret data crosses the
// wire.
func (s *grpcServer) Versions(ctx context.Context, req *backendv1.VersionsRequest) (*backendv1.VersionsResponse, error) {
	if len(req.GetRefs()) == 0 {
		return nil, fmt.Errorf("versions: no refs in request: %w", ErrInvalidConfig)
	}
	results, err := VersionsOf(ctx, s.impl, refsFromProto(req.GetRefs()))
	if err != nil {
		return nil, err
	}
	out := &backendv1.VersionsResponse{Results: make([]*backendv1.VersionResult, len(results))}
	for i, r := range results {
		out.Results[i] = versionResultToProto(r)
	}
	return out, nil
}

// Versions implements Versioner over the wire. A plugin built before the
// rpc existed answers UNIMPLEMENTED, which comes back as ErrUnsupported:
// VersionsOf then reads with Get.
func (c *grpcClient) Versions(ctx context.Context, refs []Ref) ([]VersionResult, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	resp, err := c.c.Versions(ctx, &backendv1.VersionsRequest{Refs: refsToProto(refs)})
	if err != nil {
		return nil, err
	}
	if len(resp.GetResults()) != len(refs) {
		return nil, fmt.Errorf("versions: backend returned %d results for %d refs", len(resp.GetResults()), len(refs))
	}
	out := make([]VersionResult, len(refs))
	for i, r := range resp.GetResults() {
		out[i] = versionResultFromProto(r)
	}
	return out, nil
}

func versionResultToProto(r VersionResult) *backendv1.VersionResult {
	if r.Err != nil {
		return &backendv1.VersionResult{Outcome: &backendv1.VersionResult_Error{Error: statusToProto(r.Err)}}
	}
	return &backendv1.VersionResult{Outcome: &backendv1.VersionResult_Version{Version: r.Version}}
}

// versionResultFromProto converts one wire result. A nil or empty result
// (neither version nor error) is a protocol violation and becomes an error;
// an empty version passes as it is (a Get without a version: the host cannot
// tell a change and rebuilds).
func versionResultFromProto(p *backendv1.VersionResult) VersionResult {
	switch o := p.GetOutcome().(type) {
	case *backendv1.VersionResult_Version:
		return VersionResult{Version: o.Version}
	case *backendv1.VersionResult_Error:
		return VersionResult{Err: statusFromProto(o.Error)}
	default:
		return VersionResult{Err: errorFromCode(codes.Unknown, "backend returned a version result with neither version nor error")}
	}
}
