// Package launch starts a keyship backend plugin binary and gives it to the
// caller as a plugin.Backend: the one way keyship runs a plugin, used by the
// host (host/loader, from its config) and by the conformance kit
// (plugin/plugintest and `keyship plugin test`), so that a plugin the kit
// passes is loaded exactly as keyship loads it. It sits below both and
// imports nothing of the host.
//
// A plugin started here is checksum-pinned (a pinned SHA-256 that does not
// match refuses to load, naming the file and both sums; the open file is
// hashed at every start and that same file executed), speaks gRPC only, over
// a unix socket in a private 0700 directory where each end checks the other's
// process (plugin.PeerCredentials, in place of go-plugin's AutoMTLS), gets a
// minimal environment (WithEnv), runs in its own process group, is bounded by
// the caller's deadline from exec on, dies with the host (Linux: parent-death
// signal; HandleSignals), has its stderr (hclog JSON) folded into the host log
// under the backend's name, and is restarted when it dies: a call restarts a
// dead plugin at most once and is retried once (logged at debug); a plugin
// that dies again fails the call with an error wrapping
// plugin.ErrPluginExited that says how it ended. The wire rules a plugin in
// any language follows are proto/keyship/backend/v1/PROTOCOL.md.
//
//	s, err := launch.Start(ctx, "vault", "/usr/lib/keyship/keyship-backend-vault", pin, logger,
//		launch.WithEnv("VAULT_*"))
//	if err != nil { ... }
//	defer s.Close()
//	err = s.Configure(ctx, map[string]string{"address": "https://vault:8200"})
package launch
