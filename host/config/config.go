// Package config reads the keyship host configuration file: which backends
// exist, whether each runs built in or as a plugin binary, its pinned
// checksum and its settings.
//
//	default_backend: file
//	plugin_dir: ./bin
//	backends:
//	  file:
//	    plugin: keyship-backend-file   # a binary in plugin_dir; leave out for the built-in
//	    sha256: 3f2a…                   # optional pin of the binary
//	    config:
//	      root: ./secrets
//	  vault:
//	    plugin: keyship-backend-vault
//	    env: ["VAULT_*"]                # host variables the plugin may read (see Backend.Env)
package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"gopkg.in/yaml.v3"
)

// Config is the host configuration.
type Config struct {
	// DefaultBackend serves refs that name no backend ("/spark/keystore").
	DefaultBackend string `yaml:"default_backend"`
	// PluginDir is where plugin binaries live; relative to the config file.
	PluginDir string `yaml:"plugin_dir"`
	// Backends maps a backend name (the "vault" of "vault:secret/x") to its setup.
	Backends map[string]Backend `yaml:"backends"`
}

// Backend is one backend's setup.
type Backend struct {
	// Plugin is the plugin binary's file name in PluginDir (or a path); empty
	// means the built-in backend of the same name.
	Plugin string `yaml:"plugin"`
	// SHA256 pins the plugin binary (hex). A binary that does not match is
	// not started.
	SHA256 string `yaml:"sha256"`
	// Config is passed to the backend's Configure. Nested maps are
	// flattened to dotted names (auth: {method: token} becomes
	// "auth.method": "token"); scalars become their YAML text.
	Config Settings `yaml:"config"`
	// Env lists the host environment variables a plugin binary may read:
	// names, or a prefix and "*" ("VAULT_*"). A plugin otherwise gets only
	// PATH, TMPDIR, the locale (LANG, LANGUAGE, LC_*) and
	// KEYSHIP_PLUGIN_LOG_LEVEL, so that tokens and credentials in keyship's
	// environment do not leak into every plugin. A backend that falls back
	// to environment variables needs them listed here when it runs as a
	// plugin: e.g. env: ["VAULT_*"] for the Vault backend's VAULT_ADDR,
	// VAULT_TOKEN, ... fallbacks, or the variable the DC/OS backend's
	// auth.service_account_env names. Built-in backends run in keyship's
	// process and see its whole environment.
	Env []string `yaml:"env"`
}

// Settings is a backend's flat settings map, read from YAML that may nest.
type Settings map[string]string

// UnmarshalYAML flattens nested mappings into dotted keys.
func (s *Settings) UnmarshalYAML(node *yaml.Node) error {
	out := Settings{}
	if err := flatten(node, "", out); err != nil {
		return err
	}
	*s = out
	return nil
}

func flatten(node *yaml.Node, prefix string, out Settings) error {
	switch node.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(node.Content); i += 2 {
			key := node.Content[i].Value
			if prefix != "" {
				key = prefix + "." + key
			}
			if err := flatten(node.Content[i+1], key, out); err != nil {
				return err
			}
		}
		return nil
	case yaml.ScalarNode:
		if node.Tag == "!!null" {
			return nil
		}
		if _, dup := out[prefix]; dup {
			return fmt.Errorf("line %d: setting %q given twice", node.Line, prefix)
		}
		out[prefix] = node.Value
		return nil
	case yaml.AliasNode:
		return flatten(node.Alias, prefix, out)
	default:
		return fmt.Errorf("line %d: setting %q: want a value or a mapping, not a list", node.Line, prefix)
	}
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// envRE is a name or a prefix pattern of Backend.Env.
var envRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\*?$`)

// Load reads and checks the config file at path. Relative plugin_dir and
// plugin paths are resolved against the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	base := filepath.Dir(path)
	if c.PluginDir != "" && !filepath.IsAbs(c.PluginDir) {
		c.PluginDir = filepath.Join(base, c.PluginDir)
	}
	return c, nil
}

// Parse parses and checks config file content. Unknown keys are errors.
func Parse(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return &c, c.Validate()
}

// Validate checks names, the default backend and pins.
func (c *Config) Validate() error {
	var errs []error
	names := make([]string, 0, len(c.Backends))
	for n := range c.Backends {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b := c.Backends[n]
		if !nameRE.MatchString(n) {
			errs = append(errs, fmt.Errorf("backends.%s: backend names are lower-case letters, digits, '-' and '_'", n))
		}
		if b.SHA256 != "" {
			if raw, err := hex.DecodeString(b.SHA256); err != nil || len(raw) != 32 {
				errs = append(errs, fmt.Errorf("backends.%s.sha256: want 64 hex digits (sha256sum of the plugin binary)", n))
			}
			if b.Plugin == "" {
				errs = append(errs, fmt.Errorf("backends.%s.sha256: a pin needs a plugin binary (backends.%s.plugin)", n, n))
			}
		}
		for i, e := range b.Env {
			if !envRE.MatchString(e) {
				errs = append(errs, fmt.Errorf("backends.%s.env[%d]: %q: want an environment variable name, or a prefix and '*' (VAULT_*)", n, i, e))
			}
		}
	}
	if c.DefaultBackend != "" {
		if _, ok := c.Backends[c.DefaultBackend]; !ok {
			errs = append(errs, fmt.Errorf("default_backend: %q is not one of the backends", c.DefaultBackend))
		}
	}
	return errors.Join(errs...)
}

// PluginPath returns where backend name's plugin binary is, or "" for a
// built-in backend.
func (c *Config) PluginPath(name string) string {
	b := c.Backends[name]
	switch {
	case b.Plugin == "":
		return ""
	case filepath.IsAbs(b.Plugin) || c.PluginDir == "":
		return b.Plugin
	default:
		return filepath.Join(c.PluginDir, b.Plugin)
	}
}
