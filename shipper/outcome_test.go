package shipper_test

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/shipper"
)

// TestOutcomesOneTable: every kind gives its row wrapped or not; a row's
// code read back on the receiving side is the same kind (but Internal,
// which is any fault); a spec problem is the request's; nil is OK and an
// error of no kind Internal.
func TestOutcomesOneTable(t *testing.T) {
	for _, o := range shipper.Outcomes {
		got := shipper.OutcomeOf(fmt.Errorf("/spark/keystore: %w", o.Kind))
		if got != o {
			t.Errorf("%v: %+v, want %+v", o.Kind, got, o)
		}
		if o.Exit != 1 || o.Metric == "" || o.Code == codes.OK {
			t.Errorf("%v: row %+v", o.Kind, o)
		}
		back := shipper.OutcomeOf(status.Error(o.Code, "msg"))
		if back.Code != o.Code {
			t.Errorf("%v over the wire: code %s, want %s", o.Kind, back.Code, o.Code)
		}
		if k := shipper.KindOf(o.Code); !o.OneWay && k == nil {
			t.Errorf("%s: no kind on the receiving side", o.Code)
		}
	}
	if o := shipper.OutcomeOf(nil); o.Code != codes.OK || o.Exit != 0 || o.Metric != "ok" {
		t.Errorf("nil: %+v", o)
	}
	if o := shipper.OutcomeOf(errors.New("boom")); o.Code != codes.Internal || o.Metric != "error" {
		t.Errorf("no kind: %+v", o)
	}
	fe := &spec.FieldError{Field: "security.tls.keystore_secret", Reason: "required"}
	if o := shipper.OutcomeOf(fmt.Errorf("spec: %w", fe)); o.Kind != shipper.ErrInvalidRequest {
		t.Errorf("a spec problem: %+v", o)
	}
	if shipper.KindOf(codes.Internal) == plugin.ErrPluginExited {
		t.Error("Internal on the wire reads as a dead plugin")
	}
	// A dead plugin that also reports unavailable is a dead plugin.
	if o := shipper.OutcomeOf(fmt.Errorf("%w: %w", plugin.ErrPluginExited, plugin.ErrUnavailable)); o.Metric != "plugin_exited" {
		t.Errorf("dead plugin: %+v", o)
	}
}
