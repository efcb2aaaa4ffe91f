package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/keyship/keyship/host/spec"
)

// jsonCodec is Connect's JSON codec with one difference: an enum value
// given by a name its enum does not have ("targets": ["TARGET_EVIL"]) is
// refused (INVALID_ARGUMENT), where protojson, discarding what it does not
// know, drops it, which made TARGET_FETCH of an unknown target. Unknown
// fields are still discarded, so that an older server takes a newer
// client's requests. It encodes through marshalJSON, whose encodings are
// cleared once written (scrub.go).
type jsonCodec struct{ name string }

// jsonCodecs replace Connect's two JSON codecs ("json" and its charset
// variant).
var jsonCodecs = []*jsonCodec{{name: "json"}, {name: "json; charset=utf-8"}}

func (c *jsonCodec) Name() string { return c.name }

func (c *jsonCodec) Marshal(m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", m)
	}
	return marshalJSON(pm)
}

func (c *jsonCodec) Unmarshal(data []byte, m any) error {
	pm, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a proto.Message", m)
	}
	if len(data) == 0 {
		return errors.New("zero-length payload is not a valid JSON object")
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, pm); err != nil {
		return fmt.Errorf("unmarshal into %T: %w", m, err)
	}
	return checkEnumNames(pm.ProtoReflect().Descriptor(), data, "")
}

// checkEnumNames returns an error naming the first enum field of the JSON
// object data (a message md) whose value is a name its enum does not have.
// protojson has already parsed data, so malformed JSON does not reach here.
func checkEnumNames(md protoreflect.MessageDescriptor, data []byte, prefix string) error {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return nil
	}
	for key, raw := range obj {
		fd := md.Fields().ByJSONName(key)
		if fd == nil {
			fd = md.Fields().ByTextName(key)
		}
		if fd == nil || (fd.Kind() != protoreflect.EnumKind && fd.Message() == nil) {
			continue
		}
		name := prefix + string(fd.Name())
		switch {
		case fd.IsMap():
			var vals map[string]json.RawMessage
			if json.Unmarshal(raw, &vals) != nil {
				continue
			}
			for k, v := range vals {
				if err := checkEnumValue(fd.MapValue(), v, fmt.Sprintf("%s[%q]", name, spec.Shorten(k))); err != nil {
					return err
				}
			}
		case fd.IsList():
			var items []json.RawMessage
			if json.Unmarshal(raw, &items) != nil {
				continue
			}
			for i, v := range items {
				if err := checkEnumValue(fd, v, fmt.Sprintf("%s[%d]", name, i)); err != nil {
					return err
				}
			}
		default:
			if err := checkEnumValue(fd, raw, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkEnumValue checks one value of field fd: an enum name, or a message
// that may hold some (well-known types aside).
func checkEnumValue(fd protoreflect.FieldDescriptor, raw json.RawMessage, name string) error {
	if md := fd.Message(); md != nil {
		if strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
			return nil
		}
		return checkEnumNames(md, raw, name+".")
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil // a number, or null: protojson took it
	}
	ed := fd.Enum()
	if ed.Values().ByName(protoreflect.Name(s)) != nil {
		return nil
	}
	var names []string
	for i := range ed.Values().Len() {
		if v := ed.Values().Get(i); v.Number() != 0 {
			names = append(names, string(v.Name()))
		}
	}
	return fmt.Errorf("%s: %q is not a value of %s; want one of %s", name, spec.Shorten(s), ed.Name(), strings.Join(names, ", "))
}
