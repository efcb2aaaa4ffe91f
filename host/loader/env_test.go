package loader_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/keyship/keyship/plugin/launch"
)

// TestPluginGetsAMinimalEnvironment reads the environment of a running
// plugin from /proc: the base variables and the listed pass-through ones,
// and none of the host's credentials.
func TestPluginGetsAMinimalEnvironment(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "canary-vault-token")
	t.Setenv("DCOS_ACS_TOKEN", "canary-acs-token")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "canary-aws-key")
	t.Setenv("VAULT_ADDR", "https://vault.example.com:8200")
	t.Setenv("MYSTORE_REGION", "eu-1")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("LC_TIME", "C")
	t.Setenv("TMPDIR", t.TempDir())
	t.Setenv("KEYSHIP_PLUGIN_LOG_LEVEL", "")
	logger := hclog.New(&hclog.LoggerOptions{Output: &strings.Builder{}, Level: hclog.Debug})
	s, err := launch.Start(context.Background(), "file", pluginBin, "", logger, launch.WithEnv("VAULT_ADDR", "MYSTORE_*"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", s.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for kv := range strings.SplitSeq(strings.TrimRight(string(data), "\x00"), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, want := range map[string]string{
		"PATH": os.Getenv("PATH"), "TMPDIR": os.Getenv("TMPDIR"), "LANG": "C.UTF-8", "LC_TIME": "C",
		"VAULT_ADDR": "https://vault.example.com:8200", "MYSTORE_REGION": "eu-1",
		"KEYSHIP_PLUGIN_LOG_LEVEL": "debug", // the host logger's level
	} {
		if env[k] != want {
			t.Errorf("plugin env %s = %q, want %q", k, env[k], want)
		}
	}
	for k, v := range env {
		if strings.Contains(v, "canary") {
			t.Errorf("the plugin got the host's %s", k)
		}
		known := strings.HasPrefix(k, "PLUGIN_") || strings.HasPrefix(k, "LC_") || k == "KEYSHIP_BACKEND_PLUGIN"
		switch k {
		case "PATH", "TMPDIR", "LANG", "LANGUAGE", "VAULT_ADDR", "MYSTORE_REGION", "KEYSHIP_PLUGIN_LOG_LEVEL":
			known = true
		}
		if !known {
			t.Errorf("the plugin got %s, which is neither base, passed through nor go-plugin's", k)
		}
	}
}

// TestPluginDisablesCoreDumps: a plugin (which holds secrets) runs with a
// core file size limit of 0, so a crash writes no core with them.
func TestPluginDisablesCoreDumps(t *testing.T) {
	logger := hclog.New(&hclog.LoggerOptions{Output: &strings.Builder{}, Level: hclog.Debug})
	s, err := launch.Start(context.Background(), "file", pluginBin, "", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", s.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(limits), "\n") {
		if strings.HasPrefix(line, "Max core file size") {
			if f := strings.Fields(line); len(f) < 6 || f[4] != "0" || f[5] != "0" {
				t.Errorf("plugin: %q, want soft and hard limits 0", line)
			}
			return
		}
	}
	t.Fatalf("no core limit in the plugin's /proc/PID/limits:\n%s", limits)
}
