package host

import (
	"context"
	"fmt"

	"github.com/keyship/keyship/host/resolve"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// Versions tells the current version of each ref of fields without keeping
// a secret (see resolve.Resolver.Versions): a watch compares them with the
// versions of its last build to see whether anything changed. Backends that
// keep version metadata (plugin.CapabilityVersions) read no secret data for
// it.
func (h *Host) Versions(ctx context.Context, fields []spec.Field) map[spec.Ref]resolve.Version {
	return h.resolver.Versions(ctx, fields)
}

// Versions passes the backend's plugin.Versioner through the observer: a
// version check reads no secret, so it is no read to report. A backend
// without it answers ErrUnsupported, and plugin.VersionsOf then reads with
// Get, which the observer sees.
func (o observedBackend) Versions(ctx context.Context, refs []plugin.Ref) ([]plugin.VersionResult, error) {
	if v, ok := o.Backend.(plugin.Versioner); ok {
		return v.Versions(ctx, refs)
	}
	return nil, fmt.Errorf("versions: %w", plugin.ErrUnsupported)
}
