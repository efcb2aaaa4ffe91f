package vault

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/hashicorp/vault/api"

	"github.com/keyship/keyship/plugin"
)

// statusOf returns the HTTP status of a Vault response error, or 0.
func statusOf(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// vaultReasons returns the error strings Vault sent, joined, with every
// credential the backend holds replaced by "[redacted]".
func vaultReasons(err error, r *redactor) string {
	var re *api.ResponseError
	if !errors.As(err, &re) || len(re.Errors) == 0 {
		return ""
	}
	return r.redact(strings.Join(re.Errors, "; "))
}

// isSealed reports whether err says the Vault server is sealed.
func isSealed(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(strings.ToLower(e), "sealed") {
			return true
		}
	}
	return false
}

// mapError turns an error from a Vault request about what (a ref, "login
// with approle", ...) into an error that wraps one of the plugin sentinels.
// 403 and 404 are handled by the callers, which know the path and the
// capability; here they become ErrPermissionDenied and ErrNotFound with
// Vault's own words. A done ctx returns its error unchanged in meaning.
func mapError(ctx context.Context, what string, err error, r *redactor) error {
	if err == nil {
		return nil
	}
	if isClassified(err) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("vault backend: %s: %w", what, ctxErr)
	}
	code := statusOf(err)
	reasons := vaultReasons(err, r)
	if reasons != "" {
		reasons = ": " + reasons
	}
	switch {
	case isSealed(err):
		return fmt.Errorf("vault backend: %s: Vault is sealed (HTTP %d); unseal it, then retry: %w", what, code, plugin.ErrUnavailable)
	case code == 403:
		return fmt.Errorf("vault backend: %s: permission denied (HTTP 403)%s: %w", what, reasons, plugin.ErrPermissionDenied)
	case code == 404:
		return fmt.Errorf("vault backend: %s: not found (HTTP 404)%s: %w", what, reasons, plugin.ErrNotFound)
	case code == 429 || code == 412 || code == 472 || code == 473:
		return fmt.Errorf("vault backend: %s: Vault is a standby or not ready (HTTP %d)%s: %w", what, code, reasons, plugin.ErrUnavailable)
	case code >= 500:
		return fmt.Errorf("vault backend: %s: Vault server error (HTTP %d)%s: %w", what, code, reasons, plugin.ErrUnavailable)
	case code >= 400:
		return fmt.Errorf("vault backend: %s: Vault refused the request (HTTP %d)%s: %w", what, code, reasons, plugin.ErrInvalidConfig)
	case code != 0:
		return fmt.Errorf("vault backend: %s: unexpected HTTP %d from Vault%s: %w", what, code, reasons, plugin.ErrUnavailable)
	}
	return transportError(what, err, r)
}

// isClassified reports whether err already wraps a plugin sentinel (it
// was made by this package, not by the api client).
func isClassified(err error) bool {
	for _, s := range []error{plugin.ErrNotFound, plugin.ErrPermissionDenied, plugin.ErrInvalidConfig,
		plugin.ErrUnavailable, plugin.ErrUnsupported} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// transportError maps a failure to reach Vault at all.
func transportError(what string, err error, r *redactor) error {
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalidCrt x509.CertificateInvalidError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalidCrt) {
		return fmt.Errorf("vault backend: %s: Vault's TLS certificate is not trusted (%s); set ca_file, ca_dir or tls_server_name: %w",
			what, r.redact(tlsReason(err)), plugin.ErrInvalidConfig)
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("vault backend: %s: connection refused (is Vault running at the configured address?): %w", what, plugin.ErrUnavailable)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Errorf("vault backend: %s: request to Vault timed out: %w", what, plugin.ErrUnavailable)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("vault backend: %s: cannot reach Vault: %s: %w", what, r.redact(ue.Err.Error()), plugin.ErrUnavailable)
	}
	return fmt.Errorf("vault backend: %s: %s: %w", what, r.redact(err.Error()), plugin.ErrUnavailable)
}

func tlsReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// redactor replaces the credentials a backend holds in any text that might
// reach a log or an error. Vault's own messages do not echo credentials; this
// is a second line of defence.
type redactor struct {
	secrets func() []string
}

func (r *redactor) redact(s string) string {
	if r == nil || r.secrets == nil {
		return s
	}
	for _, secret := range r.secrets() {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}
