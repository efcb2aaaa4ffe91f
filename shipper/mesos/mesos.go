// Package mesos writes a Bundle as the Mesos v1 JSON a launcher merges into
// a TaskInfo: secret volumes for the files and secret environment variables
// for the passwords, and the Marathon app fragment that asks Marathon for the
// same.
//
// Each file and password ships by REFERENCE when the store the Mesos secret
// resolver reads (DC/OS Secrets) keeps it unchanged, so that its bytes never
// pass through the launcher, and by VALUE when keyship built it. The caller
// says which with Sources.
//
// Quickstart:
//
//	plan, err := mesos.NewPlan(bundle, ".keyship", mesos.Sources{
//		Files: map[materialize.Role]mesos.Reference{
//			materialize.RoleKeystore: {Name: "/spark/keystore"},
//		},
//		KeystorePassword: &mesos.Reference{Name: "/spark/keystore_password"},
//	})
//	fragment, _ := json.Marshal(plan.TaskInfo()) // merge into the TaskInfo
//	// plan.TaskInfo() holds the bytes of the VALUE items: send it to Mesos,
//	// never print or log it (plan.ByValue() says whether there are any).
//
// The JSON field names are mesos.proto's (include/mesos/v1/mesos.proto of
// apache/mesos: Volume, Volume.Source, Secret, Secret.Reference,
// Secret.Value, Environment.Variable, ContainerInfo, CommandInfo), in the
// JSON form the Mesos HTTP API takes: the proto field names, enums by name,
// bytes as base64.
package mesos

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"unicode"

	"github.com/keyship/keyship/host/materialize"
)

// The environment variables that carry a Bundle's passwords into a task.
// conf's Spark settings refer to them (${env:NAME}).
const (
	EnvKeystorePassword   = "KEYSHIP_KEYSTORE_PASSWORD"
	EnvKeyPassword        = "KEYSHIP_KEY_PASSWORD"
	EnvTruststorePassword = "KEYSHIP_TRUSTSTORE_PASSWORD"
)

// The enum values keyship writes, by their mesos.proto names.
const (
	SecretTypeReference = "REFERENCE" // Secret.Type
	SecretTypeValue     = "VALUE"     // Secret.Type
	VolumeModeRO        = "RO"        // Volume.Mode
	SourceTypeSecret    = "SECRET"    // Volume.Source.Type
	VariableTypeSecret  = "SECRET"    // Environment.Variable.Type
	ContainerTypeMesos  = "MESOS"     // ContainerInfo.Type: secrets need the Mesos containerizer
)

// Reference names a secret that the Mesos secret resolver reads itself: a
// DC/OS secret path, and optionally a key inside it (Secret.Reference).
type Reference struct {
	// Name is the secret's path in the store, e.g. "/spark/keystore".
	Name string `json:"name"`
	// Key selects one value of a secret that holds key-value pairs, or is
	// empty.
	Key string `json:"key,omitempty"`
}

// Sources tells NewPlan, for each file and password of a Bundle, whether it
// is byte for byte a secret of a store the Mesos secret resolver can read
// (DC/OS Secrets), and which: then it ships by REFERENCE. Everything Sources
// does not name ships by VALUE. The zero Sources ships everything by VALUE.
type Sources struct {
	// Files maps the role of a Bundle file to the secret that holds exactly
	// its bytes.
	Files map[materialize.Role]Reference
	// KeystorePassword, KeyPassword and TruststorePassword name the secrets
	// that hold exactly the Bundle's passwords, or are nil.
	KeystorePassword, KeyPassword, TruststorePassword *Reference
}

// Item is one file or password of a Plan.
type Item struct {
	// Role is the file's role, or "" for a password.
	Role materialize.Role
	// Path is where the file is in the task, relative to the sandbox (the
	// container work directory), e.g. ".keyship/keystore.jks"; "" for a
	// password.
	Path string
	// Env is the variable that carries a password, or "" for a file.
	Env string
	// Ref is the secret the item ships by reference, or nil when it ships by
	// value.
	Ref *Reference
	// Version is the file's version (materialize.File.Version); "" for a
	// password.
	Version string

	// value holds the bytes behind a pointer, so that formatting an Item
	// (whose unexported fields fmt prints without their Format methods)
	// shows an address, never the bytes.
	value *itemBytes
}

type itemBytes struct{ data Data }

// Secret returns the item's mesos Secret: a REFERENCE to Ref, or the item's
// bytes as a VALUE.
func (it Item) Secret() *Secret {
	if it.Ref != nil {
		r := *it.Ref
		return &Secret{Type: SecretTypeReference, Reference: &r}
	}
	var d Data
	if it.value != nil {
		d = it.value.data
	}
	return &Secret{Type: SecretTypeValue, Value: &SecretValue{Data: d}}
}

// Plan is how each file and password of one Bundle reaches a task. A Plan
// shares the Bundle's bytes: use it before Bundle.Zero.
type Plan struct {
	// Dir is the directory of the files in the task, relative to the
	// sandbox ("." for the sandbox itself).
	Dir string
	// Items are the files, in the Bundle's order, then the keystore, key and
	// truststore passwords.
	Items []Item
}

// NewPlan plans the shipping of b to tasks whose files go into dir, a
// directory relative to the sandbox such as ".keyship" ("" or "." for the
// sandbox itself). dir must be relative, clean and without "..": Mesos
// mounts secret volumes at paths relative to the container work directory,
// and an absolute path would have to exist on the agent already.
//
// A file or password ships by REFERENCE when src names its secret, by VALUE
// otherwise. It is an error for src to name a file role b has not (or has
// twice), a password b has not, or a reference without a name.
func NewPlan(b *materialize.Bundle, dir string, src Sources) (*Plan, error) {
	if b == nil {
		return nil, errors.New("mesos: nil bundle")
	}
	if dir == "" {
		dir = "."
	}
	if reason := checkRel(dir); reason != "" {
		return nil, fmt.Errorf("mesos: directory %q: %s", dir, reason)
	}
	var problems []string
	ref := func(what string, r *Reference) *Reference {
		if r == nil {
			return nil
		}
		if strings.TrimSpace(r.Name) == "" || strings.IndexFunc(r.Name, unicode.IsControl) >= 0 {
			problems = append(problems, what+": a reference needs a name without control characters")
			return nil
		}
		c := *r
		return &c
	}
	p := &Plan{Dir: dir}
	seen := map[materialize.Role]bool{}
	for _, f := range b.Files {
		if reason := checkRel(f.Path); reason != "" {
			problems = append(problems, fmt.Sprintf("file %q: %s", f.Path, reason))
			continue
		}
		it := Item{Role: f.Role, Path: path.Join(dir, f.Path), Version: f.Version, value: &itemBytes{Data(f.Contents)}}
		if r, ok := src.Files[f.Role]; ok {
			if seen[f.Role] {
				problems = append(problems, fmt.Sprintf("file role %q: the bundle has more than one file with it, so one reference cannot name it", f.Role))
			}
			it.Ref = ref(fmt.Sprintf("file role %q", f.Role), &r)
		}
		seen[f.Role] = true
		p.Items = append(p.Items, it)
	}
	for role := range src.Files {
		if !seen[role] {
			problems = append(problems, fmt.Sprintf("file role %q: the bundle has no such file", role))
		}
	}
	for _, pw := range Passwords(b) {
		r := src.password(pw.Env)
		if pw.Value == nil {
			if r != nil {
				problems = append(problems, pw.Env+": the bundle has no such password")
			}
			continue
		}
		p.Items = append(p.Items, Item{Env: pw.Env, Ref: ref(pw.Env, r), value: &itemBytes{Data(pw.Value)}})
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("mesos: sources do not fit the bundle:\n%s", strings.Join(problems, "\n"))
	}
	return p, nil
}

// The files that carry the store passwords beside the stores in a sandbox
// (and the keys of a Kubernetes Secret that carry them).
const (
	KeystorePasswordFile   = "keystore.password"
	KeyPasswordFile        = "key.password"
	TruststorePasswordFile = "truststore.password"
)

// Password is one of a Bundle's store passwords: the variable that carries
// it into the task, the file that holds it beside the stores, its bytes
// (nil when the Bundle has none) and where they came from.
type Password struct {
	Env, File string
	Value     materialize.Sensitive
	Source    materialize.Source
}

// Passwords lists b's three store passwords, keystore, key and truststore
// in that order, set or not: the one list of them that every target reads.
func Passwords(b *materialize.Bundle) []Password {
	return []Password{
		{EnvKeystorePassword, KeystorePasswordFile, b.KeystorePassword, b.KeystorePasswordSource},
		{EnvKeyPassword, KeyPasswordFile, b.KeyPassword, b.KeyPasswordSource},
		{EnvTruststorePassword, TruststorePasswordFile, b.TruststorePassword, b.TruststorePasswordSource},
	}
}

// password is the reference of the password that env carries, or nil.
func (s Sources) password(env string) *Reference {
	switch env {
	case EnvKeystorePassword:
		return s.KeystorePassword
	case EnvKeyPassword:
		return s.KeyPassword
	case EnvTruststorePassword:
		return s.TruststorePassword
	}
	return nil
}

// checkRel returns why p is not a clean relative path without "..", or "".
func checkRel(p string) string {
	switch {
	case path.IsAbs(p) || strings.HasPrefix(p, `\`):
		return "must be relative to the sandbox"
	case path.Clean(p) != p:
		return "must be clean (no //, ./ or trailing /)"
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return "contains a control character"
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == ".." {
			return `must not contain ".."`
		}
	}
	return ""
}

// ByValue reports whether any item ships by value: then the JSON of
// TaskInfo, Volumes and Variables holds secret bytes.
func (p *Plan) ByValue() bool {
	for _, it := range p.Items {
		if it.Ref == nil {
			return true
		}
	}
	return false
}

// Volumes returns one read-only secret volume per file (ContainerInfo.volumes).
func (p *Plan) Volumes() []Volume {
	var out []Volume
	for _, it := range p.Items {
		if it.Env != "" {
			continue
		}
		out = append(out, Volume{
			Mode:          VolumeModeRO,
			ContainerPath: it.Path,
			Source:        &VolumeSource{Type: SourceTypeSecret, Secret: it.Secret()},
		})
	}
	return out
}

// Variables returns one secret environment variable per password
// (CommandInfo.environment.variables).
func (p *Plan) Variables() []Variable {
	var out []Variable
	for _, it := range p.Items {
		if it.Env == "" {
			continue
		}
		out = append(out, Variable{Name: it.Env, Type: VariableTypeSecret, Secret: it.Secret()})
	}
	return out
}

// TaskInfo returns the fragment to merge into a TaskInfo: container.volumes
// (with container.type MESOS, as Mesos resolves secrets only in the Mesos
// containerizer) and command.environment.variables. Merging appends the
// volumes and variables to those the TaskInfo already has.
func (p *Plan) TaskInfo() TaskInfo {
	var ti TaskInfo
	if vols := p.Volumes(); len(vols) > 0 {
		ti.Container = &ContainerInfo{Type: ContainerTypeMesos, Volumes: vols}
	}
	if vars := p.Variables(); len(vars) > 0 {
		ti.Command = &CommandInfo{Environment: &Environment{Variables: vars}}
	}
	return ti
}

// Data is the bytes of a Secret.Value. It marshals to JSON as base64, as the
// Mesos JSON API writes bytes fields, and formats as "[redacted]" with every
// fmt verb and in log/slog.
type Data []byte

// MarshalJSON writes d as a base64 JSON string.
func (d Data) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.StdEncoding.EncodeToString(d))
}

// Format writes "[redacted]" whatever the verb.
func (Data) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// LogValue keeps the bytes out of log/slog output.
func (Data) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Secret is mesos.proto's Secret: exactly one of Reference and Value is set,
// as Type says.
type Secret struct {
	Type      string       `json:"type"`
	Reference *Reference   `json:"reference,omitempty"`
	Value     *SecretValue `json:"value,omitempty"`
}

// SecretValue is mesos.proto's Secret.Value.
type SecretValue struct {
	Data Data `json:"data"`
}

// Volume is mesos.proto's Volume, with the fields a secret volume uses.
type Volume struct {
	Mode          string        `json:"mode"`
	ContainerPath string        `json:"container_path"`
	Source        *VolumeSource `json:"source"`
}

// VolumeSource is mesos.proto's Volume.Source, with the fields a secret
// volume uses.
type VolumeSource struct {
	Type   string  `json:"type"`
	Secret *Secret `json:"secret"`
}

// Variable is mesos.proto's Environment.Variable, with the fields a secret
// variable uses.
type Variable struct {
	Name   string  `json:"name"`
	Type   string  `json:"type"`
	Secret *Secret `json:"secret"`
}

// TaskInfo is the part of mesos.proto's TaskInfo that keyship fills.
type TaskInfo struct {
	Command   *CommandInfo   `json:"command,omitempty"`
	Container *ContainerInfo `json:"container,omitempty"`
}

// CommandInfo is the part of mesos.proto's CommandInfo that keyship fills.
type CommandInfo struct {
	Environment *Environment `json:"environment,omitempty"`
}

// Environment is mesos.proto's Environment.
type Environment struct {
	Variables []Variable `json:"variables"`
}

// ContainerInfo is the part of mesos.proto's ContainerInfo that keyship
// fills.
type ContainerInfo struct {
	Type    string   `json:"type"`
	Volumes []Volume `json:"volumes"`
}

// BundleSources returns the Sources that b records: each file and password
// that materialize found to be exactly one secret, and the host marked
// Referable (its backend's secrets are readable by the Mesos secret
// resolver), ships by REFERENCE to that secret's path.
func BundleSources(b *materialize.Bundle) Sources {
	src := Sources{Files: map[materialize.Role]Reference{}}
	ref := func(s materialize.Source) *Reference {
		if !s.Referable {
			return nil
		}
		return &Reference{Name: s.Ref.Path}
	}
	for _, f := range b.Files {
		if r := ref(f.Source); r != nil {
			src.Files[f.Role] = *r
		}
	}
	src.KeystorePassword, src.KeyPassword, src.TruststorePassword = ref(b.KeystorePasswordSource), ref(b.KeyPasswordSource), ref(b.TruststorePasswordSource)
	return src
}
