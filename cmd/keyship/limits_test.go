package main_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// closedWithin reads from each of conns until the server closes it (EOF or
// a reset) or until deadline, and returns how many the server closed.
func closedWithin(conns []net.Conn, deadline time.Time) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	closed := 0
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(deadline)
			_, err := c.Read(make([]byte, 1))
			if err != nil && !os.IsTimeout(err) {
				mu.Lock()
				closed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return closed
}

// TestServeMetricsClosesIdleKeepAlives opens 200 keep-alive connections to
// the metrics endpoint, each after one answered /healthz: serve closes
// every one once it has been idle for --idle-timeout, as the API and fetch
// listeners do.
func TestServeMetricsClosesIdleKeepAlives(t *testing.T) {
	j := newJob(t)
	sock := t.TempDir() + "/keyship.sock"
	const idle = time.Second
	s := serve(t, j, "--listen", "unix://"+sock, "--metrics-listen", "127.0.0.1:0", "--idle-timeout", idle.String())
	addr := strings.TrimPrefix(s.metrics, "http://")
	const n = 200
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: metrics\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("/healthz on connection %d: %v", len(conns), err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.Close {
			t.Fatalf("/healthz closed the connection: no keep-alive to test")
		}
		conns = append(conns, c)
	}
	// The server closes each one after idle; 10 seconds more bound the wait.
	bound := idle + 10*time.Second
	closed := closedWithin(conns, time.Now().Add(bound))
	t.Logf("%d of %d idle keep-alive metrics connections still open %s after their last answer (--idle-timeout %s)", n-closed, n, bound, idle)
	if closed != n {
		t.Errorf("%d of %d idle keep-alive metrics connections still open %s after their last answer, --idle-timeout %s", n-closed, n, bound, idle)
	}
}

// TestServeFetchCapsConnectionsPerSource floods the fetch port from
// 127.0.0.1 with silent connections, more than --max-conns: serve keeps
// only a share of --max-conns for that address and closes the rest at
// once, so a fetch from 127.0.0.2 is answered instead of waiting for
// --read-header-timeout to free a slot.
func TestServeFetchCapsConnectionsPerSource(t *testing.T) {
	j := newJob(t)
	sock := t.TempDir() + "/keyship.sock"
	const maxConns, flood = 20, 100
	s := serve(t, j, "--listen", "unix://"+sock, "--fetch-listen", "127.0.0.1:0",
		"--max-conns", "20", "--read-header-timeout", "60s")
	addr := strings.TrimPrefix(s.fetch, "https://")
	var conns []net.Conn
	for range flood {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		conns = append(conns, c)
	}
	other := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext:     other.DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, // a throwaway self-signed fetch certificate
	}}
	resp, err := client.Get(s.fetch + "/fetch/no-such-token/keystore.jks")
	answered := err == nil
	if answered {
		_ = resp.Body.Close()
	}
	// serve accepts in arrival order: once 127.0.0.2's connection was
	// accepted, every flood connection it closed is closed already.
	closed := closedWithin(conns, time.Now().Add(2*time.Second))
	t.Logf("flood of %d silent connections from 127.0.0.1 (--max-conns %d): %d closed at once, %d held; a fetch from 127.0.0.2 answered: %v (%v)",
		flood, maxConns, closed, flood-closed, answered, err)
	if !answered {
		var ne net.Error
		t.Errorf("a fetch from 127.0.0.2 during the flood was not answered within 20s: %v (timeout: %v)", err, errors.As(err, &ne) && ne.Timeout())
	}
	if held := flood - closed; held >= maxConns {
		t.Errorf("one address holds %d connections, the listener's whole cap of %d", held, maxConns)
	}
}
