package dataset

import (
	"bytes"
	"encoding/json"
)

// This file walks the members of a JSON object that json.Valid has already
// accepted, without the allocations of encoding/json's Decoder: the reader's
// hot path. The grammar is RFC 8259 (https://www.rfc-editor.org/rfc/rfc8259).

// members calls f with each key (unescaped) and raw value of the object
// that starts data (data[0] == '{'; data must be valid JSON).
func members(data []byte, f func(key string, raw []byte) *FieldError) *FieldError {
	i := skipSpace(data, 1)
	if data[i] == '}' {
		return nil
	}
	for {
		j := endOfString(data, i)
		key := unquote(data[i:j])
		i = skipSpace(data, j)
		i = skipSpace(data, i+1) // past ':'
		j = endOfValue(data, i)
		if err := f(key, data[i:j]); err != nil {
			return err
		}
		i = skipSpace(data, j)
		if data[i] == '}' {
			return nil
		}
		i = skipSpace(data, i+1) // past ','
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index just past the string starting at data[i] == '"'.
func endOfString(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(data)
}

// endOfValue returns the index just past the value starting at data[i].
func endOfValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return endOfString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = endOfString(data, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	}
	j := i
	for j < len(data) && bytes.IndexByte([]byte(",}] \t\n\r"), data[j]) < 0 {
		j++
	}
	return j
}

// unquote decodes a valid JSON string literal. Literals without escapes,
// the common case, are copied directly.
func unquote(raw []byte) string {
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		panic("dataset: unquote of a literal json.Valid accepted: " + err.Error())
	}
	return s
}
