// Command keyship-backend-vault serves the HashiCorp Vault backend as a
// keyship plugin. The keyship host starts it; it is not meant to be run by hand.
package main

import (
	"github.com/keyship/keyship/backends/vault"
	"github.com/keyship/keyship/plugin"
)

func main() { plugin.Serve(vault.New) }
