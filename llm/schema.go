package llm

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Validate checks that text is JSON matching the schema's "type",
// "required", "properties", "items" and "enum" keywords (the subset that
// structured outputs use; JSON Schema 2020-12, json-schema.org). Other
// keywords are not checked.
func (s *Schema) Validate(text string) error {
	var v any
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("schema %s: output is not JSON: %w", s.Name, err)
	}
	if dec.More() {
		return fmt.Errorf("schema %s: output has data after the JSON value", s.Name)
	}
	return validateValue(s.JSON, v, "$")
}

func validateValue(schema map[string]any, v any, path string) error {
	if schema == nil {
		return nil
	}
	if t, ok := schema["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				if s, ok := x.(string); ok {
					types = append(types, s)
				}
			}
		case []string:
			types = t
		}
		if len(types) > 0 && !matchesAny(types, v) {
			return fmt.Errorf("%s: want %s, got %s", path, strings.Join(types, " or "), jsonType(v))
		}
	}
	if enum, ok := schema["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s: %v is not one of %v", path, v, enum)
		}
	}
	switch v := v.(type) {
	case map[string]any:
		for _, k := range stringList(schema["required"]) {
			if _, ok := v[k]; !ok {
				return fmt.Errorf("%s: required key %q is missing", path, k)
			}
		}
		props, _ := schema["properties"].(map[string]any)
		keys := slices.Sorted(maps.Keys(props))
		for _, k := range keys {
			sub, _ := props[k].(map[string]any)
			if x, ok := v[k]; ok {
				if err := validateValue(sub, x, path+"."+k); err != nil {
					return err
				}
			}
		}
		if ap, ok := schema["additionalProperties"].(bool); ok && !ap {
			for k := range v {
				if _, ok := props[k]; !ok {
					return fmt.Errorf("%s: key %q is not allowed", path, k)
				}
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, x := range v {
				if err := validateValue(items, x, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func stringList(x any) []string {
	switch x := x.(type) {
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func matchesAny(types []string, v any) bool {
	for _, t := range types {
		if matches(t, v) {
			return true
		}
	}
	return false
}

func matches(t string, v any) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && f == math.Trunc(f)
	}
	return true // unknown type names are not checked
}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case nil:
		return "null"
	case json.Number:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}
