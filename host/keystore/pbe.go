package keystore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
)

// Password-based decryption as PKCS#12 files and encrypted PKCS#8 keys use
// it, for the reader (pkcs12.go, pem.go): the PKCS#12 key derivation (RFC
// 7292 appendix B, which neither the standard library nor go-pkcs12
// exports) with the 3DES and RC2 ciphers, and PBES2 (RFC 8018) with
// crypto/pbkdf2 and AES or 3DES. keyship encrypts nothing itself: go-pkcs12
// writes its PKCS#12 files.

// Object identifiers of the algorithms.
var (
	oidPBEWithSHAAnd3KeyTripleDESCBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidPBEWithSHAAnd128BitRC2CBC     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 5}
	oidPBEWithSHAAnd40BitRC2CBC      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 6}
	oidPBES2                         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2                        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidPBMAC1                        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidHMACWithSHA1                  = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA224                = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACWithSHA256                = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACWithSHA384                = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACWithSHA512                = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC                     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC                     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC                     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC                    = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	oidSHA1                          = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA224                        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
	oidSHA256                        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384                        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512                        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// MaxIterations bounds the KDF iteration counts a PKCS#12 file or an
// encrypted PEM key may ask for, as Java does (5,000,000), so that a hostile
// file cannot make a build spin for hours. Only tests and fuzz targets
// lower it, to keep the fuzzer on the structure rather than the KDFs; they
// must restore it.
var MaxIterations = 5_000_000

// errBadPadding means a decryption ended in bad padding: almost always the
// wrong password.
var errBadPadding = errors.New("decryption failed (wrong password, or corrupt data)")

// digestFor returns the hash of a digest algorithm OID (MACs).
func digestFor(oid asn1.ObjectIdentifier) (func() hash.Hash, string) {
	switch {
	case oid.Equal(oidSHA1):
		return sha1.New, "SHA-1"
	case oid.Equal(oidSHA224):
		return sha256.New224, "SHA-224"
	case oid.Equal(oidSHA256):
		return sha256.New, "SHA-256"
	case oid.Equal(oidSHA384):
		return sha512.New384, "SHA-384"
	case oid.Equal(oidSHA512):
		return sha512.New, "SHA-512"
	}
	return nil, ""
}

// prfFor returns the hash of a PBKDF2 PRF OID; an absent PRF is HMAC-SHA1.
func prfFor(oid asn1.ObjectIdentifier) func() hash.Hash {
	switch {
	case len(oid) == 0, oid.Equal(oidHMACWithSHA1):
		return sha1.New
	case oid.Equal(oidHMACWithSHA224):
		return sha256.New224
	case oid.Equal(oidHMACWithSHA256):
		return sha256.New
	case oid.Equal(oidHMACWithSHA384):
		return sha512.New384
	case oid.Equal(oidHMACWithSHA512):
		return sha512.New
	}
	return nil
}

// bmpPassword encodes an ASCII password as PKCS#12 wants it: UTF-16BE with
// a two-byte terminator. The caller zeroes the result. Passwords reaching
// here are checked printable ASCII; other bytes are widened as Latin-1.
func bmpPassword(pw []byte) []byte {
	out := make([]byte, 0, 2*len(pw)+2)
	for _, c := range pw {
		out = append(out, 0, c)
	}
	return append(out, 0, 0)
}

// p12KDF is the PKCS#12 key derivation of RFC 7292 appendix B.2: id 1 makes
// cipher keys, 2 IVs, 3 MAC keys. bmpPass is the BMP-encoded password.
func p12KDF(newHash func() hash.Hash, id byte, bmpPass, salt []byte, iterations, size int) []byte {
	h := newHash()
	u, v := h.Size(), h.BlockSize()
	fill := func(x []byte) []byte {
		if len(x) == 0 {
			return nil
		}
		n := v * ((len(x) + v - 1) / v)
		out := make([]byte, n)
		for i := range out {
			out[i] = x[i%len(x)]
		}
		return out
	}
	d := bytes.Repeat([]byte{id}, v)
	s, p := fill(salt), fill(bmpPass)
	in := append(s, p...)
	defer clear(in)
	defer clear(p)
	out := make([]byte, 0, size+u)
	a := make([]byte, 0, u)
	for len(out) < size {
		h.Reset()
		h.Write(d)
		h.Write(in)
		a = h.Sum(a[:0])
		for i := 1; i < iterations; i++ {
			h.Reset()
			h.Write(a)
			a = h.Sum(a[:0])
		}
		out = append(out, a...)
		if len(out) >= size {
			break
		}
		// I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block I_j of in,
		// where B is a repeated to v bytes.
		b := fill(a)
		for j := 0; j < len(in); j += v {
			carry := uint16(1)
			blk := in[j : j+v]
			for k := v - 1; k >= 0; k-- {
				sum := uint16(blk[k]) + uint16(b[k]) + carry
				blk[k] = byte(sum)
				carry = sum >> 8
			}
		}
	}
	clear(a)
	return out[:size]
}

// pbkdf2Key is PBKDF2 (RFC 8018 section 5.2) with HMAC over newHash, from
// crypto/pbkdf2. The password becomes a string there, which cannot be
// zeroed; hmac.New copies the key anyway.
func pbkdf2Key(newHash func() hash.Hash, password, salt []byte, iterations, size int) ([]byte, error) {
	return pbkdf2.Key(newHash, string(password), salt, iterations, size)
}

// pbeParams are the parameters of the PKCS#12 PBE algorithms.
type pbeParams struct {
	Salt       []byte
	Iterations int
}

// pbes2Params are the parameters of PBES2.
type pbes2Params struct {
	KDF              pkix.AlgorithmIdentifier
	EncryptionScheme pkix.AlgorithmIdentifier
}

// pbkdf2Params are the parameters of PBKDF2. Only a specified (octet
// string) salt is supported, as everyone writes.
type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

// unmarshalAll parses DER into out and rejects trailing bytes.
func unmarshalAll(der []byte, out any) error {
	rest, err := asn1.Unmarshal(der, out)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return errors.New("trailing data")
	}
	return nil
}

// checkIterations rejects iteration counts out of [1, MaxIterations].
func checkIterations(n int) error {
	if n < 1 || n > MaxIterations {
		return fmt.Errorf("iteration count %d is outside 1..%d", n, MaxIterations)
	}
	return nil
}

// pbeCipher derives the block cipher and IV of a PBE algorithm from the
// password (printable ASCII bytes, without terminator). It returns an error
// wrapping ErrUnsupportedAlgorithm for algorithms it does not implement.
func pbeCipher(alg pkix.AlgorithmIdentifier, password []byte) (cipher.Block, []byte, error) {
	switch {
	case alg.Algorithm.Equal(oidPBES2):
		return pbes2Cipher(alg, password)
	case alg.Algorithm.Equal(oidPBEWithSHAAnd3KeyTripleDESCBC),
		alg.Algorithm.Equal(oidPBEWithSHAAnd128BitRC2CBC),
		alg.Algorithm.Equal(oidPBEWithSHAAnd40BitRC2CBC):
	default:
		return nil, nil, fmt.Errorf("%w: encryption %s", ErrUnsupportedAlgorithm, alg.Algorithm)
	}
	var params pbeParams
	if err := unmarshalAll(alg.Parameters.FullBytes, &params); err != nil {
		return nil, nil, fmt.Errorf("PBE parameters: %v", err)
	}
	if err := checkIterations(params.Iterations); err != nil {
		return nil, nil, err
	}
	bmp := bmpPassword(password)
	defer clear(bmp)
	keyLen := 24
	switch {
	case alg.Algorithm.Equal(oidPBEWithSHAAnd128BitRC2CBC):
		keyLen = 16
	case alg.Algorithm.Equal(oidPBEWithSHAAnd40BitRC2CBC):
		keyLen = 5
	}
	key := p12KDF(sha1.New, 1, bmp, params.Salt, params.Iterations, keyLen)
	defer clear(key)
	iv := p12KDF(sha1.New, 2, bmp, params.Salt, params.Iterations, 8)
	var block cipher.Block
	var err error
	if keyLen == 24 {
		block, err = des.NewTripleDESCipher(key)
	} else {
		block = newRC2(key, keyLen*8)
	}
	return block, iv, err
}

// pbes2Cipher derives the cipher and IV of PBES2 with PBKDF2.
func pbes2Cipher(alg pkix.AlgorithmIdentifier, password []byte) (cipher.Block, []byte, error) {
	var params pbes2Params
	if err := unmarshalAll(alg.Parameters.FullBytes, &params); err != nil {
		return nil, nil, fmt.Errorf("PBES2 parameters: %v", err)
	}
	if !params.KDF.Algorithm.Equal(oidPBKDF2) {
		return nil, nil, fmt.Errorf("%w: PBES2 key derivation %s", ErrUnsupportedAlgorithm, params.KDF.Algorithm)
	}
	var kdf pbkdf2Params
	if err := unmarshalAll(params.KDF.Parameters.FullBytes, &kdf); err != nil {
		return nil, nil, fmt.Errorf("PBKDF2 parameters: %v", err)
	}
	if err := checkIterations(kdf.Iterations); err != nil {
		return nil, nil, err
	}
	prf := prfFor(kdf.PRF.Algorithm)
	if prf == nil {
		return nil, nil, fmt.Errorf("%w: PBKDF2 PRF %s", ErrUnsupportedAlgorithm, kdf.PRF.Algorithm)
	}
	var keyLen int
	var newCipher func([]byte) (cipher.Block, error)
	switch s := params.EncryptionScheme.Algorithm; {
	case s.Equal(oidAES128CBC):
		keyLen, newCipher = 16, aes.NewCipher
	case s.Equal(oidAES192CBC):
		keyLen, newCipher = 24, aes.NewCipher
	case s.Equal(oidAES256CBC):
		keyLen, newCipher = 32, aes.NewCipher
	case s.Equal(oidDESEDE3CBC):
		keyLen, newCipher = 24, des.NewTripleDESCipher
	default:
		return nil, nil, fmt.Errorf("%w: PBES2 cipher %s", ErrUnsupportedAlgorithm, s)
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != keyLen {
		return nil, nil, fmt.Errorf("PBKDF2 key length %d does not fit the cipher", kdf.KeyLength)
	}
	var iv []byte
	if err := unmarshalAll(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil {
		return nil, nil, fmt.Errorf("PBES2 IV: %v", err)
	}
	key, err := pbkdf2Key(prf, password, kdf.Salt, kdf.Iterations, keyLen)
	if err != nil {
		return nil, nil, fmt.Errorf("PBKDF2: %v", err)
	}
	defer clear(key)
	block, err := newCipher(key)
	if err != nil {
		return nil, nil, err
	}
	if len(iv) != block.BlockSize() {
		return nil, nil, fmt.Errorf("PBES2 IV is %d bytes, the cipher needs %d", len(iv), block.BlockSize())
	}
	return block, iv, nil
}

// pbeDecrypt decrypts data (CBC, PKCS#7 padding) with a PBE algorithm. It
// returns errBadPadding when the padding is wrong, which almost always means
// a wrong password. The caller zeroes the result.
func pbeDecrypt(alg pkix.AlgorithmIdentifier, password, data []byte) ([]byte, error) {
	block, iv, err := pbeCipher(alg, password)
	if err != nil {
		return nil, err
	}
	bs := block.BlockSize()
	if len(data) == 0 || len(data)%bs != 0 {
		return nil, fmt.Errorf("encrypted data of %d bytes is not a whole number of %d-byte blocks", len(data), bs)
	}
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
	n := int(out[len(out)-1])
	if n == 0 || n > bs {
		clear(out)
		return nil, errBadPadding
	}
	for _, c := range out[len(out)-n:] {
		if int(c) != n {
			clear(out)
			return nil, errBadPadding
		}
	}
	return out[:len(out)-n], nil
}
