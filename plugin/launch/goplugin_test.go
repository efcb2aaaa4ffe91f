package launch_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/keyship/keyship/backends/file"
	"github.com/keyship/keyship/plugin"
	"github.com/keyship/keyship/plugin/launch"
)

// TestServeSpeaksGoPluginsProtocol holds plugin.Serve, which speaks
// go-plugin's protocol without linking go-plugin, against go-plugin's own
// host (its Client, not keyship's launch): the real file plugin is started
// by go-plugin with and without AutoMTLS, dispensed, pinged through the
// health service, called, and asked to shut down through the controller,
// after which it exits on its own with status 0. go-plugin's host would
// log a warning for a plugin that breaks its protocol: none may appear.
func TestServeSpeaksGoPluginsProtocol(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "secret"), []byte("s3cret-bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mtls := range []bool{false, true} {
		t.Run(map[bool]string{false: "peer-credentials", true: "automtls"}[mtls], func(t *testing.T) {
			var logs strings.Builder
			cmd := exec.Command(pluginBin)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			client := goplugin.NewClient(&goplugin.ClientConfig{
				HandshakeConfig:  goplugin.HandshakeConfig(plugin.Handshake),
				Plugins:          goplugin.PluginSet{plugin.PluginName: &launch.GRPCPlugin{}},
				Cmd:              cmd,
				AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
				AutoMTLS:         mtls,
				Logger:           hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}),
			})
			t.Cleanup(client.Kill)
			rpc, err := client.Client()
			if err != nil {
				t.Fatalf("go-plugin's host cannot start the plugin: %v", err)
			}
			if err := rpc.Ping(); err != nil {
				t.Fatalf("health check: %v", err)
			}
			raw, err := rpc.Dispense(plugin.PluginName)
			if err != nil {
				t.Fatal(err)
			}
			b := raw.(plugin.Backend)
			ctx := context.Background()
			info, err := b.Info(ctx)
			if err != nil || info.Name != "file" {
				t.Fatalf("Info = %+v, %v; want the file backend", info, err)
			}
			if err := b.Configure(ctx, map[string]string{"root": root}); err != nil {
				t.Fatal(err)
			}
			res, err := b.Get(ctx, []plugin.Ref{{Path: "/secret"}})
			if err != nil || len(res) != 1 || res[0].Err != nil || string(res[0].Secret.Data) != "s3cret-bytes" {
				t.Fatalf("Get = %+v, %v; want the file's bytes", res, err)
			}
			pid := client.ReattachConfig().Pid
			// go-plugin's Kill asks the controller to shut down first and
			// kills only a plugin still running 2 s later.
			start := time.Now()
			client.Kill()
			if took := time.Since(start); took > 1500*time.Millisecond {
				t.Errorf("Kill took %s: the plugin did not shut down when asked", took)
			}
			if !cmd.ProcessState.Success() {
				t.Errorf("plugin (pid %d) after Shutdown: %v, want exit status 0", pid, cmd.ProcessState)
			}
			if logs.Len() > 0 {
				t.Errorf("go-plugin's host logged warnings:\n%s", logs.String())
			}
		})
	}
}

// TestServeRefusesAnotherProtocolVersion: a host that asks for a backend
// protocol the plugin does not speak gets an exit with a message naming
// both, before any handshake line.
func TestServeRefusesAnotherProtocolVersion(t *testing.T) {
	cmd := exec.Command(pluginBin)
	cmd.Env = []string{plugin.Handshake.MagicCookieKey + "=" + plugin.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=2,3", "PLUGIN_UNIX_SOCKET_DIR=" + t.TempDir()}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("run: %v, want exit status 1", err)
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout = %q, want no handshake line", stdout.String())
	}
	for _, want := range []string{"speaks backend protocol 1", `"2,3"`, "PLUGIN_PROTOCOL_VERSIONS"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr = %q, want it to name %s", stderr.String(), want)
		}
	}
}

// TestServeWithoutTheCookieExplains: a plugin run by hand says what it is.
func TestServeWithoutTheCookieExplains(t *testing.T) {
	cmd := exec.Command(pluginBin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("run: %v, want exit status 1", err)
	}
	for _, want := range []string{"keyship backend plugin", "not meant to be run by hand", plugin.Handshake.MagicCookieKey} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output = %q, want %q", out, want)
		}
	}
}

// TestServeTestModeReattaches: plugin.WithTestConfig serves a backend in
// the test's own process, and go-plugin's host attaches to it with a test
// ReattachConfig; the serving ends, and Closed is closed, when the
// context is done.
func TestServeTestModeReattaches(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "secret"), []byte("in-process bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrCh, closed := make(chan net.Addr, 1), make(chan struct{})
	go plugin.Serve(file.New, plugin.WithLogger(hclog.NewNullLogger()),
		plugin.WithTestConfig(&plugin.TestConfig{Context: ctx, Addr: addrCh, Closed: closed}))
	var addr net.Addr
	select {
	case addr = <-addrCh:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve in test mode gave no address")
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig(plugin.Handshake),
		Plugins:         goplugin.PluginSet{plugin.PluginName: &launch.GRPCPlugin{}},
		Reattach: &goplugin.ReattachConfig{Protocol: goplugin.ProtocolGRPC, ProtocolVersion: plugin.ProtocolVersion,
			Addr: addr, Pid: os.Getpid(), Test: true},
		Logger: hclog.NewNullLogger(),
	})
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("go-plugin's host cannot attach: %v", err)
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	b := raw.(plugin.Backend)
	if err := b.Configure(ctx, map[string]string{"root": root}); err != nil {
		t.Fatal(err)
	}
	res, err := b.Get(ctx, []plugin.Ref{{Path: "/secret"}})
	if err != nil || len(res) != 1 || string(res[0].Secret.Data) != "in-process bytes" {
		t.Fatalf("Get = %+v, %v", res, err)
	}
	cancel()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve in test mode did not end when its context was done")
	}
	if _, err := os.Stat(addr.String()); !os.IsNotExist(err) {
		t.Errorf("the socket %s is left behind: %v", addr, err)
	}
}
