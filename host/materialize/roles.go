package materialize

// Role says what a File is for, so that a shipper or an emitter of consumer
// settings can point the consumer's setting at it whatever its format:
//
//	role            file (by format)                    consumer settings
//	RoleKeystore    keystore.jks | keystore.p12         spark.ssl.keyStore, security.ssl.keystore
//	RoleTruststore  truststore.jks | truststore.p12     spark.ssl.trustStore, security.ssl.truststore
//	RoleCABundle    ca-bundle.jks | ca-bundle.p12       DC/OS ca_bundle_secret
//	RoleKeyPEM      key.pem                             LIBPROCESS_SSL_KEY_FILE
//	RoleCertPEM     cert.pem                            LIBPROCESS_SSL_CERT_FILE
//	RoleCAPEM       ca.pem                              LIBPROCESS_SSL_CA_FILE
//
// A Bundle holds each role at most once per format; Bundle.File returns the
// file of the first format in Options.Outputs.
type Role string

// The roles of the files of a Bundle.
const (
	// RoleKeystore is a Java keystore (JKS or PKCS12) holding exactly one
	// private key entry with its chain, opened with Bundle.KeystorePassword
	// and its key with Bundle.KeyPassword.
	RoleKeystore Role = "keystore"
	// RoleTruststore is a Java truststore (JKS or PKCS12) of trusted
	// certificate entries, opened with Bundle.TruststorePassword.
	RoleTruststore Role = "truststore"
	// RoleCABundle is the CA bundle of the spec (DC/OS ca_bundle_secret) as
	// a Java truststore, opened with Bundle.TruststorePassword.
	RoleCABundle Role = "ca-bundle"
	// RoleKeyPEM is the private key, unencrypted PKCS#8 PEM ("PRIVATE
	// KEY"), as OpenSSL and libprocess read it.
	RoleKeyPEM Role = "pem-key"
	// RoleCertPEM is the certificate chain in PEM, leaf first.
	RoleCertPEM Role = "pem-cert"
	// RoleCAPEM is every trusted certificate (truststore, then CA bundle)
	// in PEM, for OpenSSL's CAfile.
	RoleCAPEM Role = "pem-ca"
)

// The paths of the files Build writes, relative to wherever the shipper
// puts them.
const (
	KeystoreJKS   = "keystore.jks"
	TruststoreJKS = "truststore.jks"
	CABundleJKS   = "ca-bundle.jks"
	KeystoreP12   = "keystore.p12"
	TruststoreP12 = "truststore.p12"
	CABundleP12   = "ca-bundle.p12"
	KeyPEM        = "key.pem"
	CertPEM       = "cert.pem"
	CAPEM         = "ca.pem"
)

// Format is a family of files Build writes.
type Format string

// The output formats. Spec.StoreType names one of them ("jks" by default).
const (
	// FormatJKS writes keystore.jks, truststore.jks and ca-bundle.jks.
	FormatJKS Format = "jks"
	// FormatPKCS12 writes keystore.p12, truststore.p12 and ca-bundle.p12
	// (Options.PKCS12 selects the algorithms).
	FormatPKCS12 Format = "pkcs12"
	// FormatPEM writes key.pem, cert.pem and ca.pem.
	FormatPEM Format = "pem"
)
