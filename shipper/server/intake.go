package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyship/keyship/host/materialize"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper"
	"github.com/keyship/keyship/shipper/fetch"
)

// maxTTLSeconds is the largest ttl_seconds a request may ask for.
const maxTTLSeconds = int64(maxTTL / time.Second)

// checkTTL refuses a ttl_seconds outside 0 (the default) to maxTTLSeconds:
// a larger one would overflow a time.Duration near 9.2e9 seconds.
func checkTTL(ttl int64) error {
	if ttl < 0 || ttl > maxTTLSeconds {
		return fmt.Errorf("ttl_seconds: %d is out of range; at most %d (%s), 0 for the default (%s)", ttl, maxTTLSeconds, maxTTL, DefaultTTL)
	}
	return nil
}

// checkTargets refuses a target that names none of the API's (a number
// from a newer or a broken client); none at all means TARGET_FETCH.
func checkTargets(targets []hostv1.Target) error {
	for i, t := range targets {
		if _, known := hostv1.Target_name[int32(t)]; !known || t == hostv1.Target_TARGET_UNSPECIFIED {
			return fmt.Errorf("targets[%d]: %d is not a target; want one of %s", i, t, strings.Join(targetNames(), ", "))
		}
	}
	return nil
}

// targetNames are the API's targets, TARGET_UNSPECIFIED aside.
func targetNames() []string {
	var out []string
	for n, name := range hostv1.Target_name {
		if n != 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// reserveRoom reserves, before anything is built or kept, the fetch grants
// of a Ship that asks for TARGET_FETCH, and refuses the Ship when they would
// not fit under the fetch server's --max-grants: a refused Ship holds no job
// and no secrets and reads no backend, even when Ships race for the last
// grants. The reservation rides in the returned context to publish; the
// caller calls release once the Ship is delivered or failed.
func (s *Server) reserveRoom(ctx context.Context, r Request) (_ context.Context, release func(), err error) {
	if s.fetch == nil || !wantsFetch(r.Targets) {
		return ctx, func() {}, nil
	}
	res, err := s.fetch.Reserve(len(r.Tasks))
	if err != nil {
		if errors.Is(err, fetch.ErrGrantLimit) {
			err = fmt.Errorf("%w (%w)", err, shipper.ErrLimit)
		}
		return ctx, nil, err
	}
	return context.WithValue(ctx, reservationKey{}, res), res.Release, nil
}

type reservationKey struct{}

// publish publishes a job's fetch URIs in the room the Ship of ctx
// reserved (reserveRoom), or, without one (a watched job's new set), in
// room of their own.
func (s *Server) publish(ctx context.Context, jobID string, tasks []string, files []materialize.File, uses int, ttl time.Duration) (map[string][]fetch.URI, error) {
	if res, ok := ctx.Value(reservationKey{}).(*fetch.Reservation); ok {
		return res.PublishJob(jobID, tasks, files, uses, ttl)
	}
	return s.fetch.PublishJob(jobID, tasks, files, uses, ttl)
}

// wantsFetch says whether targets ask for TARGET_FETCH (none named does).
func wantsFetch(targets []Target) bool {
	return len(targets) == 0 || slices.Contains(targets, TargetFetch)
}
