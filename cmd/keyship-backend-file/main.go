// Command keyship-backend-file serves the file backend as a keyship plugin.
// The keyship host starts it; it is not meant to be run by hand.
package main

import (
	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/plugin"
)

func main() { plugin.Serve(file.New) }
