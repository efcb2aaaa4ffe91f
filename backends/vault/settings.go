package vault

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyship/keyship/plugin"
)

// Auth methods of the auth.method setting.
const (
	MethodToken      = "token"
	MethodAppRole    = "approle"
	MethodJWT        = "jwt"
	MethodKubernetes = "kubernetes"
)

// Decoders of the decode setting and of a ref's field suffix.
const (
	DecodeNone   = "none"
	DecodeBase64 = "base64"
)

// KubernetesJWTFile is where Kubernetes mounts a pod's service-account token;
// it is auth.jwt_file's default for the kubernetes method.
const KubernetesJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// knownSettings are the setting names Configure accepts, sorted.
var knownSettings = []string{
	"address", "auth.jwt_file", "auth.method", "auth.mount", "auth.role",
	"auth.role_id", "auth.role_id_file", "auth.secret_id_file", "auth.secret_id_wrapped",
	"auth.token", "auth.token_file", "ca_dir", "ca_file", "client_cert", "client_key",
	"decode", "default_field", "kv_mounts", "max_retries", "namespace", "timeout",
	"tls_server_name", "tls_skip_verify", "version_key_file",
}

// settings is a checked configuration. File settings hold paths; the files
// are read when they are needed (token and JWT files at every login).
type settings struct {
	address       string
	namespace     string
	caFile        string
	caDir         string
	clientCert    string
	clientKey     string
	tlsServerName string
	tlsSkipVerify bool
	timeout       time.Duration // 0: the api default (VAULT_CLIENT_TIMEOUT or 60s)
	maxRetries    int
	maxRetriesSet bool
	kvMounts      map[string]int // "secret/" -> 2
	decode        string
	defaultField  string
	versionKey    string // file

	auth authSettings
}

// authSettings are the auth.* settings.
type authSettings struct {
	method          string
	mount           string
	token           string // auth.token, else VAULT_TOKEN (token method only)
	tokenFile       string
	tokenFromEnv    bool
	roleID          string
	roleIDFile      string
	secretIDFile    string
	secretIDWrapped bool
	role            string
	jwtFile         string
}

// invalid returns an ErrInvalidConfig error about one setting.
func invalid(format string, args ...any) error {
	return fmt.Errorf("vault backend: "+format+": %w", append(args, plugin.ErrInvalidConfig)...)
}

// parseSettings checks config and fills in the VAULT_* environment defaults
// that the api client does not read itself.
func parseSettings(config map[string]string) (settings, error) {
	for k := range config {
		if !slices.Contains(knownSettings, k) {
			return settings{}, invalid("unknown setting %q (known: %s)", k, strings.Join(knownSettings, ", "))
		}
	}
	s := settings{
		address:       config["address"],
		namespace:     config["namespace"],
		caFile:        config["ca_file"],
		caDir:         config["ca_dir"],
		clientCert:    config["client_cert"],
		clientKey:     config["client_key"],
		tlsServerName: config["tls_server_name"],
		decode:        config["decode"],
		defaultField:  config["default_field"],
		versionKey:    config["version_key_file"],
	}
	if s.address != "" {
		u, err := url.Parse(s.address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return settings{}, invalid("address %q: want http(s)://host:port", s.address)
		}
	}
	var err error
	if s.tlsSkipVerify, err = parseBool(config, "tls_skip_verify"); err != nil {
		return settings{}, err
	}
	if v := config["timeout"]; v != "" {
		if s.timeout, err = time.ParseDuration(v); err != nil || s.timeout <= 0 {
			return settings{}, invalid("timeout %q: want a positive Go duration such as 30s", v)
		}
	}
	if v := config["max_retries"]; v != "" {
		if s.maxRetries, err = parseMaxRetries(v); err != nil {
			return settings{}, invalid("max_retries %q: %v", v, err)
		}
		s.maxRetriesSet = true
	}
	if (s.clientCert == "") != (s.clientKey == "") {
		return settings{}, invalid("client_cert and client_key go together")
	}
	switch s.decode {
	case "":
		s.decode = DecodeNone
	case DecodeNone, DecodeBase64:
	default:
		return settings{}, invalid("decode %q: want %q or %q", s.decode, DecodeNone, DecodeBase64)
	}
	if strings.Contains(s.defaultField, ":") {
		if _, _, err := splitField(s.defaultField, DecodeNone); err != nil {
			return settings{}, invalid("default_field %q: %v", s.defaultField, err)
		}
	}
	if s.kvMounts, err = parseKVMounts(config["kv_mounts"]); err != nil {
		return settings{}, err
	}
	if s.auth, err = parseAuth(config); err != nil {
		return settings{}, err
	}
	return s, nil
}

func parseBool(config map[string]string, name string) (bool, error) {
	v, ok := config[name]
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalid("%s %q: want true or false", name, v)
	}
	return b, nil
}

// parseKVMounts parses "secret=2,legacy/=1" into {"secret/": 2, "legacy/": 1}.
func parseKVMounts(v string) (map[string]int, error) {
	out := map[string]int{}
	if strings.TrimSpace(v) == "" {
		return out, nil
	}
	for item := range strings.SplitSeq(v, ",") {
		mount, ver, ok := strings.Cut(strings.TrimSpace(item), "=")
		mount = strings.Trim(strings.TrimSpace(mount), "/")
		ver = strings.TrimSpace(ver)
		if !ok || mount == "" || (ver != "1" && ver != "2") {
			return nil, invalid("kv_mounts item %q: want mount=1 or mount=2, e.g. secret=2,legacy=1", item)
		}
		out[mount+"/"] = int(ver[0] - '0')
	}
	return out, nil
}

func parseAuth(config map[string]string) (authSettings, error) {
	a := authSettings{
		method:       config["auth.method"],
		mount:        strings.Trim(config["auth.mount"], "/"),
		token:        config["auth.token"],
		tokenFile:    config["auth.token_file"],
		roleID:       config["auth.role_id"],
		roleIDFile:   config["auth.role_id_file"],
		secretIDFile: config["auth.secret_id_file"],
		role:         config["auth.role"],
		jwtFile:      config["auth.jwt_file"],
	}
	var err error
	if a.secretIDWrapped, err = parseBool(config, "auth.secret_id_wrapped"); err != nil {
		return a, err
	}
	if a.method == "" {
		a.method = MethodToken
	}
	// only lists the auth.* settings each method accepts besides auth.method.
	only := func(allowed ...string) error {
		for k := range config {
			if strings.HasPrefix(k, "auth.") && k != "auth.method" && !slices.Contains(allowed, k) {
				return invalid("setting %q does not apply to auth.method %s (it takes: %s)", k, a.method, strings.Join(allowed, ", "))
			}
		}
		return nil
	}
	switch a.method {
	case MethodToken:
		if err := only("auth.token", "auth.token_file"); err != nil {
			return a, err
		}
		if a.token != "" && a.tokenFile != "" {
			return a, invalid("auth.token and auth.token_file are alternatives; set one")
		}
		if a.token == "" && a.tokenFile == "" {
			a.token = os.Getenv("VAULT_TOKEN")
			a.tokenFromEnv = true
		}
		if a.token == "" && a.tokenFile == "" {
			return a, invalid("auth.method token needs auth.token_file, auth.token or VAULT_TOKEN")
		}
		if a.tokenFile != "" {
			if err := readable(a.tokenFile, "auth.token_file"); err != nil {
				return a, err
			}
		}
	case MethodAppRole:
		if err := only("auth.mount", "auth.role_id", "auth.role_id_file", "auth.secret_id_file", "auth.secret_id_wrapped"); err != nil {
			return a, err
		}
		if (a.roleID == "") == (a.roleIDFile == "") {
			return a, invalid("auth.method approle needs one of auth.role_id and auth.role_id_file")
		}
		if a.roleIDFile != "" {
			if err := readable(a.roleIDFile, "auth.role_id_file"); err != nil {
				return a, err
			}
		}
		if a.secretIDFile != "" {
			if err := readable(a.secretIDFile, "auth.secret_id_file"); err != nil {
				return a, err
			}
		} else if a.secretIDWrapped {
			return a, invalid("auth.secret_id_wrapped needs auth.secret_id_file")
		}
		if a.mount == "" {
			a.mount = "approle"
		}
	case MethodJWT, MethodKubernetes:
		if err := only("auth.mount", "auth.role", "auth.jwt_file"); err != nil {
			return a, err
		}
		if a.role == "" {
			return a, invalid("auth.method %s needs auth.role", a.method)
		}
		if a.jwtFile == "" {
			if a.method == MethodJWT {
				return a, invalid("auth.method jwt needs auth.jwt_file")
			}
			a.jwtFile = KubernetesJWTFile
		}
		if err := readable(a.jwtFile, "auth.jwt_file"); err != nil {
			return a, err
		}
		if a.mount == "" {
			a.mount = a.method
		}
	default:
		return a, invalid("auth.method %q: want token, approle, jwt or kubernetes", a.method)
	}
	return a, nil
}

// readable checks that the file a setting names can be opened.
func readable(path, setting string) error {
	f, err := os.Open(path)
	if err != nil {
		return invalid("%s %q: cannot open it", setting, path)
	}
	_ = f.Close()
	return nil
}

// splitField splits a ref's field "name[:base64|:raw]" into the field name
// and its decoder; with no suffix the decoder is def. A literal field called
// "x:base64" is written "x:base64:raw".
func splitField(field, def string) (name, decode string, err error) {
	switch {
	case strings.HasSuffix(field, ":"+DecodeBase64):
		name, decode = strings.TrimSuffix(field, ":"+DecodeBase64), DecodeBase64
	case strings.HasSuffix(field, ":raw"):
		name, decode = strings.TrimSuffix(field, ":raw"), DecodeNone
	default:
		name, decode = field, def
	}
	if name == "" && field != "" {
		return "", "", fmt.Errorf("field %q has a decoder suffix but no name", field)
	}
	return name, decode, nil
}

// maxClientRetries caps the api client's own retries of 5xx and 429 answers.
// The keyship host already tries an unavailable store up to 4 times, and
// every try of the host is 1 + max_retries requests, so the cap keeps a ref at
// most 4 × 3 = 12 Vault requests (4 with the default of 0).
const maxClientRetries = 2

// parseMaxRetries reads a max_retries or VAULT_MAX_RETRIES value.
func parseMaxRetries(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > maxClientRetries {
		return 0, fmt.Errorf("want 0 to %d (the keyship host retries an unavailable Vault itself; these retries multiply its attempts)", maxClientRetries)
	}
	return n, nil
}
