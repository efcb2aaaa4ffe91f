package vault_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"

	"github.com/keyship/keyship/backends/vault"
	"github.com/keyship/keyship/backends/vault/vaulttest"
	"github.com/keyship/keyship/plugin"
)

// versionsOf asks b for the versions of refs; the batch must not fail.
func versionsOf(t *testing.T, b plugin.Versioner, refs ...plugin.Ref) []plugin.VersionResult {
	t.Helper()
	res, err := b.Versions(context.Background(), refs)
	if err != nil || len(res) != len(refs) {
		t.Fatalf("Versions(%v): %d results, %v", refs, len(res), err)
	}
	return res
}

// auditReads counts the audited reads per Vault path since the log began.
func auditReads(t *testing.T, auditLog string) map[string]int {
	t.Helper()
	f, err := os.Open(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e struct {
			Type    string `json:"type"`
			Request struct {
				Path      string `json:"path"`
				Operation string `json:"operation"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type == "request" && e.Request.Operation == "read" {
			out[e.Request.Path]++
		}
	}
	return out
}

// TestVersionsReadsKV2MetadataOnly: a KV v2 ref's version is Get's version,
// told from one read of its metadata, the data never read; refs of one path
// cost one read; a new version shows; a deleted current version and a
// missing version are ErrNotFound as Get says; KV v1 refs are
// ErrUnsupported (read them to know).
func TestVersionsReadsKV2MetadataOnly(t *testing.T) {
	t.Parallel()
	// Its own server: an audit device enabled and disabled on the shared
	// one fails the other tests' requests in flight.
	s := vaulttest.Start(t, vaulttest.Options{})
	root := s.Client(t)
	if err := root.Sys().Mount("kv1", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	if err := root.Sys().EnableAuditWithOptions("versions-audit", &api.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": auditLog}}); err != nil {
		t.Fatal(err)
	}
	putKV2(t, root, "secret", "vers-meta/tls", map[string]any{"keystore": "a", "password": "pw-1"})
	putKV2(t, root, "secret", "vers-meta/tls", map[string]any{"keystore": "b", "password": "pw-2"})
	putKV1(t, root, "kv1", "vers-meta/tls", map[string]any{"keystore": "c"})
	b := configured(t, rootConfig(t, s))

	ks := plugin.Ref{Path: "secret/vers-meta/tls", Field: "keystore"}
	pw := plugin.Ref{Path: "/secret/vers-meta/tls", Field: "password"}
	old := plugin.Ref{Path: "secret/vers-meta/tls", Field: "keystore", Version: "1"}
	gone := plugin.Ref{Path: "secret/vers-meta/tls", Field: "keystore", Version: "9"}
	kv1 := plugin.Ref{Path: "kv1/vers-meta/tls", Field: "keystore"}
	missing := plugin.Ref{Path: "secret/vers-meta/none", Field: "keystore"}
	res := versionsOf(t, b, ks, pw, old, gone, kv1, missing)
	for i, ref := range []plugin.Ref{ks, pw, old} {
		if want := get(t, b, ref).Secret.Version; res[i].Err != nil || res[i].Version != want {
			t.Errorf("Versions of %v: %+v, Get's version is %q", ref, res[i], want)
		}
	}
	if res[0].Version != "secret/vers-meta/tls@2" || res[2].Version != "secret/vers-meta/tls@1" {
		t.Errorf("versions %q and %q, want secret/vers-meta/tls@2 and @1", res[0].Version, res[2].Version)
	}
	if !errors.Is(res[3].Err, plugin.ErrNotFound) || !strings.Contains(res[3].Err.Error(), "no version 9") {
		t.Errorf("a missing version: %v, want ErrNotFound naming the version", res[3].Err)
	}
	if !errors.Is(res[4].Err, plugin.ErrUnsupported) {
		t.Errorf("a KV v1 ref: %v, want ErrUnsupported", res[4].Err)
	}
	if !errors.Is(res[5].Err, plugin.ErrNotFound) {
		t.Errorf("a missing secret: %v, want ErrNotFound", res[5].Err)
	}

	// Only Versions from here: the audit log shows what it reads.
	before := auditReads(t, auditLog)
	putKV2(t, root, "secret", "vers-meta/tls", map[string]any{"keystore": "d", "password": "pw-3"})
	res = versionsOf(t, b, ks, pw, ks)
	if res[0].Version != "secret/vers-meta/tls@3" || res[1].Version != res[0].Version || res[2].Version != res[0].Version {
		t.Errorf("versions after a new version: %+v", res)
	}
	after := auditReads(t, auditLog)
	if n := after["secret/metadata/vers-meta/tls"] - before["secret/metadata/vers-meta/tls"]; n != 1 {
		t.Errorf("one Versions batch of three refs of one secret read its metadata %d times, want 1", n)
	}
	if n := after["secret/data/vers-meta/tls"] - before["secret/data/vers-meta/tls"]; n != 0 {
		t.Errorf("Versions read the secret's data %d times, want 0", n)
	}

	// A soft-deleted current version is not found, as Get says.
	if err := root.KVv2("secret").Delete(context.Background(), "vers-meta/tls"); err != nil {
		t.Fatal(err)
	}
	res = versionsOf(t, b, ks)
	g := get(t, b, ks)
	if !errors.Is(res[0].Err, plugin.ErrNotFound) || !errors.Is(g.Err, plugin.ErrNotFound) || !strings.Contains(res[0].Err.Error(), "soft delete") {
		t.Errorf("deleted current version: Versions %v, Get %v; want ErrNotFound (soft delete) from both", res[0].Err, g.Err)
	}
}

// TestVersionsWithoutMetadataPolicyFallsBack: a token that may read a KV v2
// secret's data but not its metadata gets ErrUnsupported (the caller reads
// the secret), and the backend says once how to make it cheap.
func TestVersionsWithoutMetadataPolicyFallsBack(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	root := s.Client(t)
	putKV2(t, root, "secret", "vers-policy/tls", map[string]any{"keystore": "a"})
	if err := root.Sys().PutPolicy("versions-data-only", `path "secret/data/vers-policy/tls" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"versions-data-only"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := captureLogger()
	b := vaultWithLogger(t, logger, map[string]string{"address": s.Addr, "auth.token_file": secretFile(t, tok.Auth.ClientToken), "kv_mounts": "secret=2"})
	ref := plugin.Ref{Path: "secret/vers-policy/tls", Field: "keystore"}
	for range 2 {
		res := versionsOf(t, b, ref)
		if !errors.Is(res[0].Err, plugin.ErrUnsupported) {
			t.Fatalf("Versions without metadata read: %v, want ErrUnsupported", res[0].Err)
		}
	}
	if n := strings.Count(logs.String(), "secret/metadata/vers-policy/tls"); n != 1 {
		t.Errorf("the metadata policy hint was logged %d times over two batches, want once:\n%s", n, logs)
	}
	res, err := plugin.VersionsOf(context.Background(), b, []plugin.Ref{ref})
	if err != nil || res[0].Err != nil || res[0].Version != "secret/vers-policy/tls@1" {
		t.Errorf("VersionsOf falls back to Get: %+v, %v", res, err)
	}
}

// vaultWithLogger returns a configured in-process backend logging to
// logger, closed when t ends.
func vaultWithLogger(t *testing.T, logger hclog.Logger, cfg map[string]string) *vault.Backend {
	t.Helper()
	b := vault.NewWithLogger(logger)
	if err := b.Configure(context.Background(), cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
