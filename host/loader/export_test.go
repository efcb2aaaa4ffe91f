package loader

import "testing"

// Addr returns the unix socket the plugin listens on.
func Addr(t *testing.T, s *Subprocess) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	rc := s.client.ReattachConfig()
	if rc == nil || rc.Addr == nil {
		t.Fatal("no reattach config")
	}
	return rc.Addr.String()
}
