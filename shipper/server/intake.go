package server

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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

// checkRoom refuses, before anything is built or kept, a Ship whose fetch
// grants would not fit under the fetch server's --max-grants: a refused
// Ship holds no job and no secrets. (Two Ships racing for the last grants
// may both pass here; the loser is then refused by Publish after its build.)
func (s *Server) checkRoom(r Request) error {
	if s.fetch == nil || !wantsFetch(r.Targets) {
		return nil
	}
	if err := s.fetch.Room(len(r.Tasks)); err != nil {
		if errors.Is(err, fetch.ErrGrantLimit) {
			return fmt.Errorf("%w (%w)", err, shipper.ErrLimit)
		}
		return err
	}
	return nil
}

// wantsFetch says whether targets ask for TARGET_FETCH (none named does).
func wantsFetch(targets []Target) bool {
	return len(targets) == 0 || slices.Contains(targets, TargetFetch)
}
