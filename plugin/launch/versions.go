package launch

import (
	"context"

	"github.com/keyship/keyship/plugin"
)

// Versions implements plugin.Versioner: the plugin tells each ref's
// version, reading with Get inside the plugin what it cannot tell (see
// plugin.VersionsOf); a plugin built before the rpc answers ErrUnsupported.
// Versions reads nothing it keeps, so a call that dies with the plugin is
// retried once after a restart.
func (s *Subprocess) Versions(ctx context.Context, refs []plugin.Ref) ([]plugin.VersionResult, error) {
	return call(ctx, s, "Versions", func(b plugin.Backend) ([]plugin.VersionResult, error) {
		return b.(plugin.Versioner).Versions(ctx, refs)
	})
}
