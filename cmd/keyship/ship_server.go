package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/server"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/sandbox"
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
		sum := sha256.Sum256(doc)
		jobID = "keyship-cli-" + hex.EncodeToString(sum[:8])
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
	var files []sandbox.File
	var stores []materialize.File
	var fetchDir string
	for _, fl := range resp.GetFiles() {
		name := path.Base(fl.GetPath())
		fetchDir = path.Dir(fl.GetPath())
		files = append(files, sandbox.File{Path: name, Mode: fs.FileMode(fl.GetMode()), Contents: fl.GetContents()})
		stores = append(stores, materialize.File{Path: name, Version: fl.GetVersion()})
	}
	for _, e := range resp.GetTasks()[0].GetEnv() {
		if name, ok := passwordFiles[e.GetName()]; ok {
			files = append(files, sandbox.File{Path: name, Mode: 0o600, Contents: e.GetSecret().GetValue()})
		}
	}
	defer func() {
		for _, fl := range files {
			clear(fl.Contents)
		}
	}()
	dir, err := g.writeSandbox(f, files, stores, resp.GetWarnings())
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
