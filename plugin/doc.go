// Package plugin is the SDK for keyship backend authors: the Backend
// interface, its domain types (Ref, Secret, Info), the sentinel errors the
// host understands, and Serve, which runs a Backend as the gRPC subprocess
// the keyship host loads (hashicorp/go-plugin's protocol, spoken without
// linking go-plugin: see PROTOCOL.md beside backend.proto).
//
// A backend is a library first: write a type that implements Backend, give it
// a constructor, and test it with plugin/plugintest. Then make it a plugin
// with a main of a few lines:
//
//	package main
//
//	import (
//		"example.com/mystore"
//		"github.com/keyship/keyship/plugin"
//	)
//
//	func main() { plugin.Serve(mystore.New) }
//
// Build it as keyship-backend-<name> into the host's plugin_dir and name it
// in the host config:
//
//	backends:
//	  mystore:
//	    plugin: keyship-backend-mystore
//	    sha256: <sha256sum of the binary>
//	    config:
//	      address: https://store.example.com
//
// Rules a backend must follow (plugin/plugintest checks them):
//
//   - Info.Name matches [a-z0-9_-]+; Info.Version is the backend's release.
//   - Get returns one Result per ref, in order; a ref that cannot be read sets
//     Result.Err, it does not fail the batch.
//   - Errors wrap a sentinel (fmt.Errorf("read %s: %w", ref, plugin.ErrNotFound)),
//     so the host can retry ErrUnavailable and report the rest. A ref the
//     backend's identity may not read is ErrPermissionDenied, never
//     ErrNotFound. Name the ref and the reason; never put secret bytes,
//     tokens or passwords in an error or log.
//   - Secret.Version changes when the content changes and does not reveal it:
//     the store's own version, or a keyed HMAC, never a plain hash of the data.
//   - Honour ctx: return promptly once it is done. A call whose ctx is
//     cancelled returns an error matching context.Canceled (errors.Is), and
//     one whose deadline passed an error matching context.DeadlineExceeded,
//     whether the batch fails or each ref.
//   - List (optional, with the CapabilityList capability) returns full paths,
//     as they would be written in a ref ("/spark/keystore", not "keystore"),
//     sorted, directories ending in "/".
//   - Do not retry on your own: the host retries. When a store answers that
//     it cannot serve now (down, sealed, timing out), return ErrUnavailable;
//     the host tries a ref at most 4 times in all, backing off about 100ms,
//     200ms and 400ms, never past the caller's deadline, and retries nothing
//     else. Retries inside a backend multiply those attempts (the Vault
//     backend caps its client's at 2 for that reason).
//   - A plugin may be killed at any time (the host's deadline, the host
//     dying); the host restarts a plugin that died at most once per call.
//   - Run as a plugin, a backend sees only PATH, TMPDIR, the locale,
//     KEYSHIP_PLUGIN_LOG_LEVEL and the variables the host config lists under
//     the backend's env setting.
//
// # Errors
//
// Errors cross the wire in one model, google.rpc.Status, with one code table
// (Code, StatusError and ErrorFromStatus are that table; the host API server
// uses it too). A call that fails as a whole fails with its gRPC status; one
// ref of a Get batch that fails carries a google.rpc.Status in its result.
// Either way the receiving side gets an error with the sender's message that
// wraps the sentinel for the code:
//
//	ErrNotFound          NOT_FOUND
//	ErrPermissionDenied  PERMISSION_DENIED
//	ErrInvalidConfig     INVALID_ARGUMENT
//	ErrUnavailable       UNAVAILABLE (the only error the host retries)
//	ErrUnsupported       UNIMPLEMENTED
//	context.Canceled     CANCELLED
//	context.DeadlineExceeded  DEADLINE_EXCEEDED
//
// An error wrapping none of them is UNKNOWN. ErrPluginExited is the host's
// own: the loader returns it when a plugin process died and one restart did
// not bring it back; no plugin sends it (the host API reports it as INTERNAL).
//
// Generated protobuf types never appear in this package's exported API;
// the wire protocol is proto/keyship/backend/v1, and its PROTOCOL.md is the
// protocol written down for a plugin in any other language (Serve does all of
// it for a Go plugin); `keyship plugin test PATH` runs the conformance kit
// against such a plugin, and plugin/launch starts a plugin as keyship does.
package plugin
