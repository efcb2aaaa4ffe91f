package shipper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyship/keyship/host/materialize"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/shipper/conf"
	"github.com/keyship/keyship/shipper/fetch"
	"github.com/keyship/keyship/shipper/mesos"
)

// Target is one place a Shipment goes: a sandbox directory, a Mesos or
// Marathon fragment, fetch grants, a Kubernetes Secret. Deliver adds what it
// shipped to d; it reads the Shipment and never re-reads the Spec. The
// targets of one delivery run in the order given.
type Target interface {
	Deliver(ctx context.Context, sh *Shipment, d *Delivery) error
}

// TargetFunc makes a function a Target.
type TargetFunc func(ctx context.Context, sh *Shipment, d *Delivery) error

// Deliver calls f.
func (f TargetFunc) Deliver(ctx context.Context, sh *Shipment, d *Delivery) error {
	return f(ctx, sh, d)
}

// Delivery is what one delivery of a Shipment made: the files for the
// caller's directory (or their metadata), the consumer's settings and how
// they print, and what each target adds (fragments, fetch URIs, a Secret).
// keyship ship prints it and writes Files; keyship serve sends it as its
// response. Zero it once handed on: it shares the Shipment's bytes and holds
// some of its own.
type Delivery struct {
	// JobID and Consumer are the request's.
	JobID, Consumer string
	// Dir is where the consumer reads Files; SettingsDir where Settings
	// point: Dir, or TaskDir when Spark gets the files as Mesos secrets by
	// reference.
	Dir, SettingsDir string
	// Files are the job's files at Dir; Contents tells whether their bytes
	// go with them (a sandbox, TARGET_FILES) or only their metadata.
	Files    []materialize.File
	Contents bool
	// NotAfter is, by file path, when its certificates expire.
	NotAfter map[string]time.Time
	// Warnings are the build's.
	Warnings []string
	// Settings are the consumer's settings for Dir; none holds a password
	// in Value.
	Settings []conf.Setting
	// Printed is the settings as keyship ship prints them (Sandbox): what
	// they are for, where each file goes, then the settings; no password.
	Printed string
	// Fragment is the Mesos TaskInfo or Marathon app fragment's JSON
	// (Fragment targets), unless it carries secret values: then it is the
	// file FragmentFile of Files.
	Fragment     []byte
	FragmentFile string
	// Tasks are the per-task deliveries (fetch URIs), in request order.
	Tasks []TaskDelivery
	// Mesos is the job's Mesos secret plan, the same for each of its tasks
	// (secret volumes and SECRET environment), when a target asked for it.
	Mesos *mesos.Plan
	// Secret is the Kubernetes Secret a Kubernetes target applied or wrote.
	Secret *Secret

	own []materialize.Sensitive // bytes made for this delivery
}

// TaskDelivery is what one task gets besides the job's Mesos secrets.
type TaskDelivery struct {
	TaskID string
	// URIs are its fetch URIs (each Value holds a token: secret).
	URIs []fetch.URI
}

// Secret is a job's Kubernetes Secret as applied (ResourceVersion set) or
// written as a manifest.
type Secret struct {
	Namespace, Name, MountPath string
	// UID and ResourceVersion are the API server's, when applied.
	UID, ResourceVersion string
	// Keys are its keys in name order; Versions the file keys' versions.
	Keys     []string
	Versions map[string]string
	// DeleteAt is when keyship serve deletes it; zero when it persists.
	DeleteAt time.Time
}

// Own records bytes the delivery made (a manifest, a fragment with secret
// values), for Zero.
func (d *Delivery) Own(b materialize.Sensitive) { d.own = append(d.own, b) }

// Zero clears the bytes the delivery made. The Shipment's are zeroed with
// the Shipment.
func (d *Delivery) Zero() {
	if d == nil {
		return
	}
	for _, b := range d.own {
		clear(b)
	}
	d.own = nil
}

// Ship is the pipeline from request to targets: Prepare, then Deliver to
// each target in order. The Shipment is zeroed when the delivery fails;
// otherwise the caller zeroes it after handing the Delivery on (sh.Zero,
// then d.Zero). keyship serve prepares a job once and delivers it per call:
// it calls Prepare and Deliver itself.
func Ship(ctx context.Context, b Builder, req *spec.Request, opts Options, targets ...Target) (*Shipment, *Delivery, error) {
	sh, err := Prepare(ctx, b, req, opts)
	if err != nil {
		return nil, nil, err
	}
	d, err := sh.Deliver(ctx, targets...)
	if err != nil {
		sh.Zero()
		return nil, nil, err
	}
	return sh, d, nil
}

// Deliver delivers s to each target in order. The Delivery starts with the
// Shipment's files (metadata), warnings and consumer settings: Spark's point
// into the task's sandbox (TaskDir) with spark.mesos.*.secret.* when every
// file is a Mesos secret by reference (Spark 2.3+), at s.Dir otherwise.
func (s *Shipment) Deliver(ctx context.Context, targets ...Target) (*Delivery, error) {
	d := &Delivery{JobID: s.Request.JobID, Consumer: s.Request.Consumer, Dir: s.Dir, SettingsDir: s.Dir, Files: s.Files,
		NotAfter: s.NotAfter(), Warnings: s.Bundle.Warnings, Settings: s.Settings}
	if s.Request.Consumer == conf.ConsumerSpark && s.Dir != TaskDir {
		if plan, err := s.MesosIn(TaskDir); err == nil {
			if settings, _, ok := conf.SparkMesos(s.Bundle, s.Profile, plan); ok {
				d.Settings, d.SettingsDir = settings, TaskDir
			}
		}
	}
	for _, t := range targets {
		if err := t.Deliver(ctx, s, d); err != nil {
			d.Zero()
			return nil, err
		}
	}
	return d, nil
}

// Sandbox is the target of a caller that writes the files into one directory
// itself (keyship ship, local or --server): the files with their bytes,
// the password files beside the stores, and the settings as printed.
var Sandbox Target = TargetFunc(func(_ context.Context, sh *Shipment, d *Delivery) error {
	d.Files, d.Contents = sh.SandboxFiles(), true
	d.Printed = conf.Print(d.Consumer, d.Settings, sh.Bundle, sh.Profile, d.SettingsDir)
	return nil
})

// Files is the target of a launcher that writes the job's files itself:
// their bytes go with them (TARGET_FILES).
var Files Target = TargetFunc(func(_ context.Context, _ *Shipment, d *Delivery) error {
	d.Contents = true
	return nil
})

// MesosFragmentFile holds the Mesos TaskInfo fragment when it carries secret
// values, so that they never reach stdout.
const MesosFragmentFile = "mesos-taskinfo.json"

// ErrNotDeliverable is the kind of error of a target that cannot take the
// job as built (a Marathon fragment for stores keyship built): the job is
// fine, the target is the wrong one for it.
var ErrNotDeliverable = errors.New("the target cannot take this job")

// Fragment is the target of a Mesos TaskInfo fragment (secret volumes,
// SECRET environment) or, with Marathon, a Marathon app fragment, for the
// files at TaskDir in the task's sandbox. A TaskInfo fragment that carries
// secret values is not in d.Fragment: it is added to the files as
// MesosFragmentFile (0600).
type Fragment struct{ Marathon bool }

// Deliver implements Target.
func (f Fragment) Deliver(_ context.Context, sh *Shipment, d *Delivery) error {
	plan, err := sh.MesosIn(TaskDir)
	if err != nil {
		return err
	}
	var v any = plan.TaskInfo()
	if f.Marathon {
		app, left := plan.Marathon()
		if len(left) > 0 {
			var what []string
			for _, it := range left {
				what = append(what, it.Path+it.Env)
			}
			return fmt.Errorf("marathon: Marathon secrets must be references to the DC/OS secret store, and keyship built %s; ship them with a sandbox, a Mesos TaskInfo fragment or keyship serve's fetch URIs (%w)", strings.Join(what, ", "), ErrNotDeliverable)
		}
		v = app
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if f.Marathon || !plan.ByValue() {
		d.Fragment = data
		return nil
	}
	if !d.Contents {
		clear(data)
		return fmt.Errorf("mesos: a TaskInfo fragment with secret values goes only into a sandbox (%w)", ErrNotDeliverable)
	}
	d.Own(data)
	d.Files = append(d.Files, materialize.File{Path: MesosFragmentFile, Mode: materialize.FileMode, Contents: data})
	d.FragmentFile = MesosFragmentFile
	return nil
}

// Releases are the consumer releases a request names over what the spec's
// parser inferred: keyship ship's --spark-version and --flink-version, the
// host API's spark_version and flink_version (the same words in what is
// printed, whichever way they came).
type Releases struct{ Spark, Flink string }

// Apply sets the releases on s; an error names the release's flag.
func (r Releases) Apply(s *spec.Spec) error {
	for _, o := range []struct {
		flag, v, consumer string
		dst               *spec.ConsumerVersion
	}{{"--spark-version", r.Spark, spec.ConsumerSpark, &s.SparkVersion}, {"--flink-version", r.Flink, spec.ConsumerFlink, &s.FlinkVersion}} {
		if o.v == "" {
			continue
		}
		v, err := spec.ParseRelease(o.consumer, o.v)
		if err != nil {
			return fmt.Errorf("%s: %w", o.flag, err)
		}
		*o.dst = spec.ConsumerVersion{Version: v, From: o.flag}
	}
	return nil
}
