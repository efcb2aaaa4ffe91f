// Package shipper is keyship's one ship pipeline: it takes a validated
// request (spec.ReadRequest), has the host resolve and check its stores
// (Prepare, which makes a Shipment from the checked Bundle alone), and
// delivers the Shipment to the targets the caller names (Deliver), each a
// Target:
//
//   - Sandbox: the files with their password files and the settings as
//     printed, for a caller that writes one directory (shipper/sandbox);
//   - Files: the files' bytes, for a launcher that writes them itself;
//   - Fragment: the Mesos TaskInfo or Marathon app fragment (shipper/mesos),
//     where a store or password that is exactly one secret of a backend Mesos
//     can read ships by REFERENCE;
//   - shipper/kube's Target: the Kubernetes Secret; shipper/server's targets:
//     fetch grants and per-task Mesos secrets.
//
// Every Delivery carries the consumer's settings (shipper/conf, from the
// request's conf.Profile) that point at the files, with the Spark-on-Mesos
// settings where every file is a Mesos secret by reference. keyship ship
// (local and --server), keyship check, keyship serve's Ship and Watch and the
// watch loop all go through Ship (Prepare, then Deliver); none repeats a step
// of it. A Shipment never re-reads the Spec: where an output came from is
// what materialize recorded in the Bundle. Outcomes is the one table from an
// error's kind to its exit code, gRPC code and metric label.
//
// Quickstart:
//
//	req, err := spec.ReadRequest(spec.Document{JobID: "job-1", Data: doc})
//	sh, d, err := shipper.Ship(ctx, h, req, shipper.Options{Dir: dir}, shipper.Sandbox)
//	defer sh.Zero()
//	defer d.Zero()
//	res, err := sandbox.Write(ctx, dir, d.Files, sandbox.Options{})
//	fmt.Print(d.Printed)
package shipper

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper/conf"
	"github.com/keyship/keyship/shipper/mesos"
)

// TaskDir is where, relative to a task's sandbox, the files land when Mesos
// or a fetch URI delivers them.
const TaskDir = ".keyship"

// Builder resolves a Spec's refs and builds its checked stores: a
// *host.Host.
type Builder interface {
	Build(ctx context.Context, s *spec.Spec, opts materialize.Options) (*materialize.Bundle, error)
}

// Options tunes Prepare.
type Options struct {
	// Dir is where the consumer reads the files, which the settings point
	// at: the sandbox's absolute path (keyship ship --sandbox), or a path
	// relative to the task's sandbox (TaskDir) when Mesos or a fetch URI
	// delivers them. Required unless ChecksOnly.
	Dir string
	// Build tunes the checks (expiry warning, deadline). Prepare adds the
	// formats the request's consumer reads to Build.Outputs.
	Build materialize.Options
	// ChecksOnly runs the checks and prepares no settings (keyship check):
	// the Shipment's Bundle holds the stores of the spec's store type.
	ChecksOnly bool
}

// Shipment is one request's checked stores and what every target needs.
// It shares the Bundle's bytes: call Zero once it is shipped.
type Shipment struct {
	// Request is the request the Shipment is for.
	Request *spec.Request
	// Profile is the consumer's profile, read once from Request: what every
	// target's settings are written from besides the Bundle.
	Profile conf.Profile
	// Bundle is the checked stores and passwords.
	Bundle *materialize.Bundle
	// Dir is Options.Dir.
	Dir string
	// Files are the Bundle's files, then the consumer's extra files (Flink's
	// 0600 settings fragment with its passwords).
	Files []materialize.File
	// Settings are the consumer's settings for Files in Dir; none holds a
	// password in Value.
	Settings []conf.Setting

	dirs *dirs // the settings and extra files per directory (At)
	view bool  // made by At: its bytes are its parent's
}

// Prepare runs the pipeline for req: build and check through b, then the
// consumer's settings and extra files. On error nothing is kept: the error
// names the spec fields and refs, and holds no secret bytes.
func Prepare(ctx context.Context, b Builder, req *spec.Request, opts Options) (*Shipment, error) {
	if req == nil || req.Spec == nil {
		return nil, errors.New("shipper: no request")
	}
	bopts := opts.Build
	if !opts.ChecksOnly {
		bopts.Outputs = append(slices.Clone(bopts.Outputs), conf.Outputs(req.Consumer)...)
	}
	bundle, err := b.Build(ctx, req.Spec, bopts)
	if err != nil {
		return nil, err
	}
	sh := &Shipment{Request: req, Profile: conf.ProfileOf(req.Spec), Bundle: bundle, Dir: opts.Dir, Files: bundle.Files, dirs: &dirs{}}
	if opts.ChecksOnly {
		return sh, nil
	}
	at, err := sh.At(opts.Dir)
	if err != nil {
		bundle.Zero()
		return nil, err
	}
	sh.Settings, sh.Files = at.Settings, at.Files
	return sh, nil
}

// dirs holds a Shipment's settings and extra files per directory, made
// once each (conf.For) and zeroed with the Shipment.
type dirs struct {
	mu  sync.Mutex
	set map[string]*Shipment
}

// At returns the Shipment for the consumer reading the files in dir: the
// same Bundle, with the settings and extra files (conf.For) made for dir
// once and kept. It shares s's bytes: zero s, never what At returns.
func (s *Shipment) At(dir string) (*Shipment, error) {
	if dir == s.Dir && s.Settings != nil {
		return s, nil
	}
	if s.dirs == nil { // a Shipment made without Prepare
		s.dirs = &dirs{}
	}
	s.dirs.mu.Lock()
	defer s.dirs.mu.Unlock()
	if at := s.dirs.set[dir]; at != nil {
		return at, nil
	}
	settings, extra, err := conf.For(s.Request.Consumer, s.Bundle, dir, s.Profile)
	if err != nil {
		return nil, err
	}
	at := &Shipment{Request: s.Request, Profile: s.Profile, Bundle: s.Bundle, Dir: dir, Settings: settings,
		Files: append(slices.Clone(s.Bundle.Files), extra...), dirs: s.dirs, view: true}
	if s.dirs.set == nil {
		s.dirs.set = map[string]*Shipment{}
	}
	s.dirs.set[dir] = at
	return at, nil
}

// The files beside the stores that carry their passwords in a sandbox, for
// launchers that export them into the task's environment (the variables of
// shipper/mesos that the Spark settings name).
const (
	KeystorePasswordFile   = conf.KeystorePasswordFile
	KeyPasswordFile        = conf.KeyPasswordFile
	TruststorePasswordFile = conf.TruststorePasswordFile
)

// SandboxFiles are the files of a sandbox: Files, then one 0600 file per
// password. They share the Bundle's bytes.
func (s *Shipment) SandboxFiles() []materialize.File {
	out := slices.Clone(s.Files)
	for _, pw := range mesos.Passwords(s.Bundle) {
		if pw.Value != nil {
			out = append(out, materialize.File{Path: pw.File, Mode: materialize.FileMode, Contents: pw.Value, Source: pw.Source})
		}
	}
	return out
}

// Mesos plans the Shipment's files and passwords as Mesos secret volumes and
// SECRET environment variables in Dir (which must be relative to the task's
// sandbox): a REFERENCE where the Bundle records that a file or password is
// exactly a secret Mesos can read, a VALUE otherwise.
func (s *Shipment) Mesos() (*mesos.Plan, error) { return s.MesosIn(s.Dir) }

// MesosIn is Mesos with the files in dir, relative to the task's sandbox.
func (s *Shipment) MesosIn(dir string) (*mesos.Plan, error) {
	b := *s.Bundle
	b.Files = s.Files
	return mesos.NewPlan(&b, dir, mesos.BundleSources(&b))
}

// Zero zeroes the Shipment's Bundle and the extra files of every
// directory it was made for. A Shipment At returned is its parent's: zero
// the parent.
func (s *Shipment) Zero() {
	if s == nil || s.view {
		return
	}
	for _, f := range s.Files[len(s.Bundle.Files):] {
		clear(f.Contents)
	}
	if s.dirs != nil {
		s.dirs.mu.Lock()
		for _, at := range s.dirs.set {
			for _, f := range at.Files[len(s.Bundle.Files):] {
				clear(f.Contents)
			}
		}
		s.dirs.set = nil
		s.dirs.mu.Unlock()
	}
	s.Bundle.Zero()
}
