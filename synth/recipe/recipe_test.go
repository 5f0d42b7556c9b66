package recipe

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/dataset"
	"fspo/synth/recipe/recipetest"
)

func TestBuiltinRecipes(t *testing.T) {
	names := Builtin()
	if got, want := strings.Join(names, ","), "elix-easy,elix-hard,reviews,roleplay"; got != want {
		t.Fatalf("Builtin() = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		name                   string
		users, held, perCombo  int
		axes                   int
		perTrait, viewSteering bool
	}{
		{"reviews", 8, 4, 0, 2, false, true},
		{"elix", 5, 0, 0, 1, false, true},
		{"elix-hard", 0, 0, 10, 2, false, true},
		{"roleplay", 0, 0, 30, 3, true, true},
	} {
		r, err := Load(tc.name)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		held := 0
		for _, u := range r.Users.Fixed {
			if u.HeldOut {
				held++
			}
		}
		if len(r.Users.Fixed) != tc.users || held != tc.held || r.Users.PerCombination != tc.perCombo || len(r.Users.Axes) != tc.axes {
			t.Errorf("%s: %d fixed users (%d held out), %d per combination, %d axes; want %d (%d), %d, %d",
				tc.name, len(r.Users.Fixed), held, r.Users.PerCombination, len(r.Users.Axes), tc.users, tc.held, tc.perCombo, tc.axes)
		}
		if got := r.Questions.PerTrait.Prompt != ""; got != tc.perTrait {
			t.Errorf("%s: trait-specific questions %v, want %v", tc.name, got, tc.perTrait)
		}
		if len(r.Hash()) != 64 {
			t.Errorf("%s: hash %q", tc.name, r.Hash())
		}
	}
	// The paper's sizes: 1,500 roleplay personas, 550 ELIX-hard users.
	for name, want := range map[string]int{"roleplay": 1500, "elix-hard": 550} {
		r, _ := Load(name)
		if got := len(combinations(r.Users.Axes)) * r.Users.PerCombination; got != want {
			t.Errorf("%s: %d users, want %d", name, got, want)
		}
	}
}

const minimal = `name: tiny
users:
  fixed:
    - {id: a, description: likes short answers}
    - {id: b, description: likes long answers}
questions:
  per_user: 2
  template: "Tell me about {{.Topic}}."
  topics: [cats, dogs]
responses:
  count: 2
  steering: [persona]
  persona: {prompt: "{{.Question}} for {{.Persona}}"}
label:
  prompt: "{{.Description}} {{.Question}} {{.A}} {{.B}}"
  schema: {type: object, properties: {preferred: {type: string}}}
`

func TestParseErrors(t *testing.T) {
	if _, err := Parse("tiny.yaml", []byte(minimal)); err != nil {
		t.Fatalf("minimal recipe: %v", err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"unknown key", "name: tiny", "name: tiny\ncolour: red", "line 2: field colour not found"},
		{"unknown nested key", "  per_user: 2", "  per_user: 2\n  per_usr: 3", "field per_usr not found"},
		{"no name", "name: tiny", "name: ''", "name: required"},
		{"bad template", "Tell me about {{.Topic}}.", "Tell me about {{.Topic}.", "questions.template"},
		{"bad steering", "steering: [persona]", "steering: [mood]", `responses.steering[0]: "mood"`},
		{"one response", "count: 2\n  steering", "count: 1\n  steering", "responses.count"},
		{"label without preferred", "properties: {preferred: {type: string}}", "properties: {choice: {type: string}}", "label.schema.properties.preferred"},
		{"view steering without views", "steering: [persona]", "steering: [persona, view]\n  view: {prompt: x}", "views.count"},
		{"duplicate user", "id: b,", "id: a,", `users.fixed[1].id: "a" is used twice`},
		{"refine without schema", "name: tiny", "name: tiny\nrefine: {rounds: 1, prompt: x}", "refine.schema"},
	} {
		src := strings.Replace(minimal, tc.old, tc.new, 1)
		if src == minimal {
			t.Fatalf("%s: replacement did not apply", tc.name)
		}
		_, err := Parse("tiny.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "tiny.yaml") {
			t.Errorf("%s: err = %v, want one naming tiny.yaml and %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.yaml")
	if err := os.WriteFile(path, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Load(path)
	if err != nil || r.Name != "tiny" {
		t.Fatalf("Load(%s) = %v, %v", path, r, err)
	}
	if _, err := Load("nosuch"); err == nil || !strings.Contains(err.Error(), "reviews") {
		t.Errorf("unknown recipe: err = %v, want the list of built-ins", err)
	}
}

func TestSimilarityAndEntropy(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want float64
	}{
		{"the cat sat", "the cat sat", 1},
		{"the cat sat", "dogs run fast", 0},
		{"a b", "a c", 1.0 / 3}, // {a,b,"a b"} vs {a,c,"a c"}: one shared of three each
	} {
		if got := ngramCosine(tc.a, tc.b); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("ngramCosine(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	for _, tc := range []struct {
		o    outcome
		want float64
		ok   bool
	}{
		{outcome{ab: first, ba: first, pab: 1, pba: 1}, 0, true},
		{outcome{ab: second, ba: second}, 0, true},
		{outcome{ab: first, ba: second, pab: 1}, 0.6931471805599453, true},              // position bias: p = 1/2, ln 2
		{outcome{ab: first, ba: undecided, pab: 1, pba: 0.5}, 0.5623351446188083, true}, // p = 3/4
		{outcome{ab: first, ba: first, pab: 0.9, pba: 0.7}, 0.5004024235381879, true},   // letter probabilities: p = 0.8
		{outcome{ab: failed, ba: first, pba: 1}, 0, false},
	} {
		got, ok := tc.o.entropy()
		if ok != tc.ok || got < tc.want-1e-12 || got > tc.want+1e-12 {
			t.Errorf("entropy(%v) = %v, %v; want %v, %v", tc.o, got, ok, tc.want, tc.ok)
		}
	}
}

// TestCustomRecipeRuns runs a user's YAML recipe for a new domain end to end.
func TestCustomRecipeRuns(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tiny.yaml")
	src := strings.Replace(minimal, "count: 2\n", "count: 3\n", 1)
	src = strings.Replace(src, `prompt: "{{.Description}} {{.Question}} {{.A}} {{.B}}"`,
		`prompt: "## User Description\n{{.Description}}\n\n## Response A\n{{.A}}\n\n## Response B\n{{.B}}\n"`, 1)
	src += "refine:\n  rounds: 2\n  prompt: \"{{.Description}} {{.A}} {{.B}}\"\n  schema: {type: object, properties: {preferred: {type: string}, clause: {type: string}}}\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	client, srv := newClient(t, recipetest.Script, filepath.Join(dir, "cache.sqlite"))
	rep, err := Run(context.Background(), Config{Recipe: r, Client: client, Out: filepath.Join(dir, "out"), Seed: 1, EmbedQuestions: -1})
	if err != nil {
		t.Fatal(err)
	}
	// 2 × 3 candidates; 2 users × 2 questions × 3 pairs judged in both
	// orders, again after each clause, and one refine call per clause.
	want := 2 * 3
	for _, u := range rep.PerUser {
		want += (1+len(u.Clauses))*2*2*3 + len(u.Clauses)
	}
	if got := len(srv.Requests()); got != want {
		t.Errorf("requests = %d, want %d", got, want)
	}
	if rep.Users != 2 || rep.Records == 0 || rep.Similarity.EmbeddingNote != "not computed" {
		t.Errorf("report: %d users, %d records, embedding note %q; %+v %+v", rep.Users, rep.Records, rep.Similarity.EmbeddingNote, rep.PerUser, rep.Calls.Failures)
	}
	recs, err := dataset.ReadAll(filepath.Join(dir, "out", "preferences.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if rec.Source != "tiny" || rec.Meta["chosen_steering"] != "persona" {
			t.Errorf("record %+v", rec)
		}
	}
}
