package dcos_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
	"github.com/keyship/keyship/plugin/plugintest"
)

var pluginBin string // the real keyship-backend-dcos, built by TestMain

func TestMain(m *testing.M) {
	dir, cleanup := plugintest.Build("github.com/keyship/keyship/cmd/keyship-backend-dcos")
	pluginBin = filepath.Join(dir, "keyship-backend-dcos")
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// startPlugin starts keyship-backend-dcos through the host loader, its
// stderr folded into f's log.
func (f *fixture) startPlugin(t testing.TB) *launch.Subprocess {
	t.Helper()
	s, err := launch.Start(context.Background(), "dcos", pluginBin, "", f.logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformanceThroughSubprocess(t *testing.T) {
	f := newFixture(t)
	plugintest.Run(t, kitConfig(f, nil, func(t testing.TB) plugin.Backend { return f.startPlugin(t) }))
}

func TestSubprocessIssuesAndLogsNoCredentials(t *testing.T) {
	t.Setenv("KEYSHIP_PLUGIN_LOG_LEVEL", "trace")
	f := newFixture(t)
	f.srv.PutText("/spark/pw", "changeit")
	s := f.startPlugin(t)
	if err := s.Configure(context.Background(), f.cfg); err != nil {
		t.Fatal(err)
	}
	res, err := s.Get(context.Background(), []plugin.Ref{{Path: "/spark/pw"}})
	if err != nil || res[0].Err != nil || string(res[0].Secret.Data) != "changeit" {
		t.Fatalf("Get through the plugin: %v %v", err, res)
	}
	out, err := s.Issue(context.Background(), plugin.IssueRequest{Path: "ca", DNSNames: []string{"tm-7.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := issued(t, f.srv, out)
	if !slices.Equal(leaf.DNSNames, []string{"tm-7.example.com"}) {
		t.Errorf("DNS names %v", leaf.DNSNames)
	}
	_ = s.Close()
	// The plugin's stderr reaches f.logs through the loader's relay, which
	// may deliver its last lines after Close returns: wait for them.
	want := []string{"logged in to DC/OS", "DC/OS CA issued a certificate"}
	logs, ok := f.logs.WaitFor(time.Minute, want...)
	if !ok {
		t.Errorf("the plugin's log lacks one of %q within a minute:\n%s", want, logs)
	}
	for _, tok := range f.srv.IssuedTokens() {
		if strings.Contains(logs, tok) {
			t.Error("an auth token is in the plugin's log")
		}
	}
}
