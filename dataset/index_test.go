package dataset

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jsonl")
	w, err := Append(path)
	if err != nil {
		t.Fatal(err)
	}
	var all []Record
	for i := range 12 {
		r := rec([]string{"carol", "alice", "bob"}[i%3], i)
		if i == 7 {
			r.Prompt = strings.Repeat("long ", 30000) // spans several read buffers
		}
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		r.ID = ContentID(r)
		all = append(all, r)
	}
	w.Close()
	// An unterminated last line is indexed too.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"user":"dave","prompt":"p","chosen":"a","rejected":"b"}`)
	f.Close()

	ix, err := Index(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ix.Users(), []string{"alice", "bob", "carol", "dave"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Users = %v, want %v", got, want)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		got, err := ix.Records(u)
		if err != nil {
			t.Fatal(err)
		}
		var want []Record
		for _, r := range all {
			if r.User == u {
				want = append(want, r)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Records(%q): got %d records, want %d (or contents differ)", u, len(got), len(want))
		}
		if ix.Len(u) != 4 {
			t.Errorf("Len(%q) = %d, want 4", u, ix.Len(u))
		}
	}
	got, err := ix.Records("dave")
	if err != nil || len(got) != 1 || got[0].Rejected != "b" {
		t.Errorf("Records(dave) = %+v, %v", got, err)
	}
	if _, err := ix.Records("nobody"); err == nil || !strings.Contains(err.Error(), `user "nobody" is not in the file`) {
		t.Errorf("Records(nobody): %v", err)
	}
	if err := os.Truncate(path, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Records("alice"); err == nil || !strings.Contains(err.Error(), "shrank") {
		t.Errorf("Records after truncation: %v", err)
	}
}

func TestIndexBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jsonl")
	os.WriteFile(path, []byte(good+"\n"+`{"user":"u1"}`+"\n"), 0o644)
	_, err := Index(path)
	if err == nil || !strings.HasSuffix(err.Error(), "p.jsonl:2: prompt: missing") {
		t.Errorf("Index of a bad file: %v", err)
	}
}
