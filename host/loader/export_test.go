package loader

import "testing"

// Addr returns the unix socket the plugin listens on.
func Addr(t *testing.T, s *Subprocess) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == nil {
		t.Fatal("no plugin address")
	}
	return s.addr.String()
}
