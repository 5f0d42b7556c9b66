package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/internal/testenv"
	"fspo/tokenizer"
)

// writeData makes a small dataset: users u0..u5 (u0..u3 train), 6 records
// each; user u0's responses are long.
func writeData(t *testing.T) string {
	dir := t.TempDir()
	w, err := dataset.Append(filepath.Join(dir, PreferencesFile))
	if err != nil {
		t.Fatal(err)
	}
	for u := 0; u < 6; u++ {
		for i := 0; i < 6; i++ {
			resp := "The cat sat."
			if u == 0 {
				resp = strings.Repeat("The big red dog ran to the park and played. ", 12)
			}
			r := dataset.Record{User: "u" + string(rune('0'+u)), Prompt: "Once upon a time,", Chosen: resp + " " + string(rune('a'+i)), Rejected: "A bird flew " + string(rune('a'+i)), Description: "likes cats"}
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := dataset.Describe(filepath.Join(dir, PreferencesFile))
	if err != nil {
		t.Fatal(err)
	}
	m := dataset.Manifest{Version: dataset.ManifestVersion, Domain: "test", Created: "2026-01-01T00:00:00Z",
		TrainUsers: []string{"u0", "u1", "u2", "u3"}, TestUsers: []string{"u4", "u5"}, Files: map[string]dataset.FileInfo{PreferencesFile: info}}
	if err := dataset.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPrepare(t *testing.T) {
	tok, err := tokenizer.Load(testenv.Model(t).Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	dir := writeData(t)
	codec := fewshot.Codec{Tok: tokenizer.Llama2C(tok), Variant: episode.Plain, Layout: episode.Compact}
	d := Data{Dir: dir, Variant: episode.Plain, Layout: episode.Compact, Shots: 2, Seed: 1}
	// u0's episodes need ~600 positions: an error naming the problem, unless dropping them is allowed
	if _, _, err := Prepare(d, codec, 512); err == nil || !strings.Contains(err.Error(), "do not fit") {
		t.Fatalf("episodes too long for 512 positions: error %v", err)
	}
	d.MaxDropped = 0.3
	items, st, err := Prepare(d, codec, 512)
	if err != nil {
		t.Fatal(err)
	}
	// 4 train users × 2 windows of 3 × 2(N+1)=6 passes = 48 episodes, u0's 12 dropped
	if st.Episodes != 36 || st.Dropped != 12 || len(items) != 36 {
		t.Fatalf("episodes %d dropped %d items %d, want 36, 12, 36", st.Episodes, st.Dropped, len(items))
	}
	for _, it := range items {
		if it.User == "u0" || it.User == "u4" || it.User == "u5" {
			t.Fatalf("item of user %s: only u1..u3 fit and are train users", it.User)
		}
	}
	d.Users, d.MaxDropped = "test", 0
	held, _, err := Prepare(d, codec, 512)
	if err != nil || len(held) != 24 {
		t.Fatalf("held-out items %d, err %v; want 24", len(held), err)
	}
	// a user with too few records for N shots + 1 query
	d.Users, d.Shots = "", 6
	if _, _, err := Prepare(d, codec, 4096); err == nil || !strings.Contains(err.Error(), "fewer than") {
		t.Fatalf("6 shots from 6 records: error %v", err)
	}
	os.Remove(filepath.Join(dir, dataset.ManifestName))
	if _, _, err := Prepare(d, codec, 512); err == nil {
		t.Fatal("no manifest: no error")
	}
}
