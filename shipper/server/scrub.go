package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The API's responses carry secrets (a Mesos secret's value, a file's
// contents). Connect adopts each encoded response into its buffer pool once
// written, and another call may be reading its request into that memory at
// once, so keyship does not clear an encoding after the write (doing so
// corrupted concurrent Watch requests). The pool's buffers are freed by the
// GC within two sweeps and handed back to the kernel, which zeroes them
// (the daemon's sweep, debug.FreeOSMemory). What the codecs control, they
// keep out of Go strings (marshalJSON).

// protoCodec is Connect's binary proto codec (the gRPC and Connect
// protocols); it does not append to
// Connect's pooled buffers (their contents outlive the call).
type protoCodec struct{}

func (protoCodec) Name() string { return "proto" }

func (protoCodec) Marshal(m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", m)
	}
	return proto.Marshal(pm)
}

func (protoCodec) Unmarshal(data []byte, m any) error {
	pm, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a proto.Message", m)
	}
	return proto.Unmarshal(data, pm)
}

// marshalJSON is protojson's encoding of m with every bytes field spliced
// in by keyship, so that no encoding of a secret is left in a buffer this
// package does not clear: protojson base64-encodes bytes into a string of
// its own (uncleared garbage), so the fields are swapped for random tokens
// while protojson runs, and the tokens' encodings replaced with the fields'
// in one buffer.
func marshalJSON(m proto.Message) ([]byte, error) {
	var sw swaps
	sw.walk(m.ProtoReflect())
	defer sw.restore()
	out, err := protojson.MarshalOptions{}.Marshal(m)
	if err != nil || len(sw.tokens) == 0 {
		return out, err
	}
	type hit struct{ at, token int }
	var hits []hit
	size := len(out)
	for i, enc := range sw.encoded {
		for from := 0; ; {
			j := bytes.Index(out[from:], enc)
			if j < 0 {
				break
			}
			hits = append(hits, hit{from + j, i})
			size += base64.StdEncoding.EncodedLen(len(sw.values[i])) - len(enc)
			from += j + len(enc)
		}
	}
	slices.SortFunc(hits, func(a, b hit) int { return a.at - b.at })
	res := make([]byte, 0, size)
	last := 0
	for _, h := range hits {
		res = append(res, out[last:h.at]...)
		n := base64.StdEncoding.EncodedLen(len(sw.values[h.token]))
		base64.StdEncoding.Encode(res[len(res):len(res)+n], sw.values[h.token])
		res = res[:len(res)+n]
		last = h.at + len(sw.encoded[h.token])
	}
	res = append(res, out[last:]...)
	if len(res) != size {
		clear(res)
		return nil, errors.New("keyship: a bytes field's token was not found once in the JSON encoding")
	}
	return res, nil
}

// tokenLen is a token's length: 12 random bytes are 16 base64 characters
// without padding.
const tokenLen = 12

// swaps are the bytes fields of a message swapped for tokens.
type swaps struct {
	swapped []swapped
	values  [][]byte // by token
	tokens  [][]byte
	encoded [][]byte // each token's base64, as protojson writes it
	byValue map[*byte]int
	isToken map[*byte]bool
}

// swapped is one field swapped for a token, and its own value.
type swapped struct {
	m   protoreflect.Message
	fd  protoreflect.FieldDescriptor
	own []byte
}

// walk swaps every non-empty singular bytes field of m and its messages
// for a token (the same bytes, shared by several messages, one token; a
// message reached twice is swapped once).
func (sw *swaps) walk(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					sw.walk(mv.Message())
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				l := v.List()
				for i := range l.Len() {
					sw.walk(l.Get(i).Message())
				}
			}
		case fd.Message() != nil:
			sw.walk(v.Message())
		case fd.Kind() == protoreflect.BytesKind && len(v.Bytes()) > 0 && !sw.isToken[&v.Bytes()[0]]:
			sw.swap(m, fd, v.Bytes())
		}
		return true
	})
}

func (sw *swaps) swap(m protoreflect.Message, fd protoreflect.FieldDescriptor, b []byte) {
	if sw.byValue == nil {
		sw.byValue, sw.isToken = map[*byte]int{}, map[*byte]bool{}
	}
	i, ok := sw.byValue[&b[0]]
	if !ok || len(sw.values[i]) != len(b) {
		tok := make([]byte, tokenLen)
		_, _ = rand.Read(tok)
		i = len(sw.tokens)
		sw.tokens = append(sw.tokens, tok)
		sw.values = append(sw.values, b)
		sw.encoded = append(sw.encoded, []byte(base64.StdEncoding.EncodeToString(tok)))
		sw.byValue[&b[0]], sw.isToken[&tok[0]] = i, true
	}
	sw.swapped = append(sw.swapped, swapped{m, fd, b})
	m.Set(fd, protoreflect.ValueOfBytes(sw.tokens[i]))
}

// restore puts the fields' own bytes back.
func (sw *swaps) restore() {
	for _, s := range sw.swapped {
		s.m.Set(s.fd, protoreflect.ValueOfBytes(s.own))
	}
}
