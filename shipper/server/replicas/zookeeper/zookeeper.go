// Package zookeeper keeps the state keyship serve replicas share in
// ZooKeeper, the engine Mesos, Marathon, DC/OS and Flink's ZooKeeper HA
// already run on (`keyship serve --ha zookeeper`).
//
// Its nodes, after Flink's layout (high-availability.zookeeper.path.root
// and high-availability.cluster-id):
//
//	<root>/<cluster-id>/job/<sha256 of the job key>     sealed job records
//	<root>/<cluster-id>/grant/<sha256 of the token>     sealed grants
//	<root>/<cluster-id>/leader/<election>/…n_0000000042  ephemeral sequential election nodes
//
// Create writes all its records in one multi-op (one Ship: its job and its
// tasks' grants, one transaction); a compare-and-set is a setData at the
// node's data version; leader election is ZooKeeper's recipe: the lowest
// ephemeral sequential node leads, each other candidate watches the one
// before it. A leadership ends when the client loses its connection (as
// Curator's, and so Flink's, does by default: past that point another
// replica may have taken over), and its node is then deleted as soon as the
// connection is back or the session expires.
package zookeeper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/keyship/keyship/shipper/server/replicas"
)

// Config says where the state lives.
type Config struct {
	// Servers is the quorum, host:port each (--ha-zookeeper-quorum).
	Servers []string
	// Root is the path of keyship's nodes (--ha-path-root, default
	// "/keyship").
	Root string
	// ClusterID separates keyship deployments sharing a root
	// (--ha-cluster-id, default "default").
	ClusterID string
	// SessionTimeout bounds how long a crashed replica keeps its
	// leadership (default 10s; the servers bound it to 2..20 ticks).
	SessionTimeout time.Duration
	// Digest, "user:password", makes the client authenticate with
	// ZooKeeper's digest scheme and gives the nodes from <root>/<cluster-id>
	// down an ACL that only that identity may read, write or delete. On a
	// ZooKeeper other services share (DC/OS's), it keeps them from deleting
	// records or putting back an older sealed one. Empty: open ACLs (the
	// records are sealed either way).
	Digest string
}

// DefaultSessionTimeout is Config.SessionTimeout's default.
const DefaultSessionTimeout = 10 * time.Second

// maxMulti bounds the bytes of one multi-op, below ZooKeeper's default
// jute.maxbuffer (1 MiB) for a whole request. A Create larger than this
// (a thousand tasks with a large spec) is split into several.
const maxMulti = 768 << 10

// isName reports whether s is 1 to 63 bytes, starting with a letter or
// digit, the rest letters, digits or a byte of more: a cluster id is
// isName(s, ".-_", true), an election isName(s, "-", false). It is written
// out rather than a regexp: a bounded repetition compiled at package init
// cost every keyship command 1500 allocations.
func isName(s, more string, upper bool) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', upper && 'A' <= c && c <= 'Z':
		case i > 0 && strings.IndexByte(more, c) >= 0:
		default:
			return false
		}
	}
	return true
}

// State is a replicas.State in ZooKeeper.
type State struct {
	conn    *zk.Conn
	base    string
	timeout time.Duration
	acl     []zk.ACL // on base and every node under it

	mu     sync.Mutex
	closed bool
	// session is closed, and replaced, whenever the client has a session
	// again after a lost connection (again waits on it).
	session chan struct{}
	// watchers are told when the connection drops: the leaderships end
	// and waiting campaigns start again.
	watchers map[*leadership]bool
}

var _ replicas.State = (*State)(nil)

// Open connects to the quorum and makes the state's parent nodes. ctx
// bounds the first connection.
func Open(ctx context.Context, cfg Config) (*State, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("zookeeper: no servers (--ha-zookeeper-quorum host:port,…)")
	}
	if cfg.Root == "" {
		cfg.Root = "/keyship"
	}
	if cfg.ClusterID == "" {
		cfg.ClusterID = "default"
	}
	if !strings.HasPrefix(cfg.Root, "/") || path.Clean(cfg.Root) != cfg.Root || strings.ContainsAny(cfg.Root, " \t\n") {
		return nil, fmt.Errorf("zookeeper: path root %q (--ha-path-root): want a clean absolute path like /keyship", cfg.Root)
	}
	if !isName(cfg.ClusterID, "._-", true) {
		return nil, fmt.Errorf("zookeeper: cluster id %q (--ha-cluster-id): want letters, digits, '.', '_' or '-', at most 63", cfg.ClusterID)
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	s := &State{base: path.Join(cfg.Root, cfg.ClusterID), timeout: cfg.SessionTimeout, watchers: map[*leadership]bool{}, acl: zk.WorldACL(zk.PermAll), session: make(chan struct{})}
	if cfg.Digest != "" {
		user, password, ok := strings.Cut(cfg.Digest, ":")
		if !ok || user == "" || password == "" {
			return nil, errors.New("zookeeper: the digest credentials must be user:password")
		}
		s.acl = zk.DigestACL(zk.PermAll, user, password)
	}
	connected := make(chan struct{}, 1)
	conn, _, err := zk.Connect(cfg.Servers, cfg.SessionTimeout,
		zk.WithLogger(quiet{}), zk.WithLogInfo(false),
		zk.WithMaxBufferSize(4<<20),
		zk.WithEventCallback(func(ev zk.Event) {
			if ev.Type != zk.EventSession {
				return
			}
			switch ev.State {
			case zk.StateHasSession:
				select {
				case connected <- struct{}{}:
				default:
				}
				s.mu.Lock()
				close(s.session)
				s.session = make(chan struct{})
				s.mu.Unlock()
			case zk.StateDisconnected, zk.StateExpired:
				s.connectionLost()
			}
		}))
	if err != nil {
		return nil, fmt.Errorf("zookeeper: %w", err)
	}
	s.conn = conn
	select {
	case <-connected:
	case <-ctx.Done():
		conn.Close()
		return nil, fmt.Errorf("%w: no ZooKeeper session with %s: %v", replicas.ErrUnavailable, strings.Join(cfg.Servers, ","), ctx.Err())
	}
	if cfg.Digest != "" {
		// go-zookeeper sends it again after every reconnection.
		if err := s.do(ctx, func() error { return conn.AddAuth("digest", []byte(cfg.Digest)) }); err != nil {
			conn.Close()
			return nil, fmt.Errorf("zookeeper: digest authentication: %w", err)
		}
	}
	for _, dir := range []string{s.base, s.dir(replicas.KindJob), s.dir(replicas.KindGrant), path.Join(s.base, "leader")} {
		if err := s.ensure(ctx, dir); err != nil {
			conn.Close()
			return nil, err
		}
	}
	// Fail now, not at the first Ship, when the nodes' ACL shuts this
	// identity out.
	if err := s.do(ctx, func() error { _, _, err := conn.Children(s.dir(replicas.KindJob)); return err }); err != nil {
		conn.Close()
		if errors.Is(err, zk.ErrNoAuth) {
			return nil, fmt.Errorf("zookeeper: %s: its ACL does not admit this client: check the digest credentials (user:password) all replicas share", s.base)
		}
		return nil, fmt.Errorf("zookeeper: %s: %w", s.base, err)
	}
	return s, nil
}

// quiet drops go-zookeeper's log lines (connection chatter; errors reach
// the caller as errors).
type quiet struct{}

func (quiet) Printf(string, ...any) {}

func (s *State) dir(kind replicas.Kind) string { return path.Join(s.base, string(kind)) }

func (s *State) node(kind replicas.Kind, name string) string {
	return path.Join(s.base, string(kind), name)
}

// ensure creates dir and its parents, persistent and empty: with the
// state's ACL from base down, open above it (the root may be shared). A
// node that exists is left as it is (creating it again would need the
// parent's create permission).
func (s *State) ensure(ctx context.Context, dir string) error {
	p := ""
	for _, part := range strings.Split(strings.TrimPrefix(dir, "/"), "/") {
		p += "/" + part
		var exists bool
		if err := s.do(ctx, func() (err error) { exists, _, err = s.conn.Exists(p); return err }); err != nil {
			return fmt.Errorf("zookeeper: %s: %w", p, err)
		}
		if exists {
			continue
		}
		acl := s.acl
		if len(p) < len(s.base) {
			acl = zk.WorldACL(zk.PermAll)
		}
		err := s.do(ctx, func() error {
			_, err := s.conn.Create(p, nil, 0, acl)
			return err
		})
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("zookeeper: create %s: %w", p, err)
		}
	}
	return nil
}

// do runs f, a go-zookeeper call (which takes no context), bounded by ctx,
// and maps connection errors to replicas.ErrUnavailable. A call ctx gives up
// on still completes or fails on its own within the session timeout.
func (s *State) do(ctx context.Context, f func() error) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return replicas.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- f() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, zk.ErrConnectionClosed), errors.Is(err, zk.ErrNoServer), errors.Is(err, zk.ErrSessionExpired),
		errors.Is(err, zk.ErrClosing), errors.Is(err, zk.ErrSessionMoved):
		return fmt.Errorf("%w: %w", replicas.ErrUnavailable, err)
	}
	return err
}

// again runs f through do and, when the connection to the server was lost
// under it (zk.ErrConnectionClosed: the server died or was cut off, or
// zk.ErrNoServer: no server took the client while the quorum elects a
// leader; go-zookeeper reconnects with the same session, as when the
// ZooKeeper leader is killed), runs it again once the
// client has a session again: within ctx and the session timeout, after
// which it returns the ErrUnavailable of the last try. lost reports that a
// try was cut off: a write may then have been applied before the
// connection dropped, which the caller must tell from another client's
// write.
func (s *State) again(ctx context.Context, f func() error) (lost bool, err error) {
	bound := time.NewTimer(s.timeout)
	defer bound.Stop()
	for {
		s.mu.Lock()
		session := s.session
		s.mu.Unlock()
		err = s.do(ctx, f)
		if !errors.Is(err, zk.ErrConnectionClosed) && !errors.Is(err, zk.ErrNoServer) {
			return lost, err
		}
		lost = true
		select {
		case <-session:
		case <-ctx.Done():
			return lost, err
		case <-bound.C:
			return lost, err
		}
	}
}

// ours reports whether every record of ops is in ZooKeeper with the data
// ops wrote: after a lost connection, whether the write was applied. A
// sealed record's bytes hold a random nonce, so no other write has them.
func (s *State) ours(ctx context.Context, paths []string, data [][]byte) bool {
	for i, p := range paths {
		var got []byte
		if _, err := s.again(ctx, func() (err error) { got, _, err = s.conn.Get(p); return err }); err != nil || !bytes.Equal(got, data[i]) {
			return false
		}
	}
	return true
}

func version(v int32) replicas.Version { return replicas.Version(strconv.FormatInt(int64(v), 10)) }

func parseVersion(v replicas.Version) (int32, error) {
	n, err := strconv.ParseInt(string(v), 10, 32)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("zookeeper: version %q is not a ZooKeeper data version", v)
	}
	return int32(n), nil
}

// Create implements replicas.State: one multi-op (several when the records
// pass maxMulti bytes).
func (s *State) Create(ctx context.Context, records ...replicas.Record) error {
	if len(records) == 0 {
		return nil
	}
	var batches [][]any
	var ops []any
	size := 0
	for _, r := range records {
		if err := replicas.CheckRecord(r.Kind, r.Name); err != nil {
			return err
		}
		p := s.node(r.Kind, r.Name)
		n := len(p) + len(r.Data) + 64
		if len(ops) > 0 && size+n > maxMulti {
			batches, ops, size = append(batches, ops), nil, 0
		}
		ops = append(ops, &zk.CreateRequest{Path: p, Data: r.Data, Acl: s.acl})
		size += n
	}
	batches = append(batches, ops)
	for _, ops := range batches {
		var res []zk.MultiResponse
		lost, err := s.again(ctx, func() (err error) { res, err = s.conn.Multi(ops...); return err })
		exists := errors.Is(err, zk.ErrNodeExists)
		for _, r := range res {
			exists = exists || errors.Is(r.Error, zk.ErrNodeExists)
		}
		if lost && exists && s.applied(ctx, ops) {
			continue // the try cut off by a lost connection was applied
		}
		for i, r := range res {
			if errors.Is(r.Error, zk.ErrNodeExists) {
				cr := ops[i].(*zk.CreateRequest)
				return fmt.Errorf("%w: %s", replicas.ErrExists, cr.Path)
			}
		}
		if errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("%w: %w", replicas.ErrExists, err)
		}
		if err != nil {
			return fmt.Errorf("zookeeper: create %d records: %w", len(ops), err)
		}
	}
	return nil
}

// applied reports whether the creates of ops are all in ZooKeeper with
// their data (see ours).
func (s *State) applied(ctx context.Context, ops []any) bool {
	paths, data := make([]string, len(ops)), make([][]byte, len(ops))
	for i, op := range ops {
		cr := op.(*zk.CreateRequest)
		paths[i], data[i] = cr.Path, cr.Data
	}
	return s.ours(ctx, paths, data)
}

// Get implements replicas.State.
func (s *State) Get(ctx context.Context, kind replicas.Kind, name string) (replicas.Record, error) {
	if err := replicas.CheckRecord(kind, name); err != nil {
		return replicas.Record{}, err
	}
	var data []byte
	var st *zk.Stat
	_, err := s.again(ctx, func() (err error) { data, st, err = s.conn.Get(s.node(kind, name)); return err })
	if errors.Is(err, zk.ErrNoNode) {
		return replicas.Record{}, fmt.Errorf("%w: %s %s", replicas.ErrNotFound, kind, name)
	}
	if err != nil {
		return replicas.Record{}, fmt.Errorf("zookeeper: get %s %s: %w", kind, name, err)
	}
	return replicas.Record{Kind: kind, Name: name, Data: data, Version: version(st.Version)}, nil
}

// Update implements replicas.State: setData at r.Version.
func (s *State) Update(ctx context.Context, r replicas.Record) (replicas.Version, error) {
	if err := replicas.CheckRecord(r.Kind, r.Name); err != nil {
		return "", err
	}
	v, err := parseVersion(r.Version)
	if err != nil {
		return "", err
	}
	var st *zk.Stat
	p := s.node(r.Kind, r.Name)
	lost, err := s.again(ctx, func() (err error) { st, err = s.conn.Set(p, r.Data, v); return err })
	if lost && errors.Is(err, zk.ErrBadVersion) {
		// The try cut off may have been applied: then the node holds r's
		// data at the version after v.
		var data []byte
		var now *zk.Stat
		if _, gerr := s.again(ctx, func() (err error) { data, now, err = s.conn.Get(p); return err }); gerr == nil && bytes.Equal(data, r.Data) && now.Version == v+1 {
			return version(now.Version), nil
		}
	}
	switch {
	case errors.Is(err, zk.ErrBadVersion):
		return "", fmt.Errorf("%w: %s %s", replicas.ErrConflict, r.Kind, r.Name)
	case errors.Is(err, zk.ErrNoNode):
		return "", fmt.Errorf("%w: %s %s", replicas.ErrNotFound, r.Kind, r.Name)
	case err != nil:
		return "", fmt.Errorf("zookeeper: set %s %s: %w", r.Kind, r.Name, err)
	}
	return version(st.Version), nil
}

// Delete implements replicas.State.
func (s *State) Delete(ctx context.Context, kind replicas.Kind, name string, v replicas.Version) error {
	if err := replicas.CheckRecord(kind, name); err != nil {
		return err
	}
	zv := int32(-1)
	if v != "" {
		var err error
		if zv, err = parseVersion(v); err != nil {
			return err
		}
	}
	lost, err := s.again(ctx, func() error { return s.conn.Delete(s.node(kind, name), zv) })
	if lost && errors.Is(err, zk.ErrNoNode) {
		return nil // the try cut off by a lost connection deleted it
	}
	switch {
	case errors.Is(err, zk.ErrBadVersion):
		return fmt.Errorf("%w: %s %s", replicas.ErrConflict, kind, name)
	case errors.Is(err, zk.ErrNoNode):
		return fmt.Errorf("%w: %s %s", replicas.ErrNotFound, kind, name)
	case err != nil:
		return fmt.Errorf("zookeeper: delete %s %s: %w", kind, name, err)
	}
	return nil
}

// List implements replicas.State: the children, then their data (the reads
// pipelined on the one connection).
func (s *State) List(ctx context.Context, kind replicas.Kind) ([]replicas.Record, error) {
	var names []string
	_, err := s.again(ctx, func() (err error) { names, _, err = s.conn.Children(s.dir(kind)); return err })
	if err != nil {
		return nil, fmt.Errorf("zookeeper: list %s: %w", kind, err)
	}
	out := make([]replicas.Record, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i], errs[i] = s.Get(ctx, kind, name)
		}()
	}
	wg.Wait()
	recs := out[:0]
	for i, r := range out {
		switch {
		case errs[i] == nil:
			recs = append(recs, r)
		case errors.Is(errs[i], replicas.ErrNotFound): // deleted since listed
		default:
			return nil, errs[i]
		}
	}
	return recs, nil
}

// leadership is one campaign's node, from its creation until it ends.
type leadership struct {
	s    *State
	node string
	lost chan struct{} // closed when the connection drops or the node goes
	once sync.Once
	done chan struct{} // closed when the leadership ends
}

func (l *leadership) end() { l.once.Do(func() { close(l.done) }) }

// Done implements replicas.Leadership.
func (l *leadership) Done() <-chan struct{} { return l.done }

// Resign implements replicas.Leadership: its node is deleted, so the next
// candidate leads at once.
func (l *leadership) Resign(ctx context.Context) error {
	l.end()
	l.s.forget(l)
	err := l.s.do(ctx, func() error { return l.s.conn.Delete(l.node, -1) })
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		// The session's end removes it if this did not.
		go l.s.deleteLater(l.node)
		return fmt.Errorf("zookeeper: resign: %w", err)
	}
	return nil
}

func (s *State) watch(l *leadership) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return replicas.ErrClosed
	}
	s.watchers[l] = true
	return nil
}

func (s *State) forget(l *leadership) {
	s.mu.Lock()
	delete(s.watchers, l)
	s.mu.Unlock()
}

// connectionLost runs on go-zookeeper's event goroutine: it must not call
// the connection.
func (s *State) connectionLost() {
	s.mu.Lock()
	ws := s.watchers
	s.watchers = map[*leadership]bool{}
	s.mu.Unlock()
	for l := range ws {
		close(l.lost)
	}
}

// deleteLater deletes an election node once the connection is back; it
// gives up when the node is gone, the state is closed, or the session has
// surely expired (which deletes it).
func (s *State) deleteLater(node string) {
	deadline := time.Now().Add(2 * s.timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		err := s.do(ctx, func() error { return s.conn.Delete(node, -1) })
		cancel()
		if err == nil || errors.Is(err, zk.ErrNoNode) || errors.Is(err, replicas.ErrClosed) {
			return
		}
		time.Sleep(s.timeout / 10)
	}
}

// sequence returns the sequence number ZooKeeper appended to an election
// node's name.
func sequence(name string) string {
	if len(name) < 10 {
		return name
	}
	return name[len(name)-10:]
}

// Campaign implements replicas.State with ZooKeeper's election recipe. When
// the connection drops while it waits, it starts again with a new node once
// the connection is back (or fails with ctx).
func (s *State) Campaign(ctx context.Context, election string) (replicas.Leadership, error) {
	if !isName(election, "-", false) {
		return nil, fmt.Errorf("zookeeper: election name %q: want lowercase letters, digits and '-'", election)
	}
	dir := path.Join(s.base, "leader", election)
	if err := s.ensure(ctx, dir); err != nil {
		return nil, err
	}
	for {
		l, err := s.campaign(ctx, dir)
		if errors.Is(err, replicas.ErrUnavailable) && ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(s.timeout / 20):
			}
			continue
		}
		return l, err
	}
}

func (s *State) campaign(ctx context.Context, dir string) (*leadership, error) {
	l := &leadership{s: s, lost: make(chan struct{}), done: make(chan struct{})}
	if err := s.watch(l); err != nil {
		return nil, err
	}
	err := s.do(ctx, func() (err error) {
		l.node, err = s.conn.CreateProtectedEphemeralSequential(dir+"/n_", nil, s.acl)
		return err
	})
	if err != nil {
		s.forget(l)
		return nil, fmt.Errorf("zookeeper: campaign: %w", err)
	}
	giveUp := func(err error) (*leadership, error) {
		s.forget(l)
		l.end()
		go s.deleteLater(l.node)
		return nil, err
	}
	me := path.Base(l.node)
	for {
		var children []string
		if err := s.do(ctx, func() (err error) { children, _, err = s.conn.Children(dir); return err }); err != nil {
			return giveUp(fmt.Errorf("zookeeper: campaign: %w", err))
		}
		sort.Slice(children, func(i, j int) bool { return sequence(children[i]) < sequence(children[j]) })
		i := sort.SearchStrings(mapSeq(children), sequence(me))
		if i >= len(children) || children[i] != me {
			return giveUp(fmt.Errorf("%w: zookeeper: campaign: the election node %s is gone", replicas.ErrUnavailable, me))
		}
		if i == 0 {
			break
		}
		// Watch the candidate before this one; when it goes, look again.
		var exists bool
		var ev <-chan zk.Event
		if err := s.do(ctx, func() (err error) { exists, _, ev, err = s.conn.ExistsW(path.Join(dir, children[i-1])); return err }); err != nil {
			return giveUp(fmt.Errorf("zookeeper: campaign: %w", err))
		}
		if !exists {
			continue
		}
		select {
		case <-ev:
		case <-l.lost:
			return giveUp(fmt.Errorf("%w: zookeeper: the connection dropped during the campaign", replicas.ErrUnavailable))
		case <-l.done:
			return giveUp(replicas.ErrClosed)
		case <-ctx.Done():
			return giveUp(ctx.Err())
		}
	}
	// Leading: the leadership ends with the connection or the node.
	var ev <-chan zk.Event
	var exists bool
	if err := s.do(ctx, func() (err error) { exists, _, ev, err = s.conn.ExistsW(l.node); return err }); err != nil || !exists {
		return giveUp(fmt.Errorf("%w: zookeeper: campaign: the election node is gone (%v)", replicas.ErrUnavailable, err))
	}
	go func() {
		select {
		case <-l.lost:
			s.forget(l)
			l.end()
			s.deleteLater(l.node)
		case <-ev:
			s.forget(l)
			l.end()
		case <-l.done:
		}
	}()
	return l, nil
}

func mapSeq(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = sequence(n)
	}
	return out
}

// Close implements replicas.State: the session ends, which deletes its
// election nodes at once.
func (s *State) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ws := s.watchers
	s.watchers = map[*leadership]bool{}
	s.mu.Unlock()
	for l := range ws {
		l.end()
	}
	s.conn.Close()
	return nil
}
