package plugintest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"gopkg.in/yaml.v3"

	"github.com/keyship/keyship/plugin"
)

// ProtocolPage is where the rules the kit checks are written down; a failed
// check names its section (ProtocolPage#anchor).
const ProtocolPage = "proto/keyship/backend/v1/PROTOCOL.md"

// KitFile is the configuration of `keyship plugin test` for a plugin binary
// in any language: how to configure it and how to put fixtures into its
// store, as shell commands where Config has Go functions. In every string,
// ${KEYSHIP_KIT_DIR} is a fresh directory the kit makes for the run, with an
// empty directory store/ in it (and removes after); commands run with sh -c in it, with KEYSHIP_KIT_DIR,
// KEYSHIP_KIT_PATH and KEYSHIP_KIT_FIELD (the ref) in their environment.
//
// The zero KitFile fits a store kept in a directory: Config is
// {root: ${KEYSHIP_KIT_DIR}/store}, BadConfigs are {} and a root that does
// not exist, refs are /kit/NAME and a fixture is written to the file
// ${KEYSHIP_KIT_DIR}/store/kit/NAME.
type KitFile struct {
	// Config is a valid configuration for the plugin's Configure.
	Config map[string]string `yaml:"config"`
	// BadConfigs are configurations Configure must refuse with
	// INVALID_ARGUMENT: at least one whenever Config is set.
	BadConfigs []map[string]string `yaml:"bad_configs"`
	// Env lists host variables the plugin may see (names, NAME_* patterns).
	Env []string `yaml:"env"`
	// Ref is the path of a fixture's ref, with "{name}" where the fixture's
	// name goes (letters, digits, '-'): "/kit/{name}" (the default),
	// "secret/data/kit/{name}". It is the path part only, as the host sends
	// it in Ref.path: no "backend:" prefix, no "#field", no "@version", no
	// ".." segment; the kit never sets Ref.field or Ref.version.
	Ref string `yaml:"ref"`
	// Text says that the store keeps printable text only (no binary
	// fixtures).
	Text bool `yaml:"text"`
	// Put writes the fixture on its stdin at the ref
	// (KEYSHIP_KIT_PATH), creating or replacing it.
	Put string `yaml:"put"`
	// Deny makes the ref unreadable for the plugin: the kit then checks
	// PERMISSION_DENIED. Optional.
	Deny string `yaml:"deny"`
	// Unavailable makes the store unreachable and Restore brings it back:
	// the kit then checks UNAVAILABLE. Optional, both or neither.
	Unavailable string `yaml:"unavailable"`
	Restore     string `yaml:"restore"`
}

// ReadKitFile reads a KitFile from YAML; unknown keys are errors.
func ReadKitFile(path string) (KitFile, error) {
	var kf KitFile
	data, err := os.ReadFile(path)
	if err != nil {
		return kf, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&kf); err != nil && err != io.EOF {
		return kf, fmt.Errorf("%s: %w", path, err)
	}
	if err := kf.check(); err != nil {
		return kf, fmt.Errorf("kit file %s: %w", path, err)
	}
	return kf, nil
}

// check returns the first mistake of the kit file itself (as opposed to a
// fault of the plugin it configures), or nil.
func (kf KitFile) check() error {
	if (kf.Unavailable == "") != (kf.Restore == "") {
		return errors.New("unavailable: and restore: go together")
	}
	if kf.BadConfigs != nil && len(kf.BadConfigs) == 0 {
		return errors.New("bad_configs: is empty: give at least one configuration the plugin must refuse with INVALID_ARGUMENT, or leave the key out (with no config: either) for the defaults")
	}
	if kf.Config != nil && len(kf.BadConfigs) == 0 {
		return errors.New("config: is set but bad_configs: is not: give at least one configuration the plugin must refuse with INVALID_ARGUMENT (a missing required setting, an unknown one, a store that is not there); the default bad configs fit only the default config")
	}
	if kf.Ref != "" {
		if reason := refTemplateProblem(kf.Ref); reason != "" {
			return fmt.Errorf("ref: %q %s; want the path of a fixture's ref with {name} in it, e.g. /kit/{name}", kf.Ref, reason)
		}
	}
	return nil
}

// refTemplateProblem says why ref is not a kit file's ref: template, or "".
func refTemplateProblem(ref string) string {
	switch {
	case !strings.Contains(ref, "{name}"):
		return "has no {name}: every fixture would be the same secret"
	case backendPrefix.MatchString(ref):
		return `starts with a "backend:" prefix: the plugin gets the path only`
	case strings.ContainsAny(ref, "#@"):
		return `has a "#field" or "@version": the kit reads whole secrets at their current version`
	case slices.Contains(strings.Split(ref, "/"), ".."):
		return `has a ".." segment, which the host never sends`
	}
	return ""
}

// backendPrefix is how a ref names its backend (host/spec).
var backendPrefix = regexp.MustCompile(`^[a-z][a-z0-9_-]*:`)

// RunPlugin runs every conformance check against the plugin binary at path,
// started as keyship starts it (plugin/launch), outside `go test`: no Go
// toolchain is needed. Each check's outcome is printed on stdout in go
// test's verbose form, a failure with the section of ProtocolPage it breaks,
// then PASS or FAIL; the process then exits, 0 when every check passed and 1
// otherwise (it is testing.Main, which go test's own runner replaced and
// keeps for programs like this one). It returns only an error found before
// the checks start.
func RunPlugin(path string, kf KitFile, logger hclog.Logger) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "keyship-kit")
	if err != nil {
		return err
	}
	cfg, err := kf.config(abs, dir, logger)
	if err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	os.Args = []string{os.Args[0], "-test.v"} // testing.Main parses os.Args
	testing.Main(func(string, string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: "Conformance", F: func(t *testing.T) {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			Run(t, cfg)
		}}}, nil, nil)
	return nil // not reached: testing.Main exits
}

// config turns the file into a Config for the plugin at path, with dir as
// ${KEYSHIP_KIT_DIR}.
func (kf KitFile) config(path, dir string, logger hclog.Logger) (Config, error) {
	expand := func(s string) string {
		return os.Expand(s, func(name string) string {
			if name == "KEYSHIP_KIT_DIR" {
				return dir
			}
			return "${" + name + "}"
		})
	}
	store := filepath.Join(dir, "store")
	if err := os.Mkdir(store, 0o700); err != nil {
		return Config{}, err
	}
	if kf.Config == nil {
		kf.Config = map[string]string{"root": store}
		if kf.BadConfigs == nil {
			kf.BadConfigs = []map[string]string{{}, {"root": filepath.Join(dir, "missing")}}
		}
	}
	cfg := Config{
		Plugin:     path,
		PluginEnv:  kf.Env,
		Config:     map[string]string{},
		BadConfigs: make([]map[string]string, len(kf.BadConfigs)),
		Binary:     !kf.Text,
		Logger:     logger,
		kitFile:    true,
	}
	for k, v := range kf.Config {
		cfg.Config[k] = expand(v)
	}
	for i, bc := range kf.BadConfigs {
		cfg.BadConfigs[i] = map[string]string{}
		for k, v := range bc {
			cfg.BadConfigs[i][k] = expand(v)
		}
	}
	refPath := kf.Ref
	if refPath == "" {
		refPath = "/kit/{name}"
	}
	cfg.Ref = func(name string) plugin.Ref { return plugin.Ref{Path: strings.ReplaceAll(refPath, "{name}", name)} }
	hook := func(t testing.TB, name, command string, ref plugin.Ref, stdin []byte) {
		t.Helper()
		cmd := exec.Command("/bin/sh", "-c", expand(command))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "KEYSHIP_KIT_DIR="+dir, "KEYSHIP_KIT_PATH="+ref.Path, "KEYSHIP_KIT_FIELD="+ref.Field)
		cmd.Stdin = bytes.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("the kit file's %s command for %s: %v\n%s", name, ref.Path, err, out)
		}
	}
	if kf.Put == "" {
		cfg.Put = func(t testing.TB, ref plugin.Ref, data []byte) { putFile(t, store, ref.Path, data) }
	} else {
		cfg.Put = func(t testing.TB, ref plugin.Ref, data []byte) { hook(t, "put", kf.Put, ref, data) }
	}
	if kf.Deny != "" {
		cfg.Deny = func(t testing.TB, ref plugin.Ref) { hook(t, "deny", kf.Deny, ref, nil) }
	}
	if kf.Unavailable != "" {
		cfg.Unavailable = func(t testing.TB) func() {
			hook(t, "unavailable", kf.Unavailable, plugin.Ref{}, nil)
			return func() { hook(t, "restore", kf.Restore, plugin.Ref{}, nil) }
		}
	}
	return cfg, nil
}

// putFile writes data at root/path through a new file renamed into place.
func putFile(t testing.TB, root, path string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(path, "/")))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	tmp := p + ".kit-tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}
