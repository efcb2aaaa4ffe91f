package server

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
)

// secretResponse is a ShipResponse with every kind of bytes field: file
// contents, a Mesos secret value shared by two tasks (as mesosToProto
// shares them), and a fragment.
func secretResponse() *hostv1.ShipResponse {
	env := []*hostv1.SecretEnv{{Name: "KEYSHIP_KEYSTORE_PASSWORD", Secret: &hostv1.Secret{Source: &hostv1.Secret_Value{Value: []byte("pw-canary-1")}}}}
	vols := []*hostv1.SecretVolume{{ContainerPath: ".keyship/keystore.jks", Secret: &hostv1.Secret{Source: &hostv1.Secret_Value{Value: []byte{0, 1, 2, 0xfe, 0xff}}}}}
	return &hostv1.ShipResponse{JobId: "job", Fragment: []byte(`{"secrets":"x"}`),
		Files: []*hostv1.File{{Path: ".keyship/keystore.password", Contents: []byte("pw-canary-1")}},
		Tasks: []*hostv1.TaskShipment{{TaskId: "a", Env: env, Volumes: vols}, {TaskId: "b", Env: env, Volumes: vols}}}
}

// TestMarshalJSONIsProtojson: the JSON codec's splicing of bytes fields
// gives protojson's encoding byte for byte, and leaves the message as it
// was (its own bytes, not copies, back in place).
func TestMarshalJSONIsProtojson(t *testing.T) {
	m := secretResponse()
	before := proto.Clone(m)
	value := m.Tasks[0].Env[0].Secret.GetValue()
	want, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := marshalJSON(m)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("marshalJSON:\n%s (%v)\nprotojson:\n%s", got, err, want)
	}
	if !proto.Equal(m, before) || &m.Tasks[1].Env[0].Secret.GetValue()[0] != &value[0] {
		t.Errorf("marshalJSON changed the message: %v", m)
	}
}

// BenchmarkResponseCodecs is what the API's codecs cost over protobuf's
// own, for a Ship response of 10 tasks sharing their Mesos secrets.
//
//	go test -run '^$' -bench ResponseCodecs -benchtime 2000x ./shipper/server/
func BenchmarkResponseCodecs(b *testing.B) {
	m := secretResponse()
	for i := range 8 {
		m.Tasks = append(m.Tasks, &hostv1.TaskShipment{TaskId: string(rune('c' + i)), Env: m.Tasks[0].Env, Volumes: m.Tasks[0].Volumes})
	}
	m.Files[0].Contents = bytes.Repeat([]byte("k"), 2048)
	for _, c := range []struct {
		name    string
		marshal func(any) ([]byte, error)
	}{
		{"json/protojson", func(m any) ([]byte, error) { return protojson.Marshal(m.(proto.Message)) }},
		{"json/keyship", jsonCodecs[0].Marshal},
		{"proto/proto", func(m any) ([]byte, error) { return proto.Marshal(m.(proto.Message)) }},
		{"proto/keyship", protoCodec{}.Marshal},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.marshal(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
