package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/kube"
)

type kubeFlags struct {
	secret, namespace, kubeconfig, mountPath, operator string
	apply, pem                                         bool
}

func (k kubeFlags) any() bool {
	return k.secret != "" || k.namespace != "" || k.kubeconfig != "" || k.mountPath != "" || k.operator != "" || k.apply || k.pem
}

func addKubeFlags(cmd *cobra.Command, k *kubeFlags) {
	fl := cmd.Flags()
	fl.StringVar(&k.secret, "k8s-secret", "", "--emit kubernetes: the Secret's name (default: keyship- and the job id, DNS-1123)")
	fl.StringVar(&k.namespace, "k8s-namespace", "", "--emit kubernetes: the Secret's namespace (default: the kubeconfig context's)")
	fl.StringVar(&k.kubeconfig, "kubeconfig", "", "--k8s-apply: kubeconfig file (default $KUBECONFIG, ~/.kube/config, or in-cluster)")
	fl.StringVar(&k.mountPath, "k8s-mount-path", "", "--emit kubernetes: where the pods mount the Secret (default "+kube.DefaultMountPath+")")
	fl.StringVar(&k.operator, "k8s-operator", "", "--emit kubernetes: print a "+kube.OperatorSpark+" SparkApplication or "+kube.OperatorFlink+" FlinkDeployment fragment instead of the settings")
	fl.BoolVar(&k.apply, "k8s-apply", false, "--emit kubernetes: server-side-apply the Secret (field manager keyship)")
	fl.BoolVar(&k.pem, "k8s-pem", false, "--emit kubernetes: add key.pem, cert.pem and ca.pem to the Secret")
}

// secretWhere names a Secret as namespace/name, or name when the manifest
// leaves the namespace to kubectl.
func secretWhere(s *shipper.Secret) string {
	if s.Namespace != "" {
		return s.Namespace + "/" + s.Name
	}
	return s.Name
}

// printSecret says where the Secret's manifest is and which keys (and
// versions) it holds, never their bytes.
func (g *globals) printSecret(s *shipper.Secret, path string) {
	fmt.Fprintf(g.stdout, "# %s (0600) is Secret %s with the stores and passwords; never print it.\n", path, secretWhere(s))
	var keys []string
	for _, key := range s.Keys {
		if v := s.Versions[key]; v != "" {
			keys = append(keys, key+" (version "+v+")")
		} else {
			keys = append(keys, key)
		}
	}
	fmt.Fprintf(g.stdout, "# keys: %s\n", strings.Join(keys, ", "))
}
