package materialize

import "github.com/keyship/keyship/host/keystore"

// PKCS12Encryption selects the algorithms of the PKCS#12 files Build writes
// (Options.PKCS12): keystore.PKCS12Encryption.
type PKCS12Encryption = keystore.PKCS12Encryption

// The PKCS#12 encryptions Build writes.
const (
	// PKCS12Modern2023 is keystore.PKCS12Modern2023, the default.
	PKCS12Modern2023 = keystore.PKCS12Modern2023
	// PKCS12LegacyDES is keystore.PKCS12LegacyDES.
	PKCS12LegacyDES = keystore.PKCS12LegacyDES
)
