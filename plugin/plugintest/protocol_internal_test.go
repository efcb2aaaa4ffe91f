package plugintest

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/keyship/keyship/plugin"
)

// TestProtocolPageMatchesTheCode: PROTOCOL.md, the protocol for authors in
// other languages, states the values keyship uses, and has a section for
// every anchor the kit and the launcher's errors point at.
func TestProtocolPageMatchesTheCode(t *testing.T) {
	data, err := os.ReadFile("../../" + ProtocolPage)
	if err != nil {
		t.Fatal(err)
	}
	page := string(data)
	for _, want := range []string{
		"`" + plugin.Handshake.MagicCookieKey + "`",
		"`" + plugin.Handshake.MagicCookieValue + "`",
		"`PLUGIN_PROTOCOL_VERSIONS`",
		fmt.Sprintf("PROTOCOL_VERSION_%d", plugin.ProtocolVersion),
		fmt.Sprintf("1|%d|unix|", plugin.ProtocolVersion),
		"`PLUGIN_UNIX_SOCKET_DIR`",
		fmt.Sprintf("`%q`", goplugin.GRPCServiceName),
		"`grpc.health.v1.Health/Check`",
		"`plugin.GRPCController/Shutdown`",
		"`" + plugin.LogLevelEnv + "`",
		fmt.Sprintf("%d MiB", plugin.MaxMessageSize>>20),
		"SO_PEERCRED",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("%s does not say %s", ProtocolPage, want)
		}
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (.+)$`).FindAllStringSubmatch(page, -1) {
		a := strings.ToLower(m[1])
		a = regexp.MustCompile(`[^a-z0-9 -]`).ReplaceAllString(a, "")
		anchors[strings.ReplaceAll(a, " ", "-")] = true
	}
	// The launcher's errors point at handshake, socket and peers.
	want := []string{"handshake", "socket", "peers", "environment", "logging", "core-dumps", "scripts-zipapps-and-the-pin", "health", "controller"}
	for _, s := range sections {
		want = append(want, s)
	}
	for _, a := range want {
		if !anchors[a] {
			t.Errorf("%s has no section #%s", ProtocolPage, a)
		}
	}
}
