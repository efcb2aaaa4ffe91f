// Package memtest counts the copies of a canary (a password a test planted)
// in a running process's memory, for tests that prove keyship drops or
// zeroes its secrets: it reads /proc/PID/maps and every readable mapping of
// /proc/PID/mem. It needs Linux and the right to ptrace the process (root,
// or the process's user with ptrace_scope 0).
//
//	n, err := memtest.Count(pid, []byte(canary))
package memtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// chunk is how much of a mapping Count reads at once.
const chunk = 1 << 20

// Region is one mapping of a process that holds the canary.
type Region struct {
	// Start and End are the mapping's addresses; Name is its path or
	// pseudo-name ("[heap]", "" for an anonymous mapping).
	Start, End uint64
	Name       string
	// Offsets are where the canary starts, from Start.
	Offsets []uint64
}

// Count returns how many times canary occurs in the readable private and
// anonymous memory of process pid. A mapping that vanishes or cannot be read
// while Count runs (the process unmapped it) is skipped.
func Count(pid int, canary []byte) (int, error) {
	regions, err := Find(pid, canary)
	n := 0
	for _, r := range regions {
		n += len(r.Offsets)
	}
	return n, err
}

// Find returns the mappings of process pid that hold canary, with where.
// Mappings of files that are not written (code, read-only data) are read
// too: a secret never belongs there either.
func Find(pid int, canary []byte) ([]Region, error) {
	if len(canary) == 0 {
		return nil, fmt.Errorf("memtest: empty canary")
	}
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, fmt.Errorf("memtest: %w", err)
	}
	defer func() { _ = maps.Close() }()
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return nil, fmt.Errorf("memtest: %w", err)
	}
	defer func() { _ = mem.Close() }()
	var out []Region
	sc := bufio.NewScanner(maps)
	buf := make([]byte, chunk+len(canary)-1)
	for sc.Scan() {
		// 00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/dbus-daemon
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[1][0] != 'r' {
			continue
		}
		if len(f) > 5 && f[5] == "[vvar]" || len(f) > 5 && f[5] == "[vsyscall]" {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil {
			return out, fmt.Errorf("memtest: /proc/%d/maps line %q", pid, sc.Text())
		}
		r := Region{Start: start, End: end}
		if len(f) > 5 {
			r.Name = f[5]
		}
		// Read overlapping chunks so that a canary across a boundary counts once.
		for off := start; off < end; off += chunk {
			n, err := mem.ReadAt(buf[:min(uint64(len(buf)), end-off)], int64(off))
			if err != nil && err != io.EOF && n == 0 {
				break // unmapped meanwhile, or not readable (a guard page)
			}
			data := buf[:n]
			for i := 0; ; {
				j := bytes.Index(data[i:], canary)
				if j < 0 {
					break
				}
				at := uint64(i+j) + off - start
				if at < off-start+chunk { // not in the overlap: the next chunk counts it
					r.Offsets = append(r.Offsets, at)
				}
				i += j + 1
			}
		}
		if len(r.Offsets) > 0 {
			out = append(out, r)
		}
	}
	return out, sc.Err()
}
