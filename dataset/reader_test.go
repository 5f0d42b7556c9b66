package dataset

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const good = `{"user":"u1","prompt":"p","chosen":"a","rejected":"b"}`

func TestReaderErrors(t *testing.T) {
	long := `{"user":"u1","prompt":"` + strings.Repeat("x", MaxLine) + `","chosen":"a","rejected":"b"}`
	tests := []struct {
		name, line, want string
	}{
		{"missing chosen", `{"user":"u1","prompt":"p","rejected":"b"}`, "prefs.jsonl:2: chosen: missing"},
		{"missing user", `{"prompt":"p","chosen":"a","rejected":"b"}`, "prefs.jsonl:2: user: missing"},
		{"missing prompt", `{"user":"u1","chosen":"a","rejected":"b"}`, "prefs.jsonl:2: prompt: missing"},
		{"missing rejected", `{"user":"u1","prompt":"p","chosen":"a"}`, "prefs.jsonl:2: rejected: missing"},
		{"empty prompt", `{"user":"u1","prompt":"","chosen":"a","rejected":"b"}`, "prefs.jsonl:2: prompt: empty"},
		{"blank user", `{"user":" \t","prompt":"p","chosen":"a","rejected":"b"}`, "prefs.jsonl:2: user: blank"},
		{"same", `{"user":"u1","prompt":"p","chosen":"a","rejected":"a"}`, "prefs.jsonl:2: rejected: equals chosen"},
		{"unknown key", `{"user":"u1","prompt":"p","chosen":"a","rejected":"b","colour":"red"}`, "prefs.jsonl:2: colour: unknown field"},
		{"key case", `{"User":"u1","prompt":"p","chosen":"a","rejected":"b"}`, "prefs.jsonl:2: User: unknown field"},
		{"duplicate key", `{"user":"u1","user":"u2","prompt":"p","chosen":"a","rejected":"b"}`, "prefs.jsonl:2: user: duplicate field"},
		{"number user", `{"user":7,"prompt":"p","chosen":"a","rejected":"b"}`, "prefs.jsonl:2: user: must be a string, got number"},
		{"null chosen", `{"user":"u1","prompt":"p","chosen":null,"rejected":"b"}`, "prefs.jsonl:2: chosen: must be a string, got null"},
		{"string score", `{"user":"u1","prompt":"p","chosen":"a","rejected":"b","chosen_score":"1"}`, "prefs.jsonl:2: chosen_score: must be a number, got string"},
		{"meta not strings", `{"user":"u1","prompt":"p","chosen":"a","rejected":"b","meta":{"k":1}}`, "prefs.jsonl:2: meta: must be an object of strings"},
		{"meta array", `{"user":"u1","prompt":"p","chosen":"a","rejected":"b","meta":[]}`, "prefs.jsonl:2: meta: must be an object of strings, got array"},
		{"blank id", `{"user":"u1","prompt":"p","chosen":"a","rejected":"b","id":" "}`, "prefs.jsonl:2: id: blank"},
		{"array", `["user"]`, "prefs.jsonl:2: line: not a JSON object"},
		{"empty line", ``, "prefs.jsonl:2: line: empty"},
		{"spaces", "  \r", "prefs.jsonl:2: line: empty"},
		{"truncated", `{"user":"u1","prompt":"p"`, "prefs.jsonl:2: json: unexpected end of JSON input"},
		{"syntax", `{"user" "u1"}`, "prefs.jsonl:2: json: expected colon after object key"},
		{"trailing", good + ` {}`, "prefs.jsonl:2: line: trailing data after the JSON object"},
		{"bad utf8", `{"user":"u` + "\xff" + `","prompt":"p","chosen":"a","rejected":"b"}`, "prefs.jsonl:2: line: invalid UTF-8"},
		{"too long", long, "prefs.jsonl:2: line: longer than 16777216 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(good+"\n"+tc.line+"\n"+good+"\n"), "prefs.jsonl")
			if _, err := r.Next(); err != nil {
				t.Fatalf("line 1: %v", err)
			}
			_, err := r.Next()
			if err == nil {
				t.Fatalf("line 2: no error, want %q", tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error\n got %q\nwant %q", got, tc.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Line != 2 || fe.File != "prefs.jsonl" {
				t.Errorf("error %#v is not a *FieldError at prefs.jsonl:2", err)
			}
		})
	}
}

func TestReaderContinuesAfterBadLine(t *testing.T) {
	in := good + "\n{}\n" + `{"user":"u2","prompt":"q","chosen":"c","rejected":"d"}`
	r := NewReader(strings.NewReader(in), "x.jsonl")
	var users []string
	var errs []string
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		users = append(users, rec.User)
	}
	if want := []string{"u1", "u2"}; !reflect.DeepEqual(users, want) {
		t.Errorf("users %v, want %v", users, want)
	}
	if want := []string{"x.jsonl:2: user: missing"}; !reflect.DeepEqual(errs, want) {
		t.Errorf("errors %q, want %q", errs, want)
	}
	if r.Line() != 3 {
		t.Errorf("Line() = %d, want 3", r.Line())
	}
}

func TestReaderFullRecord(t *testing.T) {
	line := `{"user":"u1","prompt":"p <b>","chosen":"a","rejected":"b","description":"likes cats",` +
		`"id":"x1","source":"stories","rejected_description":"likes dogs","chosen_score":1.5,` +
		`"rejected_score":null,"meta":{"model":"m"}}`
	r := NewReader(strings.NewReader(line), "f")
	got, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	one := 1.5
	want := Record{User: "u1", Prompt: "p <b>", Chosen: "a", Rejected: "b", Description: "likes cats",
		ID: "x1", Source: "stories", RejectedDescription: "likes dogs", ChosenScore: &one,
		Meta: map[string]string{"model": "m"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after last line: %v, want io.EOF", err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("EOF is not sticky: %v", err)
	}
}

func TestReadAllAndOffsets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.jsonl")
	second := `{"user":"u2","prompt":"q","chosen":"c","rejected":"d"}`
	if err := os.WriteFile(path, []byte(good+"\r\n"+second+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[1].User != "u2" {
		t.Fatalf("ReadAll = %+v", recs)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, want := range []int64{0, int64(len(good) + 2)} {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		if r.Offset() != want {
			t.Errorf("record %d offset %d, want %d", i, r.Offset(), want)
		}
	}
	if _, err := ReadAll(filepath.Join(dir, "none.jsonl")); err == nil {
		t.Error("ReadAll of a missing file: no error")
	}
	if err := os.WriteFile(path, []byte(good+"\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAll(path); err == nil || !strings.HasSuffix(err.Error(), "p.jsonl:2: line: empty") {
		t.Errorf("ReadAll with a blank line: %v", err)
	}
}

func TestReaderMaxLineBoundary(t *testing.T) {
	pad := func(n int) string { // a valid record line of exactly n bytes
		base := `{"user":"u","prompt":"","chosen":"a","rejected":"b"}`
		return strings.Replace(base, `"prompt":""`, `"prompt":"`+strings.Repeat("x", n-len(base))+`"`, 1)
	}
	for _, tc := range []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"max with newline", pad(MaxLine) + "\n", false},
		{"max without newline", pad(MaxLine), false},
		{"over with newline", pad(MaxLine+1) + "\n", true},
		{"over without newline", pad(MaxLine + 1), true},
	} {
		_, err := NewReader(strings.NewReader(tc.in), "f").Next()
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.name, err, tc.wantErr)
		}
	}
}
