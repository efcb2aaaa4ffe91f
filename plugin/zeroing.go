package plugin

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	backendv1 "github.com/keyship/keyship/proto/keyship/backend/v1"
)

// zeroingPool is a gRPC buffer pool that clears each buffer before it goes
// back: the encoded messages and frames of the plugin protocol hold secrets,
// and a pooled buffer otherwise keeps its last message until it is reused.
type zeroingPool struct{ mem.BufferPool }

// Put clears b and returns it to the pool.
func (p zeroingPool) Put(b *[]byte) {
	clear((*b)[:cap(*b)])
	p.BufferPool.Put(b)
}

// minPooled is gRPC's buffer pooling threshold (mem's, 1 KiB): a buffer of
// a smaller capacity is never returned to a pool.
const minPooled = 1 << 10

// wirePool is the buffer pool of the plugin protocol on both sides.
var wirePool mem.BufferPool = zeroingPool{mem.NewTieredBufferPool(256, 4<<10, 16<<10, 32<<10, 1<<20)}

// wireCodec is the proto codec of the plugin protocol. Unlike gRPC's own it
// encodes every message, however small, into a wirePool buffer (gRPC's
// leaves a message under 1 KiB to the garbage collector, uncleared), decodes
// through one, and once a response that carries secrets (GetResponse,
// IssueResponse) is encoded, clears the secret bytes in the message: after
// Serve has sent a Secret's Data, nothing of it is left in the plugin but
// what the transport still holds until it frees its buffers (cleared too).
type wireCodec struct{}

// Name is the codec's content subtype: it replaces "proto".
func (wireCodec) Name() string { return "proto" }

// Marshal encodes v into a wirePool buffer and clears v's secrets.
func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	m := messageOf(v)
	if m == nil {
		return nil, fmt.Errorf("keyship plugin: cannot encode %T", v)
	}
	size := proto.Size(m)
	// At least the pooling threshold, so that the buffer goes back to
	// wirePool (and is cleared) when the transport frees it.
	buf := wirePool.Get(max(size, minPooled))
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend((*buf)[:0], m)
	if err != nil {
		wirePool.Put(buf)
		return nil, err
	}
	*buf = out
	clearSecrets(v)
	return mem.BufferSlice{mem.NewBuffer(buf, wirePool)}, nil
}

// Unmarshal decodes data into v through a wirePool buffer. proto copies
// bytes fields out of it, so the buffer is cleared when it is freed; data
// is cleared once decoded: gRPC copies a frame under 1 KiB (a Get response
// with one password) into a plain allocation, not a pooled buffer, which
// would keep it uncleared until the garbage collector's memory is reused.
func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m := messageOf(v)
	if m == nil {
		return fmt.Errorf("keyship plugin: cannot decode into %T", v)
	}
	buf := data.MaterializeToBuffer(wirePool) // data itself when one buffer
	defer buf.Free()
	err := proto.Unmarshal(buf.ReadOnlyData(), m)
	for _, b := range data {
		clear(b.ReadOnlyData()) // the codec is the message's last reader
	}
	return err
}

func messageOf(v any) proto.Message {
	switch v := v.(type) {
	case proto.Message:
		return v
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(v)
	}
	return nil
}

// clearSecrets zeroes the secret bytes of a response that was just encoded.
// A backend hands its Secret.Data over with the result (as Versions already
// assumes), so the buffer is the protocol's to clear.
func clearSecrets(v any) {
	switch r := v.(type) {
	case *backendv1.GetResponse:
		for _, res := range r.GetResults() {
			clear(res.GetSecret().GetData())
		}
	case *backendv1.IssueResponse:
		clear(r.GetPrivateKey())
	}
}

var _ encoding.CodecV2 = wireCodec{}

// zeroingServerOptions make a plugin's gRPC server encode with wireCodec,
// take its transport buffers from wirePool, and write frames straight to
// the connection: gRPC's write buffer (32 KiB per connection) would keep the
// last response sent, secrets included, until later traffic overwrote it.
func zeroingServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ForceServerCodecV2(wireCodec{}), experimental.BufferPool(wirePool), grpc.WriteBufferSize(0)}
}

// zeroingDialOptions are zeroingServerOptions for a host's connection, and
// no read buffer: gRPC's (32 KiB per connection) would keep the frames of
// the last responses read, secrets included, until later reads overwrote
// them (each frame is read straight into its own buffer instead).
func zeroingDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.ForceCodecV2(wireCodec{})), experimental.WithBufferPool(wirePool),
		grpc.WithWriteBufferSize(0), grpc.WithReadBufferSize(0)}
}
