// Command keyship resolves the secret refs in a Spark or Flink job's TLS
// settings, builds and checks the keystores, and ships them to the job.
//
//	keyship demo                               # everything on a throwaway CA, no server
//	keyship ship --spec job.json --sandbox DIR # resolve, check, write the stores
//	keyship get /spark/keystore                # metadata and version of one ref
//	keyship plugins                            # the backends, their versions and sha256
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
