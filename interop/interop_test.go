package interop

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"fspo/dataset"
	"fspo/episode"
)

func writeLines(t *testing.T, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func collect(t *testing.T, path string, opt Options) ([]dataset.Record, Stats) {
	t.Helper()
	var recs []dataset.Record
	st, err := Import(path, opt, func(r dataset.Record) error { recs = append(recs, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return recs, st
}

func TestImportRoleplayJSONL(t *testing.T) {
	path := writeLines(t, "roleplay.jsonl",
		`{"x": "What should I cook?", "yw": "A stew.", "yl": "Cereal.", "level": 17, "score_persona": "A retired chef in Lyon."}`,
		``,
		`{"x": "Plan my weekend.", "yw": "Hike.", "yl": "Sleep.", "level": "u2", "score_persona": "An active student."}`,
	)
	recs, st := collect(t, path, Options{})
	if st.Layout != Roleplay || st.Rows != 2 || st.Records != 2 {
		t.Fatalf("stats = %+v, want roleplay, 2 rows, 2 records", st)
	}
	want := []struct{ user, desc, chosen, rejected, row string }{
		{"17", "A retired chef in Lyon.", "A stew.", "Cereal.", "1"},
		{"u2", "An active student.", "Hike.", "Sleep.", "3"},
	}
	for i, w := range want {
		r := recs[i]
		if r.User != w.user || r.Description != w.desc || r.Chosen != w.chosen || r.Rejected != w.rejected || r.Meta["row"] != w.row {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
		if r.Source != "import:roleplay.jsonl" || r.ID != dataset.ContentID(r) {
			t.Errorf("record %d: source %q id %q", i, r.Source, r.ID)
		}
	}
}

func TestImportPairwiseLabelDirection(t *testing.T) {
	path := writeLines(t, "reviews.jsonl",
		`{"prompt": "Review Dune.", "response_x": "Great!", "response_y": "Dull.", "level_x": "positive", "level_y": "negative", "scorer_level": "positive", "label": 0}`,
		`{"prompt": "Review Dune.", "response_x": "Great!", "response_y": "Dull.", "level_x": "positive", "level_y": "negative", "scorer_level": "negative", "label": 1}`,
		`{"prompt": "Review Akira.", "response_x": "Wow.", "response_y": "A long, careful and glowing essay.", "level_x": "concise", "level_y": "positive+verbose", "scorer_level": "positive+verbose", "label": 1.0}`,
		`{"prompt": "Why is the sky blue?", "response_x": "Light scatters.", "response_y": "Rayleigh scattering ∝ λ⁻⁴.", "level_x": "elementary school", "level_y": "expert", "scorer_level": "expert", "label": true}`,
	)
	recs, st := collect(t, path, Options{})
	if st.Layout != Pairwise || len(recs) != 4 {
		t.Fatalf("stats = %+v", st)
	}
	for i, w := range []struct{ user, chosen, rejected, desc, rejDesc, interp string }{
		{"positive", "Great!", "Dull.", "This user prefers positive reviews.", "This user prefers negative reviews.", ""},
		{"negative", "Dull.", "Great!", "This user prefers negative reviews.", "This user prefers positive reviews.", ""},
		{"positive+verbose", "A long, careful and glowing essay.", "Wow.", "This user prefers positive and verbose reviews.", "This user prefers concise reviews.", "true"},
		{"expert", "Rayleigh scattering ∝ λ⁻⁴.", "Light scatters.", "The user is expert.", "The user is elementary school.", ""},
	} {
		r := recs[i]
		if r.User != w.user || r.Chosen != w.chosen || r.Rejected != w.rejected || r.Description != w.desc || r.RejectedDescription != w.rejDesc || r.Meta["interpolated"] != w.interp {
			t.Errorf("record %d = %+v\nwant %+v", i, r, w)
		}
	}
	if got := strings.Join(st.Interpolated, ","); got != "positive+verbose" {
		t.Errorf("interpolated = %q", got)
	}
}

func TestImportErrors(t *testing.T) {
	ok := `{"prompt": "p", "response_x": "a", "response_y": "b", "level_x": "x", "level_y": "y", "scorer_level": "s", "label": 0}`
	for _, tc := range []struct {
		name, line, want string
	}{
		{"bad label", strings.Replace(ok, `"label": 0`, `"label": 2`, 1), "bad.jsonl:2: label: 2 is not 0"},
		{"missing user", strings.Replace(ok, `"scorer_level": "s", `, ``, 1), "bad.jsonl:2: scorer_level: missing"},
		{"not json", `{"prompt": `, "bad.jsonl:2: json:"},
		{"unknown layout", `{"question": "q"}`, "bad.jsonl:2: row: neither"},
		{"same responses", strings.Replace(ok, `"response_y": "b"`, `"response_y": "a"`, 1), "bad.jsonl:2: rejected: equals chosen"},
		{"object as text", strings.Replace(ok, `"prompt": "p"`, `"prompt": {"a": 1}`, 1), "bad.jsonl:2: prompt: map[string]interface {} is not text"},
	} {
		path := writeLines(t, "bad.jsonl", ok, tc.line)
		_, err := Import(path, Options{Layout: Pairwise}, func(dataset.Record) error { return nil })
		if tc.name == "unknown layout" {
			_, err = Import(writeLines(t, "bad.jsonl", ok[:0]+`{"a": 1}`, tc.line), Options{}, func(dataset.Record) error { return nil })
			tc.want = "bad.jsonl:1: row: neither"
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	// SkipInvalid counts a bad row instead of stopping, but never a bad label.
	path := writeLines(t, "bad.jsonl", ok, strings.Replace(ok, `"response_y": "b"`, `"response_y": "a"`, 1))
	_, st := collect(t, path, Options{SkipInvalid: true})
	if st.Skipped != 1 || st.Records != 1 || !strings.Contains(st.Problems[0], "bad.jsonl:2") {
		t.Errorf("skip invalid: %+v", st)
	}
}

type pairwiseRow struct {
	Prompt      string `parquet:"prompt"`
	ResponseX   string `parquet:"response_x"`
	ResponseY   string `parquet:"response_y"`
	LevelX      string `parquet:"level_x"`
	LevelY      string `parquet:"level_y"`
	ScorerLevel string `parquet:"scorer_level"`
	Label       int64  `parquet:"label"`
	Index       int64  `parquet:"__index_level_0__"`
}

type roleplayRow struct {
	X            string  `parquet:"x"`
	YW           string  `parquet:"yw"`
	YL           string  `parquet:"yl"`
	Level        int32   `parquet:"level"`
	ScorePersona *string `parquet:"score_persona,optional"`
}

func TestImportParquet(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "elix.parquet")
	rows := []pairwiseRow{
		{"Why rain?", "Clouds cry.", "Condensation.", "child", "expert", "expert", 1, 0},
		{"Why rain?", "Clouds cry.", "Condensation.", "child", "expert", "child", 0, 1},
	}
	if err := parquet.WriteFile(pw, rows); err != nil {
		t.Fatal(err)
	}
	recs, st := collect(t, pw, Options{})
	if st.Layout != Pairwise || len(recs) != 2 {
		t.Fatalf("stats %+v", st)
	}
	if recs[0].User != "expert" || recs[0].Chosen != "Condensation." || recs[1].User != "child" || recs[1].Chosen != "Clouds cry." {
		t.Errorf("records = %+v", recs)
	}

	rp := filepath.Join(dir, "roleplay.parquet")
	p := "A farmer."
	if err := parquet.WriteFile(rp, []roleplayRow{{"Hi?", "Howdy.", "Greetings.", 4, &p}, {"Yo?", "Hey.", "Hello.", 5, nil}}); err != nil {
		t.Fatal(err)
	}
	var got []dataset.Record
	_, err := Import(rp, Options{}, func(r dataset.Record) error { got = append(got, r); return nil })
	if err == nil || !strings.Contains(err.Error(), "roleplay.parquet:2: score_persona: missing") {
		t.Errorf("null persona: err = %v, want roleplay.parquet:2: score_persona: missing", err)
	}
	if len(got) != 1 || got[0].User != "4" || got[0].Description != "A farmer." {
		t.Errorf("first row = %+v", got)
	}
}

func TestImportFileAndExport(t *testing.T) {
	var lines []string
	for _, u := range []string{"positive", "negative", "positive+concise"} {
		for i := 0; i < 6; i++ {
			b, _ := json.Marshal(map[string]any{
				"prompt": "Review title " + string(rune('A'+i)), "response_x": "Good " + u + string(rune('a'+i)), "response_y": "Bad " + u + string(rune('a'+i)),
				"level_x": "positive", "level_y": "negative", "scorer_level": u, "label": i % 2,
			})
			lines = append(lines, string(b))
		}
	}
	src := writeLines(t, "reviews.jsonl", lines...)
	dir := filepath.Join(t.TempDir(), "data")
	st, err := ImportFile(src, dir, Options{}, 0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 18 || st.Duplicates != 0 {
		t.Fatalf("stats %+v", st)
	}
	m, err := dataset.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.TrainUsers) != 1 || len(m.TestUsers) != 2 || strings.Join(m.Interpolated, ",") != "positive+concise" {
		t.Errorf("manifest split train %v test %v interpolated %v", m.TrainUsers, m.TestUsers, m.Interpolated)
	}
	if st, err := ImportFile(src, dir, Options{}, 0.5, 1); err != nil || st.Duplicates != 18 {
		t.Errorf("reimport: %+v, %v; want 18 duplicates", st, err)
	}

	// 6 records per user, 2 shots: 2 episodes per pass, 3 users, 2 passes.
	var buf bytes.Buffer
	prefs := filepath.Join(dir, "preferences.jsonl")
	opt := ExportOptions{Shots: 2, Passes: 2, Seed: 3, Variant: episode.Plain, Layout: episode.Paper}
	n, err := ExportTRL(&buf, prefs, opt)
	if err != nil {
		t.Fatal(err)
	}
	if n != 12 {
		t.Fatalf("episodes = %d, want 12", n)
	}
	recs, _ := dataset.ReadAll(prefs)
	eps := episode.Build(dataset.GroupByUser(recs), 2, 2, 3)
	lines = strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for i, line := range lines {
		var got map[string]string
		if err := json.Unmarshal([]byte(line), &got); err != nil || len(got) != 3 {
			t.Fatalf("line %d: %q (%v), want exactly prompt, chosen, rejected", i, line, err)
		}
		want, _ := episode.Render(episode.Plain, episode.Paper, eps[i])
		if got["prompt"] != want.Prompt || got["chosen"] != want.Chosen || got["rejected"] != want.Rejected {
			t.Errorf("episode %d differs from episode.Render:\n%q\nwant\n%q", i, got["prompt"], want.Prompt)
		}
		if !strings.HasPrefix(got["prompt"], "# Example 1\n## Question\n") || !strings.HasPrefix(got["chosen"], "## Preferred Response\n") {
			t.Errorf("episode %d is not in the paper layout: %q", i, got["prompt"])
		}
	}
	// COT: rejected completions carry the rejected level's description.
	buf.Reset()
	opt.Variant, opt.Users = episode.COT, map[string]bool{"negative": true}
	if n, err := ExportTRL(&buf, prefs, opt); err != nil || n != 4 {
		t.Fatalf("cot export: %d, %v", n, err)
	}
	if !strings.Contains(buf.String(), `"chosen":"## User Description\nThis user prefers negative reviews.\n## Preferred Response\n`) {
		t.Errorf("cot completion lacks the user description: %s", buf.String()[:200])
	}
	if _, err := ExportTRL(&buf, prefs, ExportOptions{Shots: 2, Passes: 0, Variant: episode.Plain, Layout: episode.Paper}); err == nil {
		t.Error("passes 0: no error")
	}
}
