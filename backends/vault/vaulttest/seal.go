package vaulttest

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"testing"
)

// Seal seals the server (vault operator seal): every request then fails
// with "Vault is sealed" until Unseal.
func (s *Server) Seal(t testing.TB) {
	t.Helper()
	s.Vault(t, "operator", "seal")
}

// Unseal unseals a sealed dev server with the unseal key it printed at
// start (a dev server has one key share). The key is never printed.
func (s *Server) Unseal(t testing.TB) {
	t.Helper()
	log, err := os.ReadFile(s.log)
	if err != nil {
		t.Fatal(err)
	}
	var key string
	sc := bufio.NewScanner(bytes.NewReader(log))
	for sc.Scan() {
		if k, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Unseal Key: "); ok {
			key = strings.TrimSpace(k)
		}
	}
	if key == "" {
		t.Fatal("vaulttest: the dev server's log holds no unseal key")
	}
	st, err := s.Client(t).Sys().Unseal(key)
	if err != nil || st.Sealed {
		t.Fatalf("vaulttest: unseal: %v (still sealed: %v)", err, st != nil && st.Sealed)
	}
}

// Pid returns the server process's id (for measuring its CPU time).
func (s *Server) Pid() int { return s.cmd.Process.Pid }
