package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/keyship/keyship/host/materialize"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/server"
)

// shipThroughServer ships the spec through a running keyship serve: the
// server resolves and builds, this process only writes the sandbox.
func (g *globals) shipThroughServer(ctx context.Context, f shipFlags) error {
	doc, err := os.ReadFile(f.specPath)
	if err != nil {
		return usageError{fmt.Errorf("--spec: %w", err)}
	}
	c, err := server.Dial(f.server, nil)
	if err != nil {
		return usageError{err}
	}
	defer func() { _ = c.Close() }()
	jobID := f.jobID
	if jobID == "" {
		jobID = localJobID(doc)
	}
	resp, err := c.Ship(ctx, &hostv1.ShipRequest{
		JobId:   jobID,
		Spec:    doc,
		Dialect: server.DialectOf(f.dialect),
		Tasks:   []*hostv1.Task{{Id: "local", Role: "component", Hosts: f.hosts}},
		Targets: []hostv1.Target{hostv1.Target_TARGET_FILES, hostv1.Target_TARGET_MESOS},
	})
	if err != nil {
		return fmt.Errorf("nothing shipped: %w", err)
	}
	var files []materialize.File
	var fetchDir string
	for _, fl := range resp.GetFiles() {
		name := path.Base(fl.GetPath())
		fetchDir = path.Dir(fl.GetPath())
		files = append(files, materialize.File{Path: name, Role: materialize.Role(fl.GetRole()), Mode: fs.FileMode(fl.GetMode()), Contents: fl.GetContents(), Version: fl.GetVersion()})
	}
	for _, e := range resp.GetTasks()[0].GetEnv() {
		if name, ok := shipper.PasswordFiles[e.GetName()]; ok {
			files = append(files, materialize.File{Path: name, Mode: materialize.FileMode, Contents: e.GetSecret().GetValue()})
		}
	}
	defer func() {
		for _, fl := range files {
			clear(fl.Contents)
		}
	}()
	dir, err := g.writeSandbox(ctx, f, files, notAfterOf(resp), resp.GetWarnings())
	if err != nil {
		return err
	}
	for _, st := range resp.GetSettings() {
		v := st.GetValue()
		if rest, ok := strings.CutPrefix(v, fetchDir+"/"); ok && fetchDir != "" {
			v = path.Join(dir, rest)
		}
		fmt.Fprintf(g.stdout, "%s=%s\n", st.GetKey(), v)
	}
	return nil
}

// notAfterOf maps each file of resp, by its name in the sandbox, to when its
// certificates expire (File.not_after_unix), for the manifest.
func notAfterOf(resp *hostv1.ShipResponse) map[string]time.Time {
	out := map[string]time.Time{}
	for _, fl := range resp.GetFiles() {
		if t := fl.GetNotAfterUnix(); t > 0 {
			out[path.Base(fl.GetPath())] = time.Unix(t, 0)
		}
	}
	return out
}
