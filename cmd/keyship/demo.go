package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/materialize/testca"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/conf"
)

func newDemoCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run keyship end to end on a throwaway CA: no server, no network",
		Long: `demo makes a throwaway CA, a node keystore, a truststore and a CA bundle,
stores them with their passwords in a file-backend directory, writes a DC/OS
security.tls spec and a host config that loads the real file plugin
(keyship-backend-file, next to this binary, sha256-pinned) as a subprocess,
then ships the job into a sandbox directory and prints what it did.
The CA and passwords are for the demo only.`,
		Example: `  keyship demo
  keyship demo --dir /tmp/keyship-demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				var err error
				if dir, err = os.MkdirTemp("", "keyship-demo-"); err != nil {
					return err
				}
			}
			return g.demo(cmd, dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the demo's secrets, config, spec and sandbox (default: a new temporary directory)")
	return cmd
}

// demoFiles are the demo's secrets, at the DC/OS paths of seed 000.
func demoSecrets() (map[string][]byte, error) {
	ca, err := testca.NewCA("keyship demo CA")
	if err != nil {
		return nil, err
	}
	node, err := ca.Issue("localhost", testca.WithDNS("localhost", "node1.example.com"))
	if err != nil {
		return nil, err
	}
	storePass, keyPass, trustPass := randomPassword(), randomPassword(), randomPassword()
	ks, err := keystore.JKSKeystore("node", node.Key, node.Chain, storePass, keyPass)
	if err != nil {
		return nil, err
	}
	ts, err := keystore.JKSTruststore(keystore.AliasCertificates(node.Chain[1:]), trustPass)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		"spark/keystore":             ks,
		"spark/keystore_password":    storePass,
		"spark/key_password":         keyPass,
		"spark/truststore":           ts,
		"spark/truststore_password":  trustPass,
		"spark/ca_bundle_truststore": bytes.Clone(ts),
	}, nil
}

// randomPassword returns 24 printable ASCII characters.
func randomPassword() []byte {
	raw := make([]byte, 12)
	_, _ = rand.Read(raw)
	return []byte(hex.EncodeToString(raw))
}

// demoSpec is seed 000's job, which the demo's secrets serve.
const demoSpec = spec.ExampleDCOS

func (g *globals) demo(cmd *cobra.Command, dir string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	pluginPath := filepath.Join(filepath.Dir(exe), "keyship-backend-file")
	pluginSum, err := sha256File(pluginPath)
	if err != nil {
		return fmt.Errorf("demo needs the file plugin next to keyship (run `make build`): %w", err)
	}
	secrets, err := demoSecrets()
	if err != nil {
		return err
	}
	root := filepath.Join(dir, "secrets")
	for name, data := range secrets {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return err
		}
		clear(data)
	}
	specPath := filepath.Join(dir, "job.json")
	if err := os.WriteFile(specPath, []byte(demoSpec), 0o600); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "keyship.yaml")
	cfgText := fmt.Sprintf(`# keyship demo host config: the file backend as a pinned plugin subprocess.
default_backend: file
plugin_dir: %s
backends:
  file:
    plugin: keyship-backend-file
    sha256: %s
    config:
      root: %s
`, filepath.Dir(pluginPath), pluginSum, root)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return err
	}
	sandboxDir := filepath.Join(dir, "sandbox")
	out := g.stdout
	fmt.Fprintf(out, "keyship demo in %s\n", dir)
	fmt.Fprintf(out, "  made a throwaway CA, a node keystore (localhost, node1.example.com) and a truststore\n")
	fmt.Fprintf(out, "  stored them and their passwords under %s (file backend)\n", root)
	fmt.Fprintf(out, "  wrote the job's DC/OS security.tls spec to %s\n", specPath)
	fmt.Fprintf(out, "  wrote the host config to %s (plugin %s, sha256 %s)\n\n", cfgPath, pluginPath, pluginSum[:12])
	fmt.Fprintf(out, "$ keyship ship --config %s --spec %s --sandbox %s\n", cfgPath, specPath, sandboxDir)
	g.configPath = cfgPath
	if err := g.ship(cmd.Context(), shipFlags{specPath: specPath, sandbox: sandboxDir, timeout: defaultShipTimeout}); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nCheck it with Java's keytool:\n  keytool -list -keystore %s -storepass \"$(cat %s)\"\n",
		conf.ShellQuote(filepath.Join(sandboxDir, "keystore.jks")), conf.ShellQuote(filepath.Join(sandboxDir, shipper.KeystorePasswordFile)))
	return nil
}

func sha256File(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}
