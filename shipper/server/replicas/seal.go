package replicas

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"
)

// KeySize is the size of the sealing key (--ha-key): AES-256.
const KeySize = 32

// A sealed record is
//
//	format (1 byte, 1) | expires (8 bytes, Unix milliseconds, big endian) | nonce (12) | AES-256-GCM ciphertext and tag
//
// and its additional data is the format's label, the record's kind and
// name, and the clear header (format and expiry), so a sealed record opens
// only as the record it was written as: not under another name (a grant
// moved to another token hash, a job record to another job id, whose hash
// its name is), not with another expiry. The expiry is the one thing in
// clear, so that any replica sweeps expired records without opening them.
const (
	sealFormat = 1
	headerSize = 1 + 8
	nonceSize  = 12
	sealLabel  = "keyship replicas v1"
)

// sealer seals and opens records under one key.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("replicas: the sealing key (--ha-key) must be %d bytes (AES-256), not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func additionalData(kind Kind, name string, header []byte) []byte {
	ad := make([]byte, 0, len(sealLabel)+len(kind)+len(name)+len(header)+3)
	ad = append(ad, sealLabel...)
	ad = append(ad, 0)
	ad = append(ad, kind...)
	ad = append(ad, 0)
	ad = append(ad, name...)
	ad = append(ad, 0)
	return append(ad, header...)
}

// seal returns the sealed record of plaintext, which expires at expires.
func (s *sealer) seal(kind Kind, name string, expires time.Time, plaintext []byte) ([]byte, error) {
	out := make([]byte, headerSize+nonceSize, headerSize+nonceSize+len(plaintext)+s.aead.Overhead())
	out[0] = sealFormat
	binary.BigEndian.PutUint64(out[1:headerSize], uint64(expires.UnixMilli()))
	nonce := out[headerSize : headerSize+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, nonce, plaintext, additionalData(kind, name, out[:headerSize])), nil
}

// open returns the plaintext of a sealed record, or ErrSealed.
func (s *sealer) open(kind Kind, name string, data []byte) ([]byte, error) {
	if len(data) < headerSize+nonceSize+s.aead.Overhead() || data[0] != sealFormat {
		return nil, fmt.Errorf("%w: %s %s is not a sealed record of format %d", ErrSealed, kind, short(name), sealFormat)
	}
	plain, err := s.aead.Open(nil, data[headerSize:headerSize+nonceSize], data[headerSize+nonceSize:], additionalData(kind, name, data[:headerSize]))
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s (another --ha-key, or the record was altered)", ErrSealed, kind, short(name))
	}
	return plain, nil
}

// SealedExpiry returns the expiry in a sealed record's clear header, which
// sweeping reads without the key. It is authenticated only when the record
// is opened.
func SealedExpiry(data []byte) (time.Time, bool) {
	if len(data) < headerSize || data[0] != sealFormat {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(data[1:headerSize]))), true
}

// short abbreviates a record name for messages.
func short(name string) string {
	if len(name) > 12 {
		return name[:12]
	}
	return name
}
