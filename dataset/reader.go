package dataset

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLine is the longest line (without its newline) the reader accepts:
// generous for any text a record holds, small enough that a corrupt file
// without newlines cannot exhaust memory.
const MaxLine = 16 << 20

// Reader streams records from JSONL one line at a time, validating each
// line strictly: a JSON object with only Record's keys (exact spelling, no
// duplicates), each of the right JSON type, and the rules of Record.Check.
// Memory stays proportional to the longest line, not the file. A last line
// without a trailing newline is read like any other.
type Reader struct {
	br     *bufio.Reader
	name   string
	closer io.Closer

	line  int   // number of the line last returned (1-based)
	start int64 // byte offset of that line
	next  int64 // byte offset of the line after it
	lineN int   // length of that line without its '\n'
	buf   []byte
	err   error // final error (I/O, overlong line); nil while reading can go on
}

// Open opens a JSONL file for streaming; Close it when done.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open dataset: %w", err)
	}
	r := NewReader(f, path)
	r.closer = f
	return r, nil
}

// NewReader streams records from rd; name is the file name used in errors.
func NewReader(rd io.Reader, name string) *Reader {
	return &Reader{br: bufio.NewReaderSize(rd, 64<<10), name: name}
}

// Close closes the file opened by Open (a no-op for NewReader).
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	c := r.closer
	r.closer = nil
	return c.Close()
}

// Line is the 1-based number of the line the last Next call read.
func (r *Reader) Line() int { return r.line }

// Offset is the byte offset in the input of the line the last Next call read.
func (r *Reader) Offset() int64 { return r.start }

// Next returns the next record, or io.EOF after the last one. A problem
// with one line is a *FieldError naming file, line and field; Next may be
// called again after it to go on with the following line (a checker listing
// every problem does so). Other errors (I/O, a line over MaxLine) are final
// and returned again by every later call.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	line, err := r.readLine()
	if err != nil {
		r.err = err
		return Record{}, err
	}
	rec, ferr := parseLine(line)
	if ferr != nil {
		ferr.File, ferr.Line = r.name, r.line
		return Record{}, ferr
	}
	return rec, nil
}

// readLine reads one line without its '\n'. The slice is valid until the
// next call.
func (r *Reader) readLine() ([]byte, error) {
	r.buf = r.buf[:0]
	r.start = r.next
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(r.buf)+len(chunk) > MaxLine+1 {
			return nil, &FieldError{File: r.name, Line: r.line + 1, Field: "line",
				Problem: fmt.Sprintf("longer than %d bytes", MaxLine)}
		}
		if err == nil && len(r.buf) == 0 {
			// The common case: the whole line is in the bufio buffer.
			r.line++
			r.next += int64(len(chunk))
			r.lineN = len(chunk) - 1
			return chunk[:len(chunk)-1], nil
		}
		r.buf = append(r.buf, chunk...)
		switch {
		case err == nil:
			r.line++
			r.next += int64(len(r.buf))
			r.lineN = len(r.buf) - 1
			return r.buf[:len(r.buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(r.buf) == 0 {
				return nil, io.EOF
			}
			if len(r.buf) > MaxLine { // an unterminated last line has no '\n' to allow for
				return nil, &FieldError{File: r.name, Line: r.line + 1, Field: "line",
					Problem: fmt.Sprintf("longer than %d bytes", MaxLine)}
			}
			r.line++
			r.next += int64(len(r.buf))
			r.lineN = len(r.buf)
			return r.buf, nil
		default:
			return nil, fmt.Errorf("read %s after line %d: %w", r.name, r.line, err)
		}
	}
}

// recordKeys are the JSON keys of Record, in the order they are written:
// the eight string fields first.
var recordKeys = []string{"user", "prompt", "chosen", "rejected", "description", "id", "source",
	"rejected_description", "chosen_score", "rejected_score", "meta"}

// parseLine decodes and validates one line. The returned error has no file
// or line set.
func parseLine(line []byte) (Record, *FieldError) {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 {
		return Record{}, &FieldError{Field: "line", Problem: "empty"}
	}
	if !utf8.Valid(line) {
		return Record{}, &FieldError{Field: "line", Problem: "invalid UTF-8"}
	}
	if !json.Valid(line) {
		// Only the error path pays for the decoder, which explains the problem.
		if ferr := walkObject(line, func(string, json.RawMessage) *FieldError { return nil }); ferr != nil {
			return Record{}, ferr
		}
		return Record{}, &FieldError{Field: "json", Problem: "invalid JSON"}
	}
	if trimmed[0] != '{' {
		return Record{}, &FieldError{Field: "line", Problem: "not a JSON object"}
	}
	var rec Record
	strField := [...]*string{&rec.User, &rec.Prompt, &rec.Chosen, &rec.Rejected,
		&rec.Description, &rec.ID, &rec.Source, &rec.RejectedDescription}
	var seen uint32
	err := members(trimmed, func(key string, raw []byte) *FieldError {
		i := slices.Index(recordKeys, key)
		if i < 0 {
			return &FieldError{Field: fieldName(key), Problem: "unknown field"}
		}
		if seen&(1<<i) != 0 {
			return &FieldError{Field: fieldName(key), Problem: "duplicate field"}
		}
		seen |= 1 << i
		if i < len(strField) {
			if k := jsonKind(raw); k != "string" {
				return &FieldError{Field: key, Problem: "must be a string, got " + k}
			}
			*strField[i] = unquote(raw)
			return nil
		}
		return setOtherField(&rec, key, raw)
	})
	if err != nil {
		return Record{}, err
	}
	for i := range 4 { // user, prompt, chosen, rejected
		if *strField[i] == "" && seen&(1<<i) != 0 {
			return Record{}, &FieldError{Field: recordKeys[i], Problem: "empty"}
		}
	}
	if cerr := rec.Check(); cerr != nil {
		return Record{}, cerr.(*FieldError)
	}
	return rec, nil
}

// setOtherField decodes a field of Record that is not a string (the scores
// and meta) into rec; null leaves it unset.
func setOtherField(rec *Record, key string, raw []byte) *FieldError {
	switch key {
	case "chosen_score", "rejected_score":
		k := jsonKind(raw)
		if k == "null" {
			return nil
		}
		if k != "number" {
			return &FieldError{Field: key, Problem: "must be a number, got " + k}
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return &FieldError{Field: key, Problem: fmt.Sprintf("number %s out of range", raw)}
		}
		if key == "chosen_score" {
			rec.ChosenScore = &f
		} else {
			rec.RejectedScore = &f
		}
	case "meta":
		k := jsonKind(raw)
		if k == "null" {
			return nil
		}
		if k != "object" {
			return &FieldError{Field: key, Problem: "must be an object of strings, got " + k}
		}
		if err := json.Unmarshal(raw, &rec.Meta); err != nil {
			return &FieldError{Field: key, Problem: "must be an object of strings"}
		}
		if len(rec.Meta) == 0 {
			rec.Meta = nil // {} says no more than an absent meta, as the writer writes it
		}
	}
	return nil
}

// walkObject calls f for each key of the JSON object in data, in order,
// rejecting duplicate keys, non-objects and trailing data.
func walkObject(data []byte, f func(key string, raw json.RawMessage) *FieldError) *FieldError {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return syntaxProblem(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return &FieldError{Field: "line", Problem: "not a JSON object"}
	}
	seen := make(map[string]bool, 12)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxProblem(err)
		}
		key, ok := tok.(string)
		if !ok {
			return &FieldError{Field: "json", Problem: "object key is not a string"}
		}
		if seen[key] {
			return &FieldError{Field: fieldName(key), Problem: "duplicate field"}
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return syntaxProblem(err)
		}
		if ferr := f(key, raw); ferr != nil {
			return ferr
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return syntaxProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &FieldError{Field: "line", Problem: "trailing data after the JSON object"}
	}
	return nil
}

// fieldName is key as an error's field: quoted when empty or unusual, so
// the message stays readable whatever the key.
func fieldName(key string) string {
	for _, c := range key {
		if !(c == '_' || c == '-' || c == '.' || unicode.IsLetter(c) || unicode.IsDigit(c)) {
			return strconv.Quote(key)
		}
	}
	if key == "" {
		return `""`
	}
	return key
}

func syntaxProblem(err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		msg = "unexpected end of JSON input"
	}
	return &FieldError{Field: "json", Problem: msg}
}

// jsonKind names the JSON type of a raw value by its first byte.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// ReadAll reads and validates every record of a JSONL file.
func ReadAll(path string) ([]Record, error) {
	r, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
}
