package server

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"time"
)

// A Ship of a job already built still parsed its spec only to find the
// job's key, most of its handler's own work. The key of a request that
// succeeded is remembered by a digest of every input readRequest and jobKey
// read (requestDigest), so an identical request, which would parse to the
// same spec.Request and name the same job, goes straight to the job. A
// request that differs in any byte of those inputs is parsed, as before.

// digest is requestDigest's.
type digest [sha256.Size]byte

// requestDigest is the SHA-256 of everything readRequest and jobKey read
// from r, each field length-prefixed: the job id, the spec, the dialect,
// the consumer, the Spark and Flink releases, the Kubernetes PEM choice,
// and every task's id, role and hosts. (TestRequestDigestCoversEveryInput
// fails when spec.Task or Request gains a field it does not cover.)
func requestDigest(r Request) digest {
	h := sha256.New()
	str(h, r.JobID)
	bytesField(h, r.Spec)
	str(h, r.Dialect)
	str(h, r.Consumer)
	str(h, r.SparkVersion)
	str(h, r.FlinkVersion)
	if r.Kubernetes.PEM {
		str(h, "pem")
	} else {
		str(h, "")
	}
	num(h, len(r.Tasks))
	for _, t := range r.Tasks {
		str(h, t.ID)
		str(h, t.Role)
		num(h, len(t.Hosts))
		for _, host := range t.Hosts {
			str(h, host)
		}
	}
	var d digest
	h.Sum(d[:0])
	return d
}

func num(h hash.Hash, n int) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
}

func str(h hash.Hash, s string) {
	num(h, len(s))
	_, _ = h.Write([]byte(s))
}

func bytesField(h hash.Hash, b []byte) {
	num(h, len(b))
	h.Write(b)
}

// maxKnown bounds the remembered digests (each is 32 bytes and a key):
// a job shipped with many different task lists is remembered for the
// first ones, and parsed for the rest.
const maxKnown = 1 << 16

// knownJob returns the live job an identical request was shipped to, or
// nil.
func (s *Server) knownJob(d digest) *job {
	s.mu.Lock()
	key, ok := s.known[d]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	return s.lookupBuilt(key)
}

// remember notes that requests with digest d name the job at key.
func (s *Server) remember(d digest, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.known) < maxKnown {
		s.known[d] = key
	}
}

// sweepKnownLocked forgets the digests of jobs no longer held (s.mu held).
func (s *Server) sweepKnownLocked(now time.Time) {
	for d, key := range s.known {
		if j, ok := s.jobs[key]; !ok || !now.Before(j.expires) {
			delete(s.known, d)
		}
	}
}

// noteBuilt records the job's refs and versions for the call's audit
// record, as noteJob does for a request it parsed.
func noteBuilt(ctx context.Context, j *job) {
	rec, _ := ctx.Value(recordKey{}).(*record)
	if rec == nil {
		return
	}
	rec.mu.Lock()
	rec.inputs = j.shipment.Bundle.Inputs
	rec.mu.Unlock()
}
