package vault_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
)

// TestEnvFallbackThroughPassThrough: run as a plugin, the backend sees the
// host's VAULT_* variables only when the backend's config passes them
// through (env: ["VAULT_*"]); then the documented fallbacks work as before.
// Configure does not contact Vault, so no server is needed.
func TestEnvFallbackThroughPassThrough(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "env-token")
	t.Setenv("VAULT_ADDR", "https://vault.example.com:8200")
	for _, c := range []struct {
		env []string
		ok  bool
	}{{nil, false}, {[]string{"VAULT_*"}, true}, {[]string{"VAULT_TOKEN"}, true}} {
		sub, err := launch.Start(context.Background(), "vault", pluginBin, "", nil, launch.WithEnv(c.env...))
		if err != nil {
			t.Fatal(err)
		}
		err = sub.Configure(context.Background(), map[string]string{}) // auth.token falls back to VAULT_TOKEN
		_ = sub.Close()
		switch {
		case c.ok && err != nil:
			t.Errorf("env %v: Configure without auth.token: %v (VAULT_TOKEN did not reach the plugin)", c.env, err)
		case !c.ok && (!errors.Is(err, plugin.ErrInvalidConfig) || !strings.Contains(err.Error(), "auth.method token needs")):
			t.Errorf("env %v: Configure: %v; want the missing-token error (the plugin saw VAULT_TOKEN without a pass-through)", c.env, err)
		}
	}
}
