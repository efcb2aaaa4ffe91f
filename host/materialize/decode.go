package materialize

import (
	"path"
	"strings"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/spec"
)

// dcosBase64Prefix starts the name of a DC/OS secret whose value is base64
// (DC/OS decodes it when it mounts the secret as a file).
const dcosBase64Prefix = "__dcos_base64__"

// isDCOSBase64 reports whether ref names a DC/OS base64 secret: the last
// element of its path starts with __dcos_base64__.
func isDCOSBase64(r spec.Ref) bool {
	return strings.HasPrefix(path.Base(r.Path), dcosBase64Prefix)
}

// base64Hint explains data that is base64 text of a store when the spec
// did not say the setting is base64, or returns "".
func base64Hint(data []byte) string {
	if f := keystore.Base64Format(data); f != keystore.Unknown && f != keystore.PEM {
		return "it is base64 text of a " + f.String() + " store; store the binary bytes, or declare the setting base64 (Spark's *Base64 settings, a DC/OS secret named " + dcosBase64Prefix + "...)"
	}
	return ""
}

func hintSuffix(data []byte) string {
	if h := base64Hint(data); h != "" {
		return ": " + h
	}
	return ""
}
