package host

import (
	"context"

	"github.com/keyship/keyship/host/resolve"
	"github.com/keyship/keyship/host/spec"
)

// Versions tells the current version of each ref of fields without keeping
// a secret (see resolve.Resolver.Versions): a watch compares them with the
// versions of its last build to see whether anything changed. Backends that
// keep version metadata (plugin.CapabilityVersions) read no secret data for
// it.
func (h *Host) Versions(ctx context.Context, fields []spec.Field) map[spec.Ref]resolve.Version {
	return h.resolver.Versions(ctx, fields)
}
