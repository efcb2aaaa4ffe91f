package plugin

import "errors"

// The sentinel errors a backend returns, wrapped with context (fmt.Errorf with
// %w). Each maps to one gRPC status code on the wire and back, so errors.Is
// works the same for an in-process backend and a plugin subprocess.
var (
	// ErrNotFound: the ref does not exist in the store.
	ErrNotFound = errors.New("secret not found")
	// ErrPermissionDenied: the backend's identity may not read the ref.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrInvalidConfig: the backend's configuration or a ref is malformed.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrUnavailable: the store cannot answer now (sealed, down, timing out).
	// It is the only error the host retries.
	ErrUnavailable = errors.New("secret store unavailable")
	// ErrUnsupported: the backend does not implement the operation.
	ErrUnsupported = errors.New("not supported by this backend")
	// ErrPluginExited: the plugin process died and could not be restarted.
	ErrPluginExited = errors.New("backend plugin exited")
)
