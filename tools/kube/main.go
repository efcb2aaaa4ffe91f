// Command kube-apiserver is Kubernetes' own API server, built at the version
// pinned in this module's go.mod so that keyship's tests can apply Secrets to
// a real API server (schema validation, server-side apply, RBAC). It is a
// test tool only; build it with build.sh. The body is
// k8s.io/kubernetes/cmd/kube-apiserver/apiserver.go's, which cannot be
// imported because it is a main package.
package main

import (
	"os"
	_ "time/tzdata" // as upstream: time zone data for CronJob validation

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // the JSON log format, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric, as upstream
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
