// Command keyship-backend-dcos serves the DC/OS backend as a keyship plugin.
// The keyship host starts it; it is not meant to be run by hand.
package main

import (
	"github.com/keyship/keyship/backends/dcos"
	"github.com/keyship/keyship/plugin"
)

func main() { plugin.Serve(dcos.New) }
