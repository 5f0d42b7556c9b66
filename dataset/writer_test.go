package dataset

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func rec(user string, i int) Record {
	return Record{User: user, Prompt: fmt.Sprintf("question %d", i), Chosen: fmt.Sprintf("good %d", i),
		Rejected: fmt.Sprintf("bad %d", i)}
}

func TestWriterRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jsonl")
	w, err := Append(path)
	if err != nil {
		t.Fatal(err)
	}
	score := 0.25
	in := []Record{
		rec("u1", 1),
		{User: "u2", Prompt: "<q> & \"quotes\"\nnewline", Chosen: "é", Rejected: "e", ID: "mine",
			ChosenScore: &score, Meta: map[string]string{"k": "v"}},
	}
	for _, r := range in {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	in[0].ID = ContentID(in[0])
	if !reflect.DeepEqual(got, in) {
		t.Errorf("read back\n got %+v\nwant %+v", got, in)
	}
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "\n"); n != 2 {
		t.Errorf("file has %d lines, want 2:\n%s", n, data)
	}
	if strings.Contains(string(data), `\u003c`) {
		t.Errorf("HTML escaping in the file: %s", data)
	}
}

func TestWriterRejectsBadRecords(t *testing.T) {
	w, err := Append(filepath.Join(t.TempDir(), "p.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tests := []struct {
		r    Record
		want string
	}{
		{Record{User: "u", Prompt: "p", Chosen: "a"}, "rejected: missing"},
		{Record{User: "u", Prompt: "p", Chosen: "a", Rejected: "a"}, "rejected: equals chosen"},
		{Record{User: "u", Prompt: "p\xff", Chosen: "a", Rejected: "b"}, "prompt: invalid UTF-8"},
	}
	for _, tc := range tests {
		err := w.Write(tc.r)
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("Write(%+v) = %v, want an error ending %q", tc.r, err, tc.want)
		}
	}
	if w.Len() != 0 {
		t.Errorf("Len = %d after only bad writes", w.Len())
	}
}

func TestWriterRepairsPartialLine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		partial string
	}{
		{"half a record", `{"user":"u9","prompt":"q`},
		{"whole record but no newline", `{"user":"u9","prompt":"q","chosen":"c","rejected":"d"}`},
		{"one byte", `{`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.jsonl")
			w, err := Append(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := w.Write(rec("u1", i)); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			before, _ := os.ReadFile(path)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(tc.partial) // a crash in the middle of a write
			f.Close()

			w, err = Append(path)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if got, want := w.Cut(), int64(len(tc.partial)); got != want {
				t.Errorf("Cut = %d, want %d", got, want)
			}
			after, _ := os.ReadFile(path)
			if string(after) != string(before) {
				t.Errorf("after repair the file is\n%s\nwant\n%s", after, before)
			}
			if w.Len() != 3 || !w.Has(ContentID(rec("u1", 2))) {
				t.Errorf("Len = %d, Has(record 2) = false after repair", w.Len())
			}
			if err := w.Write(rec("u2", 0)); err != nil {
				t.Fatal(err)
			}
			got, err := ReadAll(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 4 || got[3].User != "u2" {
				t.Errorf("after repair and a write: %d records, last %+v", len(got), got[len(got)-1])
			}
		})
	}
}

func TestWriterCleanFileNotCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jsonl")
	if err := os.WriteFile(path, []byte(good+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Append(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Cut() != 0 || w.Len() != 1 {
		t.Errorf("Cut = %d, Len = %d; want 0, 1", w.Cut(), w.Len())
	}
}

func TestWriterRejectsCorruptExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jsonl")
	os.WriteFile(path, []byte(good+"\n{\"user\":\"u\"}\n"), 0o644)
	_, err := Append(path)
	if err == nil || !strings.HasSuffix(err.Error(), "p.jsonl:2: prompt: missing") {
		t.Errorf("Append on a corrupt file: %v", err)
	}
	os.WriteFile(path, []byte(good+"\n"+good+"\n"), 0o644)
	_, err = Append(path)
	if err == nil || !strings.Contains(err.Error(), "p.jsonl:2: id: duplicate record") {
		t.Errorf("Append on a file with duplicates: %v", err)
	}
}

func TestWriterResumeSkipsDuplicates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jsonl")
	produce := func(w *Writer, n int) (written int) {
		for i := range n {
			r := rec("u1", i)
			if w.Has(ContentID(r)) {
				continue
			}
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
			written++
		}
		return written
	}
	w, _ := Append(path)
	if got := produce(w, 5); got != 5 {
		t.Errorf("first run wrote %d, want 5", got)
	}
	w.Close()
	w, _ = Append(path)
	defer w.Close()
	if got := produce(w, 8); got != 3 {
		t.Errorf("resumed run wrote %d, want 3", got)
	}
	if err := w.Write(rec("u1", 0)); !errors.Is(err, ErrDuplicate) {
		t.Errorf("writing a duplicate: %v, want ErrDuplicate", err)
	}
	if err := w.WriteBatch([]Record{rec("u3", 1), rec("u3", 1)}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate inside a batch: %v, want ErrDuplicate", err)
	}
	got, _ := ReadAll(path)
	if len(got) != 8 {
		t.Errorf("%d records in file, want 8", len(got))
	}
}

func TestWriterConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jsonl")
	w, err := Append(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if err := w.Write(rec(fmt.Sprintf("u%d", g), i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	w.Close()
	got, err := ReadAll(path)
	if err != nil || len(got) != 40 {
		t.Errorf("ReadAll: %d records, %v; want 40", len(got), err)
	}
	if err := w.Write(rec("u", 0)); err == nil {
		t.Error("Write after Close: no error")
	}
}

func TestContentID(t *testing.T) {
	a := Record{User: "u", Prompt: "ab", Chosen: "c", Rejected: "d"}
	b := Record{User: "u", Prompt: "a", Chosen: "bc", Rejected: "d"}
	if ContentID(a) == ContentID(b) {
		t.Error("ContentID ignores field boundaries")
	}
	if got := ContentID(a); len(got) != ContentIDLen || got != ContentID(a) {
		t.Errorf("ContentID = %q, want %d stable hex digits", got, ContentIDLen)
	}
	withMeta := a
	withMeta.Source, withMeta.Description = "x", "y"
	if ContentID(withMeta) != ContentID(a) {
		t.Error("ContentID depends on fields other than user, prompt, chosen, rejected")
	}
}

func TestValidate(t *testing.T) {
	var recs []Record
	for i := range 5 {
		recs = append(recs, rec("alice", i))
	}
	recs = append(recs, rec("bob", 0), rec("bob", 1), rec("carol", 0))
	tests := []struct {
		name string
		recs []Record
		min  int
		want string
	}{
		{"enough", recs, 1, ""},
		{"short users", recs, 3, `2 of 3 users have fewer than the 3 records one episode needs (N shots + 1 query): user "bob" has 2, user "carol" has 1`},
		{"bad record", append(recs[:1:1], Record{User: "x"}), 1, `record 1 (user "x"): prompt: missing`},
		{"duplicate", append(recs[:2:2], recs[0]), 1, `record 2 (user "alice"): id "` + ContentID(recs[0]) + `" duplicates record 0`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.recs, tc.min)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}
