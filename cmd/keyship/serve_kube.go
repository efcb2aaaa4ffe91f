package main

import (
	"github.com/spf13/pflag"

	"github.com/keyship/keyship/shipper/kube"
	"github.com/keyship/keyship/shipper/server"
)

// serveKubeFlags turn on TARGET_KUBERNETES.
type serveKubeFlags struct {
	enabled    bool
	kubeconfig string
}

func addServeKubeFlags(fl *pflag.FlagSet, k *serveKubeFlags) {
	fl.BoolVar(&k.enabled, "kubernetes", false, "serve TARGET_KUBERNETES: apply jobs' Secrets with $KUBECONFIG, ~/.kube/config or the pod's service account (needs a Role for secrets: get, create, patch, delete)")
	fl.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig for TARGET_KUBERNETES (implies --kubernetes)")
}

// options are the server options of the flags: none when TARGET_KUBERNETES
// is off.
func (k serveKubeFlags) options() ([]server.Option, error) {
	if !k.enabled && k.kubeconfig == "" {
		return nil, nil
	}
	c, err := kube.NewClient(k.kubeconfig)
	if err != nil {
		return nil, err
	}
	return []server.Option{server.WithKubernetes(c)}, nil
}
