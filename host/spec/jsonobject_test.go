package spec

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

// decodeObjectWithDecoder is decodeObject as encoding/json's Decoder reads
// it, one value at a time: the reference decodeObject must agree with.
func decodeObjectWithDecoder(raw json.RawMessage) (*object, bool) {
	if kindOf(raw) != "object" {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	o := &object{vals: map[string]json.RawMessage{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, ok := tok.(string)
		if !ok {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		if _, seen := o.vals[key]; seen && !slices.Contains(o.dups, key) {
			o.dups = append(o.dups, key)
		}
		o.vals[key] = v
	}
	return o, true
}

var decodeObjectCases = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a" : 1 , "b":"x"}`, "{\n\t\"a\"\t:\r\n[1, {\"b\": [\"]}\"]}] }",
	`{"a":1,"a":2,"a":3,"b":null}`, `{"\u0061":true,"a":false}`, `{"k\"ey":"v\\\"}"}`,
	`{"a":{"b":{"c":[{},[]]}},"d":-1.5e3}`, `{"é":"ü","\ud83d\ude00":0}`, "{\"\xff\":1}",
	`[1]`, `"s"`, `null`, `1`, `{"security":{"tls":{"enabled":true,"keystore_secret":"/a"}}}`,
}

// TestDecodeObjectAgreesWithTheDecoder: decodeObject's keys, values and
// duplicates are encoding/json.Decoder's for every valid JSON document of
// the table (objects, nesting, escapes in keys and strings, duplicates,
// non-objects).
func TestDecodeObjectAgreesWithTheDecoder(t *testing.T) {
	for _, doc := range decodeObjectCases {
		checkDecodeObject(t, []byte(doc))
	}
}

func checkDecodeObject(t *testing.T, data []byte) {
	t.Helper()
	if !json.Valid(data) {
		return // decodeObject's callers pass valid JSON only
	}
	got, gotOK := decodeObject(data)
	want, wantOK := decodeObjectWithDecoder(data)
	if gotOK != wantOK || !reflect.DeepEqual(got, want) {
		t.Errorf("decodeObject(%q) = %+v %t, want %+v %t", data, got, gotOK, want, wantOK)
	}
}

// FuzzDecodeObject holds decodeObject to the Decoder on any valid JSON.
func FuzzDecodeObject(f *testing.F) {
	for _, doc := range decodeObjectCases {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecodeObject(t, data) })
}
