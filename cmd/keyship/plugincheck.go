package main

import (
	"github.com/spf13/cobra"

	"github.com/keyship/keyship/plugin/plugintest"
)

// newPluginCmd is `keyship plugin`, the commands for plugin authors.
func newPluginCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Commands for backend plugin authors",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "test PATH",
		Short: "Run the conformance kit against a backend plugin binary, in any language",
		Long: `plugin test starts the plugin binary at PATH as keyship starts a backend
(handshake, private socket, peer checks, minimal environment) and runs the
conformance kit against it, printing each check; a failed check names the
section of proto/keyship/backend/v1/PROTOCOL.md whose rule it broke. No Go
toolchain is needed.

--config names the kit file (YAML): the plugin's valid config and bad
configs, its env list, the ref of a fixture, and shell commands that put a
fixture into the store (put, data on stdin), and that make a ref unreadable
(deny) or the store unreachable and back (unavailable, restore): the denied
and unavailable checks run only when the plugin's kit file gives them.
${KEYSHIP_KIT_DIR} is a fresh directory for the run. Without --config the
store is a directory: config {root: ${KEYSHIP_KIT_DIR}/store}, each fixture a
file under it.`,
		Example: `  keyship plugin test ./bin/keyship-backend-file
  keyship plugin test ./keyship-backend-pyfile --config kit.yaml

  # kit.yaml
  config: {root: "${KEYSHIP_KIT_DIR}/store"}
  bad_configs: [{}, {root: "${KEYSHIP_KIT_DIR}/missing"}]
  put: mkdir -p "store$(dirname "$KEYSHIP_KIT_PATH")" && cat > "store$KEYSHIP_KIT_PATH"
  unavailable: mv store away
  restore: mv away store`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var kf plugintest.KitFile
			if cmd.Flag("config").Changed { // not $KEYSHIP_CONFIG: that is a host config
				var err error
				if kf, err = plugintest.ReadKitFile(g.configPath); err != nil {
					return usageError{err}
				}
			}
			// Exits the process: 0 when every check passed, else 1.
			return plugintest.RunPlugin(args[0], kf, g.logger)
		},
	})
	return cmd
}
