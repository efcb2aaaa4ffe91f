// Command testplugin is a keyship backend plugin that misbehaves on purpose,
// for the loader's fault tests. Its behaviour is the part of its file name
// after "keyship-backend-" (tests copy it under several names):
//
//	crashget     serves, and exits with status 2 in every Get
//	nohandshake  never completes the plugin handshake
//	childstdout  starts a child that holds stdout open (its pid in
//	             <path>.child), then never completes the handshake
//	unpinned     records that it ran and exits: the binary a pin must refuse
//	(other)      serves an in-memory backend whose every ref reads "ok"
//
// Every start appends a line to <its directory>/<its name>.starts, so that
// a test can count processes, whatever environment the host gave it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyship/keyship/plugin"
)

type backend struct{ crash bool }

func (b backend) Info(context.Context) (plugin.Info, error) {
	return plugin.Info{Name: "testplugin", Version: "1", ProtocolVersions: []uint32{plugin.ProtocolVersion}}, nil
}

func (b backend) Configure(context.Context, map[string]string) error { return nil }

func (b backend) Get(_ context.Context, refs []plugin.Ref) ([]plugin.Result, error) {
	if b.crash {
		os.Exit(2)
	}
	out := make([]plugin.Result, len(refs))
	for i := range out {
		out[i].Secret = plugin.Secret{Data: []byte("ok"), Version: "1"}
	}
	return out, nil
}

func main() {
	self := os.Args[0]
	mode := strings.TrimPrefix(filepath.Base(self), "keyship-backend-")
	if len(os.Args) > 1 && os.Args[1] == "child" {
		time.Sleep(time.Hour)
		return
	}
	if f, err := os.OpenFile(self+".starts", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
		_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
		_ = f.Close()
	}
	switch mode {
	case "nohandshake":
		time.Sleep(time.Hour)
	case "childstdout":
		exe, _ := os.Executable()
		child := exec.Command(exe, "child")
		child.Stdout = os.Stdout
		if err := child.Start(); err != nil {
			os.Exit(3)
		}
		_ = os.WriteFile(self+".child", []byte(fmt.Sprint(child.Process.Pid)), 0o600)
		time.Sleep(time.Hour)
	case "unpinned":
		os.Exit(0)
	default:
		plugin.Serve(func() plugin.Backend { return backend{crash: mode == "crashget"} })
	}
}
