package eval

import (
	"math"
	"strings"
	"testing"

	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/internal/modeltest"
	"fspo/internal/testenv"
	"fspo/model"
	"fspo/tokenizer"
)

// storiesCodec is stories260K with its tokenizer and the codec of a variant.
func storiesCodec(t *testing.T, v episode.Variant) (*model.Model, fewshot.Codec) {
	paths := testenv.Model(t)
	m, err := model.Load(paths.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(paths.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	return m, fewshot.Codec{Tok: tokenizer.Llama2C(tok), Variant: v, Layout: episode.Compact}
}

// diagUsers are users who like different animals; with same, every record
// of every user is the same.
func diagUsers(same bool) map[string][]dataset.Record {
	animals := []string{"cat", "dog", "bird", "frog"}
	out := map[string][]dataset.Record{}
	for u, a := range animals {
		if same {
			a = "cat"
		}
		id := string(rune('a' + u))
		for i := range 4 {
			if same {
				i = 0
			}
			out[id] = append(out[id], dataset.Record{User: id, Prompt: "Once upon a time, " + strings.Repeat("there was ", i+1),
				Chosen: "a " + a + ".", Rejected: "a tree.", Description: "likes " + a, RejectedDescription: "likes trees"})
		}
	}
	return out
}

// TestProbe: with every record alike, another user's shots are the user's
// own, so what the shots are worth is exactly 0; with
// different users the report is a real measurement (finite, some episodes).
func TestProbe(t *testing.T) {
	m, c := storiesCodec(t, episode.Plain)
	same, err := Probe(m, c, diagUsers(true), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if same.Diff != 0 || same.MeanOwn != same.MeanOther || same.Episodes != 4 {
		t.Errorf("identical records: %v, want own − other exactly 0 over 4 episodes (one per user)", same)
	}
	diff, err := Probe(m, c, diagUsers(false), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if diff.Diff == 0 || math.IsNaN(diff.Diff) || diff.SE <= 0 {
		t.Errorf("different users: %v", diff)
	}
	if _, err := Probe(m, c, map[string][]dataset.Record{"a": diagUsers(false)["a"]}, 2, 1); err == nil || !strings.Contains(err.Error(), "at least 2") {
		t.Errorf("one user: %v", err)
	}
}

// TestMargins: a model against itself has every margin exactly 0; against
// another model, a COT run's margin is split into a description and a
// response part that add up to it, computed from the pairs' log-probs.
func TestMargins(t *testing.T) {
	m, c := storiesCodec(t, episode.COT)
	zero, err := Margins(m, m, c, diagUsers(false), 2, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	if zero.Pairs != 4 || zero.Mean != 0 || zero.Description != 0 || zero.Positive != 0 {
		t.Errorf("model against itself: %v", zero)
	}
	other := modeltest.Perturbed(m, 1, 0.05)
	r, err := Margins(other, m, c, diagUsers(false), 2, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Mean == 0 || r.Description == 0 || math.Abs(r.Description+r.Response-r.Mean) > 1e-9 {
		t.Errorf("perturbed model: %v", r)
	}
}
