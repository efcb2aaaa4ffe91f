// Command keyship resolves the secret refs in a Spark or Flink job's TLS
// settings, builds and checks the keystores, and ships them to the job.
//
//	keyship demo                               # everything on a throwaway CA, no server
//	keyship ship --spec job.json --sandbox DIR # resolve, check, write the stores
//	keyship get /spark/keystore                # metadata and version of one ref
//	keyship plugins                            # the backends, their versions and sha256
package main

import (
	"fmt"
	"os"

	"github.com/keyship/keyship/plugin"
)

func main() {
	// keyship holds secrets and passwords in memory: no core file, no
	// ptrace by other processes of its user.
	if err := plugin.DisableCoreDumps(); err != nil {
		fmt.Fprintf(os.Stderr, "keyship: cannot disable core dumps: %v\n", err)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
