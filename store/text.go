package store

import (
	"fmt"
	"unicode/utf8"
)

// InvalidTextError is returned by a write whose text field cannot be stored
// the same way by every backend: invalid UTF-8, NUL (PostgreSQL's text type
// refuses it) or another C0 control character. Tab, newline and carriage
// return are text and pass.
type InvalidTextError struct {
	Field  string // the field's name, as the API spells it
	Reason string
}

func (e *InvalidTextError) Error() string {
	return fmt.Sprintf("field %q %s", e.Field, e.Reason)
}

// CheckText validates one text field before storage (see InvalidTextError).
func CheckText(field, v string) error {
	if !utf8.ValidString(v) {
		return &InvalidTextError{field, "is not valid UTF-8"}
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == 0:
			return &InvalidTextError{field, fmt.Sprintf("contains a NUL character (byte %d)", i)}
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r':
			return &InvalidTextError{field, fmt.Sprintf("contains the control character U+%04X (byte %d)", c, i)}
		}
	}
	return nil
}

// checkTexts checks name/value pairs in order and returns the first failure.
func checkTexts(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if err := CheckText(fields[i], fields[i+1]); err != nil {
			return err
		}
	}
	return nil
}
