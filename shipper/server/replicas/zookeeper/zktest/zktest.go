// Package zktest runs a real ZooKeeper ensemble for tests: Debian's
// zookeeper package (3.8), each server a QuorumPeerMain JVM started directly
// (no zkServer.sh, no /etc/zookeeper) on loopback ports in a temporary
// directory, killed when the test ends.
//
//	func TestX(t *testing.T) {
//		e := zktest.Start(t, 3) // 3 servers; skipped without Java or ZooKeeper
//		conn, _, _ := zk.Connect(e.Servers, 4*time.Second)
//		e.Kill(e.Leader(t))     // kill -9 the leader
//	}
//
// The binaries are $JAVA_BIN or java on PATH, and $ZOOKEEPER_JAR or
// /usr/share/java/zookeeper.jar (whose manifest names its dependencies; the
// package libzookeeper-java). Without them the test is skipped, or fails
// when KEYSHIP_REQUIRE_PEERS=1 (make test, CI). Server logs, which hold no
// secrets, are printed only when a start fails.
package zktest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequirePeersEnv turns a missing binary from a skip into a failure when "1".
const RequirePeersEnv = "KEYSHIP_REQUIRE_PEERS"

// Tick is the ensemble's tickTime. ZooKeeper bounds a session's timeout to
// 2..20 ticks, so clients may ask for 1 to 10 seconds.
const Tick = 500 * time.Millisecond

// startTimeout bounds the ensemble's start: a few seconds on an idle 2-core
// machine (the JVMs), much more when it is shared.
const startTimeout = 3 * time.Minute

// DefaultJar is where Debian's libzookeeper-java puts ZooKeeper.
const DefaultJar = "/usr/share/java/zookeeper.jar"

// Binaries returns the java and the ZooKeeper jar to run, or says how to get
// them.
func Binaries() (java, jar string, err error) {
	java = os.Getenv("JAVA_BIN")
	if java == "" {
		if java, err = exec.LookPath("java"); err != nil {
			return "", "", errors.New("no java: set JAVA_BIN, put java on PATH, or run tools/install-deps.sh (openjdk-17-jdk-headless)")
		}
	}
	jar = os.Getenv("ZOOKEEPER_JAR")
	if jar == "" {
		jar = DefaultJar
	}
	if _, err := os.Stat(jar); err != nil {
		return "", "", fmt.Errorf("no ZooKeeper jar at %s: set ZOOKEEPER_JAR or run tools/install-deps.sh (Debian's zookeeper)", jar)
	}
	return java, jar, nil
}

// Ensemble is a running ZooKeeper ensemble.
type Ensemble struct {
	// Servers are the client addresses, 127.0.0.1:<port>, in server id
	// order (id i+1 at index i).
	Servers []string
	// DataDirs are the servers' data directories (snapshots, txn logs).
	DataDirs []string
	// StartTime is how long the ensemble took to serve.
	StartTime time.Duration

	dir     string
	noFsync bool
	mu      sync.Mutex
	procs   []*exec.Cmd
	exited  []chan struct{}
	logs    []string
}

// Option changes how Start runs the servers.
type Option func(*Ensemble)

// NoFsync makes the servers write their transaction logs without fsync
// (forceSync=no): for benchmarks that separate keyship's cost of a
// ZooKeeper write from the disk's. Never in production.
func NoFsync() Option { return func(e *Ensemble) { e.noFsync = true } }

// Start starts an ensemble of n servers and stops it when t ends. It skips
// t when Java or ZooKeeper is missing (fails with KEYSHIP_REQUIRE_PEERS=1),
// and fails t when the ensemble does not start.
func Start(t testing.TB, n int, opts ...Option) *Ensemble {
	t.Helper()
	java, jar, err := Binaries()
	if err != nil {
		if os.Getenv(RequirePeersEnv) == "1" {
			t.Fatalf("%s=1 and %v", RequirePeersEnv, err)
		}
		t.Skip(err.Error())
	}
	e, err := start(java, jar, n, opts)
	if err != nil {
		t.Fatalf("zktest: %v", err)
	}
	t.Cleanup(e.Stop)
	t.Logf("zktest: %d ZooKeeper servers ready in %s", n, e.StartTime.Round(10*time.Millisecond))
	return e
}

func start(java, jar string, n int, opts []Option) (*Ensemble, error) {
	began := time.Now()
	dir, err := os.MkdirTemp("", "keyship-zktest-")
	if err != nil {
		return nil, err
	}
	e := &Ensemble{dir: dir}
	for _, o := range opts {
		o(e)
	}
	var lastErr error
	for try := range 3 { // a free port can be taken between choosing and binding it
		if lastErr = e.startServers(java, jar, n, try); lastErr == nil {
			e.StartTime = time.Since(began)
			return e, nil
		}
		e.killAll()
	}
	e.Stop()
	return nil, lastErr
}

func (e *Ensemble) startServers(java, jar string, n, try int) error {
	ports, err := freePorts(3 * n)
	if err != nil {
		return err
	}
	e.Servers, e.DataDirs = nil, nil
	var members strings.Builder
	for i := range n {
		fmt.Fprintf(&members, "server.%d=127.0.0.1:%d:%d\n", i+1, ports[3*i+1], ports[3*i+2])
	}
	for i := range n {
		data := filepath.Join(e.dir, fmt.Sprintf("try%d-server%d", try, i+1))
		if err := os.MkdirAll(data, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte(fmt.Sprintf("%d\n", i+1)), 0o600); err != nil {
			return err
		}
		cfg := fmt.Sprintf(`tickTime=%d
initLimit=20
syncLimit=10
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr,ruok,cons,mntr
preAllocSize=1024
standaloneEnabled=false
forceSync=%s
%s`, Tick.Milliseconds(), data, ports[3*i], map[bool]string{false: "yes", true: "no"}[e.noFsync], members.String())
		cfgPath := filepath.Join(data, "zoo.cfg")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return err
		}
		e.Servers = append(e.Servers, fmt.Sprintf("127.0.0.1:%d", ports[3*i]))
		e.DataDirs = append(e.DataDirs, data)
		cp := jar
		// slf4j-simple, from libslf4j-java (a dependency of the package),
		// sends the server's log to its log file instead of nowhere.
		if _, err := os.Stat("/usr/share/java/slf4j-simple.jar"); err == nil {
			cp += ":/usr/share/java/slf4j-simple.jar"
		}
		if err := e.run(java, fmt.Sprintf("zookeeper-%d", i+1),
			"-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
			"-Dzookeeper.jmx.log4j.disable=true", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
			"-cp", cp, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfgPath); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ready := 0
		for i := range n {
			if m, err := e.mode(i); err == nil && (m == "leader" || m == "follower") {
				ready++
			}
		}
		if ready == n {
			return nil
		}
		for i := range n {
			select {
			case <-e.exited[i]:
				return fmt.Errorf("ZooKeeper server %d exited:\n%s", i+1, tail(e.logs[i]))
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the ensemble did not serve within %s; server 1's log:\n%s", startTimeout, tail(e.logs[0]))
		case <-tick.C:
		}
	}
}

// run starts a process whose output goes to a log file in e.dir.
func (e *Ensemble) run(bin, name string, args ...string) error {
	log := filepath.Join(e.dir, fmt.Sprintf("%s-%d.log", name, len(e.logs)))
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// The kernel kills the JVM if the test binary dies without Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	e.mu.Lock()
	e.procs, e.exited, e.logs = append(e.procs, cmd), append(e.exited, exited), append(e.logs, log)
	e.mu.Unlock()
	return nil
}

// mode asks server i (index into Servers) for its mode: leader, follower,
// standalone, or an error when it does not serve.
func (e *Ensemble) mode(i int) (string, error) {
	out, err := fourLetters(e.Servers[i], "srvr")
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m, ok := strings.CutPrefix(sc.Text(), "Mode: "); ok {
			return strings.TrimSpace(m), nil
		}
	}
	return "", fmt.Errorf("server %d: %q", i+1, strings.TrimSpace(out))
}

func fourLetters(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, cmd); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// Leader returns the index (into Servers) of the ensemble's leader, failing
// t when none leads within a minute.
func (e *Ensemble) Leader(t testing.TB) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for i := range e.Servers {
			if m, err := e.mode(i); err == nil && m == "leader" {
				return i
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("zktest: no ZooKeeper server leads")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Zxid returns the ensemble's last transaction id: each write transaction
// (a create, a setData, one whole multi-op) advances it by one. It waits
// until every server that answers, a majority at least, reports the same:
// each applies a commit on its own time, so right after a write that a
// follower answered, the leader may not have applied it yet.
// TestOneMultiOpPerShip once read 0 writes for a Ship, then 1 and 2 for
// the next two, under load: the first write counted late.
func (e *Ensemble) Zxid(t testing.TB) int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var seen []int64
		for _, addr := range e.Servers {
			out, err := fourLetters(addr, "srvr")
			if err != nil {
				continue // killed, or not up yet
			}
			if n, ok := zxidOf(t, out); ok {
				seen = append(seen, n)
			}
		}
		if len(seen) > len(e.Servers)/2 && !slices.ContainsFunc(seen, func(n int64) bool { return n != seen[0] }) {
			return seen[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("zktest: the servers' zxids do not settle within 30s: %v", seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// zxidOf reads the Zxid line of a srvr answer; ok is false for a server
// that is not serving.
func zxidOf(t testing.TB, srvr string) (zxid int64, ok bool) {
	t.Helper()
	for _, line := range strings.Split(srvr, "\n") {
		if v, found := strings.CutPrefix(line, "Zxid: "); found {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 0, 64)
			if err != nil {
				t.Fatalf("zktest: srvr: %q: %v", line, err)
			}
			return n, true
		}
	}
	return 0, false
}

// Mntr returns server i's `mntr` figures (zk_znode_count,
// zk_outstanding_requests, ...), by name.
func (e *Ensemble) Mntr(i int) (map[string]string, error) {
	out, err := fourLetters(e.Servers[i], "mntr")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "\t"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("server %d: mntr: %q", i+1, strings.TrimSpace(out))
	}
	return m, nil
}

// consRE is a connection in `cons`: " /127.0.0.1:PORT[1](...,sid=0x...,...)".
var consRE = regexp.MustCompile(`/127\.0\.0\.1:(\d+)\[\d+\]\([^)]*\bsid=0x([0-9a-f]+)`)

// SessionOf reports whether process pid holds the connection of ZooKeeper
// session sid to a serving server of the ensemble: the servers' `cons`
// name the session's client port, and pid's sockets in /proc that port.
// It tells which of several client processes owns an ephemeral node (its
// Stat.EphemeralOwner), e.g. which leads an election.
func (e *Ensemble) SessionOf(sid int64, pid int) bool {
	ports := map[int]bool{}
	for i := range e.Servers {
		out, err := fourLetters(e.Servers[i], "cons")
		if err != nil {
			continue // a killed server
		}
		for _, m := range consRE.FindAllStringSubmatch(out, -1) {
			s, err1 := strconv.ParseUint(m[2], 16, 64)
			port, err2 := strconv.Atoi(m[1])
			if err1 == nil && err2 == nil && int64(s) == sid {
				ports[port] = true
			}
		}
	}
	if len(ports) == 0 {
		return false
	}
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			port, err := strconv.ParseInt(hexPort, 16, 32)
			if err == nil && ports[int(port)] && inodes[f[9]] {
				return true
			}
		}
	}
	return false
}

// Kill kills server i (kill -9) and waits for it to exit.
func (e *Ensemble) Kill(i int) {
	e.mu.Lock()
	p, exited := e.procs[i], e.exited[i]
	e.mu.Unlock()
	_ = p.Process.Kill()
	<-exited
}

// Pids returns the servers' process ids (for a check that none outlives
// Stop).
func (e *Ensemble) Pids() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var pids []int
	for _, p := range e.procs {
		pids = append(pids, p.Process.Pid)
	}
	return pids
}

// Stop kills every server, waits for each to exit and removes the
// directory. It may be called more than once.
func (e *Ensemble) Stop() {
	e.killAll()
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

func (e *Ensemble) killAll() {
	e.mu.Lock()
	procs, exited := e.procs, e.exited
	e.procs, e.exited, e.logs = nil, nil, nil
	e.mu.Unlock()
	for i, p := range procs {
		_ = p.Process.Kill()
		<-exited[i]
	}
}

// Raw returns the bytes of every file in the servers' data directories
// (snapshots and transaction logs), for scans of what ZooKeeper keeps.
func (e *Ensemble) Raw(t testing.TB) []byte {
	t.Helper()
	var all []byte
	for _, d := range e.DataDirs {
		err := filepath.WalkDir(d, func(p string, de os.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			all = append(all, b...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return all
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func tail(log string) string {
	data, _ := os.ReadFile(log)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// Proxy forwards TCP connections to a server until Cut: a client that
// connects through it can be cut off from ZooKeeper without closing its
// session, as kill -9 or a partition would.
type Proxy struct {
	// Addr is the proxy's address, 127.0.0.1:<port>.
	Addr string

	l     net.Listener
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

// NewProxy starts a Proxy to target, closed when t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: l.Addr().String(), l: l}
	go p.accept(target)
	t.Cleanup(p.Cut)
	return p
}

func (p *Proxy) accept(target string) {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", target, 2*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			_ = s.Close()
			return
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
		go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
	}
}

// Cut closes the proxy and every connection through it.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	_ = p.l.Close()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
