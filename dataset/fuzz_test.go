package dataset

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// FuzzReader feeds arbitrary input to the reader. It must never panic; every
// error must be a *FieldError naming the file and a line, or io.EOF; and
// every accepted record must pass Check and survive a write/read round trip.
func FuzzReader(f *testing.F) {
	seeds := []string{
		good,
		good + "\n" + good,
		`{"user":"u","prompt":"p","chosen":"a","rejected":"b","description":"d","id":"i","source":"s",` +
			`"rejected_description":"r","chosen_score":1e3,"rejected_score":-0.5,"meta":{"k":"v"}}`,
		`{"user":"\u0075","prompt":"p\n\"q\"","chosen":"a\\b","rejected":"b\ud83d\ude00"}`,
		`{ "user" : "u" , "prompt" : "p" , "chosen" : "a" , "rejected" : "b" }`,
		`{"\u0075ser":"u","prompt":"p","chosen":"a","rejected":"b"}`,
		`{"user":"u","prompt":"p","chosen":"a","rejected":"a"}`,
		`{"user":"u","user":"v","prompt":"p","chosen":"a","rejected":"b"}`,
		`{"user":"u","prompt":"p","chosen":"a","rejected":"b","x":[1,{"y":"}"}]}`,
		`{"user":"u","prompt":"p","chosen":"a","rejected":"b","chosen_score":1e999}`,
		`{"user":"u","prompt":"p","chosen":"a","rejected":"b","meta":{"a":"}","b":"\""}}`,
		`{"user":1}`, `[]`, `null`, `"x"`, `{`, `}`, ``, "\n\n", "{}\n{}", `{"user":"u"} x`, "\xff\xfe",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), "fuzz.jsonl")
		for range 1000 {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.File != "fuzz.jsonl" || fe.Line < 1 || fe.Field == "" || fe.Problem == "" {
					t.Fatalf("error %q (%T) does not name file, line and field", err, err)
				}
				if !strings.HasPrefix(err.Error(), "fuzz.jsonl:") {
					t.Fatalf("error %q lacks the file:line prefix", err)
				}
				if fe.Field == "line" && strings.HasPrefix(fe.Problem, "longer") {
					return // final
				}
				continue
			}
			if err := rec.Check(); err != nil {
				t.Fatalf("accepted record fails Check: %v", err)
			}
			line, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			back, ferr := parseLine(line)
			if ferr != nil {
				t.Fatalf("re-reading %s: %v", line, ferr)
			}
			if !reflect.DeepEqual(back, rec) {
				t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, back)
			}
		}
	})
}
