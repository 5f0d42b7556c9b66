package stories

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSentenceEnds(t *testing.T) {
	tests := []struct {
		text string
		want []int
	}{
		{"A b. C d!", []int{4, 9}},
		{`He said "hi." Then`, []int{13}},
		{`He said "hi. Then`, nil}, // inside an open quote
		{"No end", nil},
		{"Why? Yes.", []int{4, 9}},
	}
	for _, tc := range tests {
		got := sentenceEnds(tc.text)
		if !slices.Equal(got, tc.want) {
			t.Errorf("sentenceEnds(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestFinish(t *testing.T) {
	words := func(s string) int { return WordCount(s) }
	steer := "Tom had a cat."
	tests := []struct {
		name  string
		cont  string
		limit int
		long  bool
		want  string
	}{
		{"long keeps the last sentence in the limit", " It ran. It  sat.\nIt hid. It", 20, true, "Tom had a cat. It ran. It sat. It hid."},
		{"short keeps the first sentence", " It ran. It sat. It hid.", 20, false, "Tom had a cat. It ran."},
		{"the limit cuts", " It ran far away. It sat down there.", 8, true, "Tom had a cat. It ran far away."},
		{"nothing fits: the steering text", " It ran very very far away.", 6, true, "Tom had a cat."},
		{"no sentence end", " It ran and", 20, true, "Tom had a cat."},
		{"unbalanced quote", ` He said "hi. Go`, 20, true, "Tom had a cat."},
		{"closing quote kept", ` He said "Hi!" Then`, 20, true, `Tom had a cat. He said "Hi!"`},
	}
	unsteered := []struct {
		name, text string
		limit      int
		long       bool
		want       string
	}{
		{"unsteered long", " there was a cat. It ran. It", 20, true, "there was a cat. It ran."},
		{"unsteered short", " there was a cat. It ran. It", 20, false, "there was a cat."},
		{"unsteered without an end: whole words in the limit", " there was a big cat and", 4, true, "there was a big"},
	}
	for _, tc := range unsteered {
		if got := finish(tc.text, 0, tc.limit, tc.long, words); got != tc.want {
			t.Errorf("%s: finish = %q, want %q", tc.name, got, tc.want)
		}
	}
	if per, steer := planPersona(1, 0, 3, "One day,", true); steer != "" || len(per.Prefs()) != 1 {
		t.Errorf("unsteered persona %+v, steering %q", per, steer)
	}
	for _, tc := range tests {
		if got := finish(steer+tc.cont, len(steer), tc.limit, tc.long, words); got != tc.want {
			t.Errorf("%s: finish = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestPlanPersona(t *testing.T) {
	seenTemplates := map[string]bool{}
	for j := range 200 {
		per, steer := planPersona(7, 3, j, "It was a rainy day.", false)
		again, steer2 := planPersona(7, 3, j, "It was a rainy day.", false)
		if per != again || steer != steer2 {
			t.Fatalf("candidate %d: not deterministic", j)
		}
		if steer[0] < 'A' || steer[0] > 'Z' {
			t.Errorf("after a full stop the steering text must start a sentence: %q", steer)
		}
		if !strings.HasSuffix(steer, ".") {
			t.Errorf("steering text %q does not end a sentence", steer)
		}
		named := 0
		for _, f := range []struct {
			c Category
			v string
		}{{Name, per.Name}, {Animal, per.Animal}, {Place, per.Place}, {Object, per.Object}, {Mood, per.Mood}} {
			if f.v == "" {
				continue
			}
			named++
			v, ok := lookup(f.c, f.v)
			if !ok || Mentions(v, steer) == 0 {
				t.Errorf("persona %s %q not in its steering text %q", f.c, f.v, steer)
			}
		}
		if named < 2 {
			t.Errorf("steering text %q names %d values, want ≥ 2", steer, named)
		}
		if per.Length != "short" && per.Length != "long" {
			t.Errorf("length %q", per.Length)
		}
		seenTemplates[strings.SplitN(steer, " ", 2)[0]] = true
	}
	for j := range 50 {
		per, steer := planPersona(7, 3, j, "Once upon a time,", false)
		if first := strings.Fields(steer)[0]; first[0] >= 'A' && first[0] <= 'Z' && first != per.Name {
			t.Errorf("after a comma the steering text continues the sentence: %q", steer)
		}
	}
	if len(seenTemplates) < 5 {
		t.Errorf("only %d different steering openings in 200 candidates", len(seenTemplates))
	}
}

func TestReadCandidatesKeepsCompleteChunks(t *testing.T) {
	var slots []slot
	for i := range 6 {
		slots = append(slots, slot{c: Candidate{ID: "p00-c0" + string(rune('0'+i)), Prompt: "One day,", Steer: "x."}})
	}
	path := filepath.Join(t.TempDir(), CandidatesName)
	line := func(i int) string {
		return `{"id":"p00-c0` + string(rune('0'+i)) + `","prompt_index":0,"prompt":"One day,","held_out":false,"steer":"x.","response":"x.","tokens":2,"persona":{"length":"short"},"persona_description":"d"}` + "\n"
	}
	tests := []struct {
		name    string
		content string
		batch   int
		want    int
		wantErr string
	}{
		{"none", "", 2, 0, ""},
		{"two whole chunks", line(0) + line(1) + line(2) + line(3), 2, 4, ""},
		{"partial chunk dropped", line(0) + line(1) + line(2), 2, 2, ""},
		{"partial line dropped", line(0) + line(1) + line(2) + line(3)[:20], 2, 2, ""},
		{"all, last chunk short", line(0) + line(1) + line(2) + line(3) + line(4) + line(5), 4, 6, ""},
		{"foreign candidate", strings.Replace(line(0), `"steer":"x."`, `"steer":"y."`, 1), 2, 0, "is not this run's candidate"},
		{"bad json", "{\n", 2, 0, CandidatesName + ":1"},
	}
	for _, tc := range tests {
		os.Remove(path)
		if tc.content != "" {
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := readCandidates(path, slots, tc.batch)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != tc.want {
			t.Errorf("%s: %d candidates, %v; want %d", tc.name, len(got), err, tc.want)
			continue
		}
		if tc.content != "" {
			data, _ := os.ReadFile(path)
			if want := strings.Join(strings.SplitAfter(tc.content, "\n")[:tc.want], ""); string(data) != want {
				t.Errorf("%s: file cut to %q, want %q", tc.name, data, want)
			}
		}
	}
}
