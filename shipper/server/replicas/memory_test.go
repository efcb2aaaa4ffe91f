package replicas_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keyship/keyship/shipper/server/replicas"
	"github.com/keyship/keyship/shipper/server/replicas/replicastest"
)

func TestMemoryConformance(t *testing.T) {
	replicastest.Run(t, func(t *testing.T) replicastest.Shared {
		m := replicas.NewMemory()
		return replicastest.Shared{
			Open: func(testing.TB) replicas.State { return m.Replica() },
			// A Memory client ends its leaderships only by closing.
			Crashable: func(testing.TB) (replicas.State, func()) {
				r := m.Replica()
				return r, func() { _ = r.Close() }
			},
			Raw: func(t testing.TB) []byte {
				var all []byte
				for _, k := range replicas.Kinds {
					recs, err := m.Replica().List(context.Background(), k)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range recs {
						all = append(all, r.Data...)
					}
				}
				return all
			},
		}
	})
}

func TestSealedExpiry(t *testing.T) {
	for _, data := range [][]byte{nil, {}, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 0}, bytes.Repeat([]byte{1}, 8)} {
		if _, ok := replicas.SealedExpiry(data); ok {
			t.Errorf("SealedExpiry(%x) found an expiry", data)
		}
	}
	m := replicas.NewMemory()
	s, err := replicas.NewStore(m, replicastest.Key)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.UnixMilli(1_800_000_000_123)
	if err := s.Publish(context.Background(), replicastest.Job("j", exp, "spec"), nil); err != nil {
		t.Fatal(err)
	}
	r, err := m.Get(context.Background(), replicas.KindJob, replicas.JobName("j"))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := replicas.SealedExpiry(r.Data); !ok || !got.Equal(exp) {
		t.Errorf("SealedExpiry = %v, %v; want %v", got, ok, exp)
	}
}

func TestNewStoreKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := replicas.NewStore(replicas.NewMemory(), make([]byte, n)); err == nil {
			t.Errorf("NewStore took a %d-byte key", n)
		}
	}
}

// BenchmarkPublishConsume is one Ship's record put (a job and one task's
// grant) and one fetch's compare-and-set, against Memory.
func BenchmarkPublishConsume(b *testing.B) {
	s, err := replicas.NewStore(replicas.NewMemory(), replicastest.Key)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	spec := string(bytes.Repeat([]byte("x"), 2048))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("job-%d", i)
		grants, _ := replicastest.Grants(id, 1, exp)
		if err := s.Publish(ctx, replicastest.Job(id, exp, spec), grants); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Consume(ctx, grants[0].TokenHash, "keystore.jks"); err != nil {
			b.Fatal(err)
		}
	}
}
