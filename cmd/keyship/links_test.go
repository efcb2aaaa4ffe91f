package main_test

import (
	"os/exec"
	"strings"
	"testing"
)

// heavyInit are packages whose package init every keyship command would
// pay, `keyship --version` and a cold `keyship ship` included (issue 23):
// client-go's clientset registers every API group of k8s.io/api, its
// leader election links the clientset and its informers. keyship speaks to
// the API server through client-go's REST client instead
// (shipper/kube, shipper/server/replicas/kubernetes).
var heavyInit = []string{
	"k8s.io/client-go/kubernetes",
	"k8s.io/client-go/kubernetes/scheme",
	"k8s.io/client-go/informers",
	"k8s.io/client-go/tools/leaderelection",
	"k8s.io/client-go/applyconfigurations/meta/v1",
	"k8s.io/api/core/v1",
	"k8s.io/api/apps/v1",
}

// deps lists the packages pkg links as make build builds it.
func deps(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-tags", "grpcnotrace", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	m := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		m[p] = true
	}
	return m
}

// goPluginHost are the packages go-plugin links for a host's sake, which a
// plugin does not need: plugin.Serve speaks go-plugin's protocol without
// them (issue 23). net/rpc links html/template, whose reflection keeps
// every exported method in the binary the pin's sha256 reads at each start.
var goPluginHost = []string{
	"github.com/hashicorp/go-plugin", "github.com/hashicorp/yamux", "net/rpc", "encoding/gob",
	"html/template", "text/template", "google.golang.org/grpc/reflection", "debug/elf",
}

// TestKeyshipLinksNoClientset: keyship links none of heavyInit, yet still
// the REST client it speaks Kubernetes with (so the check can fail); the
// plugin binaries link neither, nor the CLI, the host or the server, nor
// go-plugin (goPluginHost), which keyship itself does link.
func TestKeyshipLinksNoClientset(t *testing.T) {
	d := deps(t, "github.com/keyship/keyship/cmd/keyship")
	if !d["k8s.io/client-go/rest"] || !d["github.com/keyship/keyship/shipper/server/replicas/kubernetes"] {
		t.Fatal("keyship no longer links client-go's REST client or the Kubernetes replicas: the check below proves nothing")
	}
	for _, p := range heavyInit {
		if d[p] {
			t.Errorf("keyship links %s", p)
		}
	}
	if !d["github.com/hashicorp/go-plugin"] || !d["net/rpc"] {
		t.Fatal("keyship no longer links go-plugin: the plugins' check below proves nothing")
	}
	notInPlugins := append([]string{"github.com/spf13/cobra", "github.com/keyship/keyship/host",
		"github.com/keyship/keyship/shipper", "github.com/keyship/keyship/shipper/server", "k8s.io/client-go/rest",
		"github.com/prometheus/client_golang/prometheus", "connectrpc.com/connect"}, append(heavyInit, goPluginHost...)...)
	for _, name := range []string{"file", "vault", "dcos"} {
		pkg := "github.com/keyship/keyship/cmd/keyship-backend-" + name
		d := deps(t, pkg)
		for _, p := range notInPlugins {
			if d[p] {
				t.Errorf("%s links %s", pkg, p)
			}
		}
	}
}
