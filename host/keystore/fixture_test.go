package keystore

import (
	"sync"

	"github.com/keyship/keyship/host/materialize/testca"
)

// fixture is the PKI every test shares: ECDSA keys, made once.
type fixture struct {
	ca, otherCA *testca.CA
	node, other *testca.Leaf
}

var fx = sync.OnceValue(func() *fixture {
	ca := must(testca.NewCA("Sample CA"))
	otherCA := must(testca.NewCA("Other CA"))
	node := must(ca.Issue("node1.example.com", testca.WithDNS("node1.example.com", "node2.example.com")))
	other := must(ca.Issue("other.example.com"))
	return &fixture{ca: ca, otherCA: otherCA, node: node, other: other}
})

// The passwords of the test stores. They differ, so that a test can tell
// which one an error is about; none may ever appear in an error.
const (
	storePass = "store-pass-1"
	keyPass   = "key-pass-22"
	trustPass = "trust-pass-333"
)

// must returns v, or panics on a fixture that cannot be made.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
