package dataset

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// FieldError is a problem with one field of one record. File and Line are
// set when the record came from a file; the message is then
// "file:line: field: problem" (e.g. "prefs.jsonl:12: chosen: missing"),
// otherwise "field: problem". Field is a JSON key of Record, or one of
// "line" (the line as a whole) and "json" (a syntax error).
type FieldError struct {
	File    string
	Line    int
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	if e.File == "" && e.Line == 0 {
		return e.Field + ": " + e.Problem
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Problem)
}

// Check reports the first problem with r as a record of the data format:
// user, prompt, chosen and rejected must be non-blank, chosen must differ
// from rejected, an ID (when set) must be non-blank, and every string must
// be valid UTF-8 (the JSON encoder would otherwise replace bad bytes
// without telling anyone).
func (r Record) Check() error {
	required := []struct{ name, value string }{
		{"user", r.User}, {"prompt", r.Prompt}, {"chosen", r.Chosen}, {"rejected", r.Rejected},
	}
	for _, f := range required {
		if f.value == "" {
			return &FieldError{Field: f.name, Problem: "missing"}
		}
		if strings.TrimSpace(f.value) == "" {
			return &FieldError{Field: f.name, Problem: "blank"}
		}
	}
	if r.Chosen == r.Rejected {
		return &FieldError{Field: "rejected", Problem: "equals chosen"}
	}
	if r.ID != "" && strings.TrimSpace(r.ID) == "" {
		return &FieldError{Field: "id", Problem: "blank"}
	}
	strs := []struct{ name, value string }{
		{"user", r.User}, {"prompt", r.Prompt}, {"chosen", r.Chosen}, {"rejected", r.Rejected},
		{"description", r.Description}, {"id", r.ID}, {"source", r.Source},
		{"rejected_description", r.RejectedDescription},
	}
	for _, f := range strs {
		if !utf8.ValidString(f.value) {
			return &FieldError{Field: f.name, Problem: "invalid UTF-8"}
		}
	}
	for k, v := range r.Meta {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return &FieldError{Field: "meta", Problem: "invalid UTF-8"}
		}
	}
	return nil
}

// ContentIDLen is the number of hex digits of a ContentID (64 bits).
const ContentIDLen = 16

// ContentID is the short hex SHA-256 of the record's user, prompt, chosen
// and rejected texts (each length-prefixed, so no two different tuples hash
// the same input). It is the record's ID when the producer sets none.
func ContentID(r Record) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, s := range []string{r.User, r.Prompt, r.Chosen, r.Rejected} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))[:ContentIDLen]
}

// Key is the record's ID, or its ContentID when it has none.
func (r Record) Key() string {
	if r.ID != "" {
		return r.ID
	}
	return ContentID(r)
}

// GroupByUser groups records by user, keeping each user's records in input order.
func GroupByUser(records []Record) map[string][]Record {
	by := make(map[string][]Record)
	for _, r := range records {
		by[r.User] = append(by[r.User], r)
	}
	return by
}

// Validate checks every record (Record.Check), that no two records share a
// key (Record.Key), and that every user has at least minPerUser records —
// the N shots plus one query one episode needs (minPerUser = N+1). The
// error names each short user with its count; record problems name the
// record's index in records.
func Validate(records []Record, minPerUser int) error {
	seen := make(map[string]int, len(records))
	count := make(map[string]int)
	for i, r := range records {
		if err := r.Check(); err != nil {
			return fmt.Errorf("record %d (user %q): %w", i, r.User, err)
		}
		k := r.Key()
		if j, dup := seen[k]; dup {
			return fmt.Errorf("record %d (user %q): id %q duplicates record %d", i, r.User, k, j)
		}
		seen[k] = i
		count[r.User]++
	}
	var short []string
	for u, c := range count {
		if c < minPerUser {
			short = append(short, u)
		}
	}
	if len(short) == 0 {
		return nil
	}
	sort.Strings(short)
	const show = 10
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d users have fewer than the %d records one episode needs (N shots + 1 query):",
		len(short), len(count), minPerUser)
	for i, u := range short {
		if i == show {
			fmt.Fprintf(&b, " … and %d more", len(short)-show)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " user %q has %d", u, count[u])
	}
	return fmt.Errorf("%s", b.String())
}
