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

// FuzzManifest feeds arbitrary bytes to the manifest parser: no panics,
// errors always name a field, and an accepted manifest survives a
// write/read round trip unchanged.
func FuzzManifest(f *testing.F) {
	good, _ := json.Marshal(sampleManifest())
	f.Add(good)
	f.Add([]byte(`{"version":1,"domain":"d","seed":1,"created":"2026-01-01T00:00:00Z","train_users":["a"],"test_users":["b"]}`))
	f.Add([]byte(`{"version":1,"domain":"d","created":"2026-01-01T00:00:00Z","files":{"x":{"sha256":"00","records":1}}}`))
	f.Add([]byte(`{"version":1,"files":{"x":[]}}`))
	f.Add([]byte(`{"config":{"a":[1,2]},"notes":{"k":1}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, ferr := parseManifest(data)
		if ferr != nil {
			if ferr.Field == "" || ferr.Problem == "" {
				t.Fatalf("error without field or problem: %#v", ferr)
			}
			return
		}
		dir := t.TempDir()
		if err := WriteManifest(dir, m); err != nil {
			t.Fatalf("accepted manifest does not write: %v", err)
		}
		back, err := ReadManifest(dir)
		if err != nil {
			t.Fatalf("re-reading: %v", err)
		}
		if !reflect.DeepEqual(normalize(back), normalize(m)) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, back)
		}
	})
}

// normalize treats empty and nil collections alike (omitempty drops them).
func normalize(m Manifest) Manifest {
	if len(m.Interpolated) == 0 {
		m.Interpolated = nil
	}
	if len(m.Notes) == 0 {
		m.Notes = nil
	}
	if len(m.Config) == 0 {
		m.Config = nil
	}
	if len(m.TrainUsers) == 0 {
		m.TrainUsers = nil
	}
	if len(m.TestUsers) == 0 {
		m.TestUsers = nil
	}
	if len(m.Files) == 0 {
		m.Files = nil
	}
	return m
}
