// Command vault is HashiCorp Vault's own CLI and server, built at the version
// pinned in this module's go.mod so that keyship's tests can run a real
// `vault server -dev`. It is a test tool only; build it with build.sh.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
