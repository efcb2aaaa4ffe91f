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
	var kitPath string
	test := &cobra.Command{
		Use:   "test PATH [--kit FILE]",
		Short: "Run the conformance kit against a backend plugin binary, in any language",
		Long: `plugin test starts the plugin binary at PATH as keyship starts a backend
(handshake, private socket, peer checks, minimal environment) and runs the
conformance kit against it, printing each check; a failed check names the
section of proto/keyship/backend/v1/PROTOCOL.md whose rule it broke. No Go
toolchain is needed.

--kit names the kit file (YAML; unknown keys are errors):
  config:       the plugin's valid config (a map of strings)
  bad_configs:  configs Configure must refuse with INVALID_ARGUMENT; at least
                one whenever config: is set
  env:          host variables the plugin may see (names, NAME_* patterns)
  ref:          the path of a fixture's ref, with {name} where the fixture's
                name goes: /kit/{name} (the default), secret/data/kit/{name};
                the path only, as the plugin gets it in Ref.path: no
                backend: prefix, no #field, no @version, no ".." segment
  text:         true when the store keeps printable text only
  put:          shell command that writes the fixture on its stdin at the ref
                $KEYSHIP_KIT_PATH, creating or replacing it
  deny:         shell command that makes the ref $KEYSHIP_KIT_PATH unreadable
                for the plugin (the PERMISSION_DENIED check; optional). The
                plugin runs as the kit's user: as root, chmod 000 denies
                nothing
  unavailable:, restore:
                shell commands that make the store unreachable and bring it
                back (the UNAVAILABLE check; optional, both or neither)
Commands run with sh -c in ${KEYSHIP_KIT_DIR}, a fresh directory for the run
with an empty store/ in it, with KEYSHIP_KIT_DIR, KEYSHIP_KIT_PATH and
KEYSHIP_KIT_FIELD in their environment. Without --kit the store is a
directory: config {root: ${KEYSHIP_KIT_DIR}/store}, bad configs {} and a
root that does not exist, each fixture a file under store/. A mistake in the
kit file itself is reported before any check runs (exit 2).

--kit is not the global --config (a host config, which plugin test does not
read).`,
		Example: `  keyship plugin test ./bin/keyship-backend-file
  keyship plugin test ./keyship-backend-pyfile --kit kit.yaml

  # kit.yaml
  config: {root: "${KEYSHIP_KIT_DIR}/store"}
  bad_configs: [{}, {root: "${KEYSHIP_KIT_DIR}/missing"}]
  put: mkdir -p "store$(dirname "$KEYSHIP_KIT_PATH")" && cat > "store$KEYSHIP_KIT_PATH"
  unavailable: mv store away
  restore: mv away store`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var kf plugintest.KitFile
			if kitPath != "" {
				var err error
				if kf, err = plugintest.ReadKitFile(kitPath); err != nil {
					return usageError{err}
				}
			}
			// Exits the process: 0 when every check passed, else 1.
			return plugintest.RunPlugin(args[0], kf, g.logger)
		},
	}
	test.Flags().StringVar(&kitPath, "kit", "", "kit file (YAML): how to configure the plugin and put fixtures into its store")
	cmd.AddCommand(test)
	return cmd
}
