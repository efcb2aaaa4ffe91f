package metrics_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/shipper/server/metrics"
)

// TestSecretReadOutcomes maps each backend error kind to its outcome label
// (a plugin's dead process before its ErrUnavailable) and checks that an
// error's message, which may name a ref, never becomes a label.
func TestSecretReadOutcomes(t *testing.T) {
	m := metrics.New()
	for _, err := range []error{
		nil, nil,
		fmt.Errorf("/spark/x: %w", plugin.ErrNotFound),
		plugin.ErrPermissionDenied,
		plugin.ErrUnavailable,
		fmt.Errorf("backend file: %w: %w", plugin.ErrPluginExited, plugin.ErrUnavailable),
		plugin.ErrInvalidConfig,
		plugin.ErrUnsupported,
		fmt.Errorf("password canary-1234 rejected"),
	} {
		m.SecretRead("file", err)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for outcome, n := range map[string]int{"ok": 2, "not_found": 1, "permission_denied": 1, "unavailable": 1, "plugin_exited": 1, "invalid_config": 1, "unsupported": 1, "error": 1} {
		line := fmt.Sprintf("keyship_backend_reads_total{backend=\"file\",outcome=%q} %d\n", outcome, n)
		if !strings.Contains(text, line) {
			t.Errorf("missing %q", line)
		}
	}
	if strings.Contains(text, "canary-1234") {
		t.Error("an error message became a label")
	}
}
