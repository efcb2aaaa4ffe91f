package materialize

import (
	"bytes"

	"github.com/keyship/keyship/host/keystore"
	"github.com/keyship/keyship/host/spec"
)

// Passthrough: a keystore, truststore or CA bundle that a backend holds as a
// JKS or PKCS12 store, that passes every check, and that is already in the
// format the consumer reads ships as its exact bytes (Spec.Passthrough), so
// that a shipper can send a reference to the secret instead of the bytes
// (a Mesos secret REFERENCE on DC/OS). Such a store is shipped whole: a
// keystore keeps any trusted certificate entries it holds beside its one key.

// passable records that the store in setting f opened as format and could
// ship as it is: one key entry (keystores), or trusted certificates and no
// key (truststores and CA bundles).
func (b *builder) passable(f spec.Field, format Format) {
	if b.passFormats == nil {
		b.passFormats = map[string]Format{}
	}
	b.passFormats[f.Name] = format
}

// outputFormat is the output format of a store format read.
func outputFormat(f keystore.Format) Format {
	switch f {
	case keystore.JKS:
		return FormatJKS
	case keystore.PKCS12:
		return FormatPKCS12
	}
	return ""
}

// passthrough returns a copy of the bytes of the store in setting f when
// they can ship as the file of format out, with their Source; ok is false
// when keyship must write the file itself.
func (b *builder) passthrough(f spec.Field, out Format) (data []byte, src Source, ok bool) {
	if !b.spec.PassesThrough() || b.opts.KeyAlias != "" || b.passFormats[f.Name] != out || !f.IsSet() {
		return nil, Source{}, false
	}
	raw, ok := b.raw(f)
	if !ok {
		return nil, Source{}, false
	}
	return bytes.Clone(raw), exactSource(f), true
}

// exactSource is the Source of bytes that are exactly f's secret: none when
// f is inline or its secret is decoded (base64).
func exactSource(f spec.Field) Source {
	if !f.IsSet() || f.Inline() || f.Encoding != "" || isDCOSBase64(f.Ref) {
		return Source{}
	}
	return Source{Field: f.Name, Ref: f.Ref}
}
