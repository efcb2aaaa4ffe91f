package replicas

import (
	"context"
	"fmt"
	"strconv"
	"sync"
)

// Memory is a State in this process's memory: `keyship serve --ha none`,
// one replica, nothing survives the process. Replica returns another client
// of the same memory, as a second replica would be of ZooKeeper, for tests.
type Memory struct {
	shared *memoryShared
	mu     sync.Mutex
	closed bool
	leads  map[*memoryCandidate]bool
}

type memoryShared struct {
	mu        sync.Mutex
	version   uint64
	records   map[Kind]map[string]memoryEntry
	elections map[string][]*memoryCandidate // head leads
}

type memoryEntry struct {
	data    []byte
	version uint64
}

// memoryCandidate is one Campaign: its won channel is closed when it
// reaches the head of its election's queue, its done channel when it
// leaves it.
type memoryCandidate struct {
	election  string
	won, done chan struct{}
	owner     *Memory
}

// NewMemory returns an empty Memory state.
func NewMemory() *Memory {
	return (&memoryShared{records: map[Kind]map[string]memoryEntry{}, elections: map[string][]*memoryCandidate{}}).client()
}

func (sh *memoryShared) client() *Memory {
	return &Memory{shared: sh, leads: map[*memoryCandidate]bool{}}
}

// Replica returns another client of m's memory, with its own leaderships.
func (m *Memory) Replica() *Memory { return m.shared.client() }

func (m *Memory) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Create implements State: all records or none.
func (m *Memory) Create(ctx context.Context, records ...Record) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	for _, r := range records {
		if err := CheckRecord(r.Kind, r.Name); err != nil {
			return err
		}
	}
	sh := m.shared
	sh.mu.Lock()
	defer sh.mu.Unlock()
	type key struct {
		kind Kind
		name string
	}
	seen := map[key]bool{}
	for _, r := range records {
		k := key{r.Kind, r.Name}
		if _, ok := sh.records[r.Kind][r.Name]; ok || seen[k] {
			return fmt.Errorf("%w: %s %s", ErrExists, r.Kind, short(r.Name))
		}
		seen[k] = true
	}
	for _, r := range records {
		if sh.records[r.Kind] == nil {
			sh.records[r.Kind] = map[string]memoryEntry{}
		}
		sh.version++
		sh.records[r.Kind][r.Name] = memoryEntry{data: append([]byte(nil), r.Data...), version: sh.version}
	}
	return nil
}

// Get implements State.
func (m *Memory) Get(ctx context.Context, kind Kind, name string) (Record, error) {
	if err := m.check(ctx); err != nil {
		return Record{}, err
	}
	sh := m.shared
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.records[kind][name]
	if !ok {
		return Record{}, fmt.Errorf("%w: %s %s", ErrNotFound, kind, short(name))
	}
	return Record{Kind: kind, Name: name, Data: append([]byte(nil), e.data...), Version: memoryVersion(e.version)}, nil
}

func memoryVersion(v uint64) Version { return Version(strconv.FormatUint(v, 10)) }

// Update implements State.
func (m *Memory) Update(ctx context.Context, r Record) (Version, error) {
	if err := m.check(ctx); err != nil {
		return "", err
	}
	sh := m.shared
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.records[r.Kind][r.Name]
	if !ok {
		return "", fmt.Errorf("%w: %s %s", ErrNotFound, r.Kind, short(r.Name))
	}
	if memoryVersion(e.version) != r.Version {
		return "", fmt.Errorf("%w: %s %s", ErrConflict, r.Kind, short(r.Name))
	}
	sh.version++
	sh.records[r.Kind][r.Name] = memoryEntry{data: append([]byte(nil), r.Data...), version: sh.version}
	return memoryVersion(sh.version), nil
}

// Delete implements State.
func (m *Memory) Delete(ctx context.Context, kind Kind, name string, v Version) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	sh := m.shared
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.records[kind][name]
	if !ok {
		return fmt.Errorf("%w: %s %s", ErrNotFound, kind, short(name))
	}
	if v != "" && memoryVersion(e.version) != v {
		return fmt.Errorf("%w: %s %s", ErrConflict, kind, short(name))
	}
	clear(e.data)
	delete(sh.records[kind], name)
	return nil
}

// List implements State.
func (m *Memory) List(ctx context.Context, kind Kind) ([]Record, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	sh := m.shared
	sh.mu.Lock()
	defer sh.mu.Unlock()
	out := make([]Record, 0, len(sh.records[kind]))
	for name, e := range sh.records[kind] {
		out = append(out, Record{Kind: kind, Name: name, Data: append([]byte(nil), e.data...), Version: memoryVersion(e.version)})
	}
	return out, nil
}

// Campaign implements State: candidates lead in the order they campaigned.
func (m *Memory) Campaign(ctx context.Context, election string) (Leadership, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	c := &memoryCandidate{election: election, won: make(chan struct{}), done: make(chan struct{}), owner: m}
	m.mu.Lock()
	m.leads[c] = true
	m.mu.Unlock()
	sh := m.shared
	sh.mu.Lock()
	sh.elections[election] = append(sh.elections[election], c)
	if len(sh.elections[election]) == 1 {
		close(c.won)
	}
	sh.mu.Unlock()
	select {
	case <-c.won:
		return c, nil
	case <-c.done:
		return nil, ErrClosed
	case <-ctx.Done():
		c.leave()
		return nil, ctx.Err()
	}
}

// leave takes c out of its election and hands the lead to the next.
func (c *memoryCandidate) leave() {
	sh := c.owner.shared
	sh.mu.Lock()
	q := sh.elections[c.election]
	for i, o := range q {
		if o != c {
			continue
		}
		q = append(q[:i:i], q[i+1:]...)
		sh.elections[c.election] = q
		close(c.done)
		if i == 0 && len(q) > 0 {
			close(q[0].won)
		}
		break
	}
	sh.mu.Unlock()
	c.owner.mu.Lock()
	delete(c.owner.leads, c)
	c.owner.mu.Unlock()
}

// Done implements Leadership.
func (c *memoryCandidate) Done() <-chan struct{} { return c.done }

// Resign implements Leadership.
func (c *memoryCandidate) Resign(context.Context) error { c.leave(); return nil }

// Close implements State: its leaderships and campaigns end, the memory
// stays for the other clients.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	var cs []*memoryCandidate
	for c := range m.leads {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	for _, c := range cs {
		c.leave()
	}
	return nil
}
