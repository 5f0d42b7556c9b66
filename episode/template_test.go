package episode

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/dataset"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func sampleEpisode() Episode {
	shot := func(i string) dataset.Record {
		return dataset.Record{User: "u7", Prompt: "Question " + i + "?", Chosen: "Liked answer " + i + ".",
			Rejected: "Disliked answer " + i + "."}
	}
	return Episode{
		User:  "u7",
		Shots: []dataset.Record{shot("1"), shot("2")},
		Query: dataset.Record{User: "u7", Prompt: "Tell me a story about a cat.", Chosen: "Tom the cat sang.",
			Rejected: "A dog ran away.", Description: "Loves cats and songs.",
			RejectedDescription: "Loves dogs."},
	}
}

func renderGolden(t Text) string {
	return "=== prompt ===\n" + t.Prompt + "=== chosen ===\n" + t.Chosen + "\n=== rejected ===\n" + t.Rejected + "\n"
}

func TestRenderGolden(t *testing.T) {
	for _, l := range []Layout{Paper, Compact} {
		for _, v := range Variants {
			t.Run(l.Name+"/"+string(v), func(t *testing.T) {
				text, err := Render(v, l, sampleEpisode())
				if err != nil {
					t.Fatal(err)
				}
				got := renderGolden(text)
				path := filepath.Join("testdata", l.Name+"-"+string(v)+".golden")
				if *update {
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs:\n--- got\n%s--- want\n%s", path, got, want)
				}
			})
		}
	}
}

// TestPaperLayoutExact pins the paper's layout to METHOD.md §2 character for
// character, independently of the golden files.
func TestPaperLayoutExact(t *testing.T) {
	ep := sampleEpisode()
	ep.Shots = ep.Shots[:1]
	text, err := Render(Plain, Paper, ep)
	if err != nil {
		t.Fatal(err)
	}
	wantPrompt := "# Example 1\n## Question\nQuestion 1?\n## Preferred Response\nLiked answer 1.\n" +
		"## Dispreferred Response\nDisliked answer 1.\n# Task\n" +
		"Given the examples above, generate a preferred response to the following question.\n" +
		"## Question\nTell me a story about a cat.\n"
	if text.Prompt != wantPrompt {
		t.Errorf("prompt\n%q\nwant\n%q", text.Prompt, wantPrompt)
	}
	if want := "## Preferred Response\nTom the cat sang."; text.Chosen != want {
		t.Errorf("chosen %q, want %q", text.Chosen, want)
	}
	if want := "## Preferred Response\nA dog ran away."; text.Rejected != want {
		t.Errorf("rejected %q, want %q", text.Rejected, want)
	}
	cot, err := Render(COT, Paper, ep)
	if err != nil {
		t.Fatal(err)
	}
	if want := "## User Description\nLoves cats and songs.\n## Preferred Response\nTom the cat sang."; cot.Chosen != want {
		t.Errorf("cot chosen %q, want %q", cot.Chosen, want)
	}
	if want := "## User Description\nLoves dogs.\n## Preferred Response\nA dog ran away."; cot.Rejected != want {
		t.Errorf("cot rejected %q, want %q", cot.Rejected, want)
	}
}

func TestCompactIsShorter(t *testing.T) {
	size := func(s string) int { return len(s) }
	for _, v := range Variants {
		p, _ := Render(v, Paper, sampleEpisode())
		c, _ := Render(v, Compact, sampleEpisode())
		// Compact headers are a fraction of the paper's.
		if pc, cc := size(p.Prompt), size(c.Prompt); v != ZeroShot && cc*2 > pc {
			t.Errorf("%s: compact prompt %d bytes, paper %d: not much shorter", v, cc, pc)
		}
	}
}

func TestPromptForMatchesRender(t *testing.T) {
	ep := sampleEpisode()
	for _, l := range []Layout{Paper, Compact} {
		for _, v := range Variants {
			text, err := Render(v, l, ep)
			if err != nil {
				t.Fatal(err)
			}
			if got := PromptFor(v, l, ep.Shots, ep.Query.Prompt, ep.Query.Description); got != text.Prompt {
				t.Errorf("%s/%s: PromptFor\n%q\nRender\n%q", l.Name, v, got, text.Prompt)
			}
		}
	}
}

func TestRenderErrors(t *testing.T) {
	noDesc := sampleEpisode()
	noDesc.Query.Description = ""
	noRej := sampleEpisode()
	noRej.Query.RejectedDescription = ""
	stranger := sampleEpisode()
	stranger.Shots[1].User = "u8"
	tests := []struct {
		name string
		v    Variant
		ep   Episode
		opts []Option
		want string
	}{
		{"oracle without description", Oracle, noDesc, nil, `oracle template for user "u7": query record`},
		{"cot without description", COT, noDesc, nil, `cot template for user "u7": query record`},
		{"cot without rejected description", COT, noRej, nil, "has no rejected_description and no other user's description was given"},
		{"shot of another user", Plain, stranger, nil, `episode of user "u7": shot 2 belongs to user "u8"`},
		{"unknown variant", Variant("fancy"), sampleEpisode(), nil, `unknown template variant "fancy"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(tc.v, Paper, tc.ep, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Render: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	text, err := Render(COT, Compact, noRej, OtherDescription("Loves trains."))
	if err != nil {
		t.Fatal(err)
	}
	if want := "U: Loves trains.\nA+: A dog ran away."; text.Rejected != want {
		t.Errorf("rejected with OtherDescription %q, want %q", text.Rejected, want)
	}
	// The record's own RejectedDescription wins over the option.
	text, _ = Render(COT, Compact, sampleEpisode(), OtherDescription("Loves trains."))
	if want := "U: Loves dogs.\nA+: A dog ran away."; text.Rejected != want {
		t.Errorf("rejected %q, want %q", text.Rejected, want)
	}
}

func TestParseVariantAndLayout(t *testing.T) {
	for _, v := range Variants {
		if got, err := ParseVariant(string(v)); err != nil || got != v {
			t.Errorf("ParseVariant(%q) = %q, %v", v, got, err)
		}
	}
	if _, err := ParseVariant("COT"); err == nil {
		t.Error("ParseVariant is case-insensitive; want exact names")
	}
	if l, err := ParseLayout("compact"); err != nil || l.Name != "compact" {
		t.Errorf("ParseLayout(compact) = %v, %v", l.Name, err)
	}
	if _, err := ParseLayout("tiny"); err == nil {
		t.Error("ParseLayout(tiny): no error")
	}
}
