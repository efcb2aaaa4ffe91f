package resolve_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyship/keyship/host/resolve"
	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

// TestVersionsOncePerRefWithoutKeepingData: the same ref in several fields
// and spelled with or without the default backend is asked once; a backend
// without Versioner is read with one Get per backend; a missing ref carries
// its error; a backend that is not configured fails its refs only.
func TestVersionsOncePerRefWithoutKeepingData(t *testing.T) {
	file := newStore(map[string]string{"/a": "secret-a", "/b": "secret-b"})
	r := resolve.New(backends{"file": file})
	fields := []spec.Field{
		field(t, "ks", "/a"), field(t, "ks_pw", "file:/a"), field(t, "ts", "/b"),
		field(t, "missing", "/nope"), field(t, "other", "vault:secret/x#f"),
		{Name: "inline", Value: []byte("inline-password")},
	}
	got := r.Versions(context.Background(), fields)
	for _, ref := range []string{"/a", "file:/a", "/b"} {
		f := field(t, "", ref)
		if v := got[f.Ref]; v.Err != nil || v.Version != "v1" {
			t.Errorf("version of %s: %+v, want v1", ref, v)
		}
	}
	if v := got[field(t, "", "/nope").Ref]; !errors.Is(v.Err, plugin.ErrNotFound) {
		t.Errorf("version of a missing ref: %+v, want ErrNotFound", v)
	}
	if v := got[field(t, "", "vault:secret/x#f").Ref]; !errors.Is(v.Err, plugin.ErrInvalidConfig) {
		t.Errorf("version of a ref of an unconfigured backend: %+v, want ErrInvalidConfig", v)
	}
	if len(got) != 5 {
		t.Errorf("%d versions for 5 refs (the inline setting has none): %v", len(got), got)
	}
	if file.gets != 1 || file.reads["/a"] != 1 {
		t.Errorf("file backend: %d Gets, /a read %d times; want one Get, /a once", file.gets, file.reads["/a"])
	}
}

// TestSharedReadsOnceCopiesForEach: Resolves under one Shared read a ref
// once; each gets its own copy of the bytes (zeroing one leaves the other),
// and Zero clears what the Shared kept.
func TestSharedReadsOnceCopiesForEach(t *testing.T) {
	file := newStore(map[string]string{"/a": "secret-a", "/b": "secret-b"})
	r := resolve.New(backends{"file": file})
	shared := resolve.NewShared()
	ctx := resolve.WithShared(context.Background(), shared)
	fields := []spec.Field{field(t, "ks", "/a"), field(t, "ts", "/b")}
	var got [4]map[spec.Ref]plugin.Secret
	done := make(chan int)
	for i := range got {
		go func() {
			s, err := r.Resolve(ctx, fields)
			if err != nil {
				t.Error(err)
			}
			got[i] = s
			done <- i
		}()
	}
	for range got {
		<-done
	}
	if file.reads["/a"] != 1 || file.reads["/b"] != 1 {
		t.Fatalf("four Resolves under one Shared read /a %d and /b %d times, want once each", file.reads["/a"], file.reads["/b"])
	}
	a := fields[0].Ref
	resolve.Zero(got[0])
	for i := 1; i < len(got); i++ {
		if string(got[i][a].Data) != "secret-a" {
			t.Fatalf("Resolve %d's copy of /a is %q after another Resolve zeroed its own", i, got[i][a].Data)
		}
	}
	// Without the Shared, each Resolve reads.
	if _, err := r.Resolve(context.Background(), fields); err != nil || file.reads["/a"] != 2 {
		t.Fatalf("a Resolve without the Shared: %v, /a read %d times, want 2", err, file.reads["/a"])
	}
	shared.Zero()
}
