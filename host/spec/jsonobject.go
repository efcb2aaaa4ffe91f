package spec

import (
	"bytes"
	"encoding/json"
	"slices"
)

// decodeObject decodes raw, which must be valid JSON, as an object: each
// key with its value left raw. It reports false when raw is not an object.
//
// It walks raw once instead of running encoding/json's Decoder per value:
// the Decoder builds (and drops) a *SyntaxError, with its quoted message,
// to find the end of each value, and every request a server answers parses
// its spec (keyship serve's warm Ship). The values are sub-slices of raw,
// not copies, so an inline password is not copied once more; a key with an
// escape or a non-ASCII byte is unquoted by encoding/json, as the Decoder
// does. TestDecodeObjectAgreesWithTheDecoder holds it to the Decoder.
func decodeObject(raw json.RawMessage) (*object, bool) {
	if kindOf(raw) != "object" {
		return nil, false
	}
	i := skipJSONSpace(raw, 0) + 1 // past '{'
	o := &object{vals: map[string]json.RawMessage{}}
	if i = skipJSONSpace(raw, i); i < len(raw) && raw[i] == '}' {
		return o, true
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return nil, false
		}
		end, ok := endOfJSONString(raw, i)
		if !ok {
			return nil, false
		}
		key, ok := jsonString(raw[i:end])
		if !ok {
			return nil, false
		}
		if i = skipJSONSpace(raw, end); i >= len(raw) || raw[i] != ':' {
			return nil, false
		}
		i = skipJSONSpace(raw, i+1)
		end, ok = endOfJSONValue(raw, i)
		if !ok {
			return nil, false
		}
		if _, seen := o.vals[key]; seen && !slices.Contains(o.dups, key) {
			o.dups = append(o.dups, key)
		}
		o.vals[key] = raw[i:end:end]
		if i = skipJSONSpace(raw, end); i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case ',':
			i = skipJSONSpace(raw, i+1)
		case '}':
			return o, true
		default:
			return nil, false
		}
	}
}

// jsonString unquotes the JSON string q (quotes included): at once when
// it is plain ASCII without escapes, else with encoding/json.
func jsonString(q []byte) (string, bool) {
	inner := q[1 : len(q)-1]
	plain := bytes.IndexByte(inner, '\\') < 0
	for _, c := range inner {
		plain = plain && c < 0x80
	}
	if plain {
		return string(inner), true
	}
	var key string
	if json.Unmarshal(q, &key) != nil {
		return "", false
	}
	return key, true
}

func skipJSONSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	return i
}

// endOfJSONString returns the index just past the string starting at
// data[i] ('"').
func endOfJSONString(data []byte, i int) (int, bool) {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// endOfJSONValue returns the index just past the value starting at
// data[i].
func endOfJSONValue(data []byte, i int) (int, bool) {
	if i >= len(data) {
		return 0, false
	}
	switch data[i] {
	case '"':
		return endOfJSONString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				end, ok := endOfJSONString(data, j)
				if !ok {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	}
	j := i // a number, true, false or null
	for ; j < len(data); j++ {
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j, j > i
		}
	}
	return j, j > i
}
