package model

import (
	"context"
	"math"
	"testing"
)

// ContinuationLogProbs (the KV-cache path) agrees with Score (the training
// forward, itself checked against llama2.c and PyTorch in ref_test.go and
// arch_test.go) on stories260K and on every architecture variant, scoring
// from the first token and from a later one.
func TestContinuationLogProbsMatchScore(t *testing.T) {
	models := archVariants(t)
	models["stories260K"] = loadStories(t)
	for name, m := range models {
		v := m.Config.Vocab
		prefix := []int{1, 5 % v, 9 % v, 3 % v}
		conts := []Continuation{
			{Tokens: []int{7 % v, 2 % v, 11 % v}},
			{Tokens: []int{7 % v, 4 % v, 6 % v, 8 % v, 10 % v}, From: 2},
			{Tokens: []int{12 % v}},
		}
		got, err := m.ContinuationLogProbs(context.Background(), prefix, conts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, c := range conts {
			// Score the whole continuation after prefix+its first From tokens.
			p := append(append([]int{}, prefix...), c.Tokens[:c.From]...)
			pass, err := m.Score([]Example{{Prompt: p, Completions: [][]int{c.Tokens[c.From:]}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := pass.Sum(0, 0)
			if math.Abs(got[i]-want) > 1e-4*max(1, math.Abs(want)) {
				t.Errorf("%s: continuation %d: %v, Score %v", name, i, got[i], want)
			}
		}
	}
}

func TestContinuationLogProbsRejects(t *testing.T) {
	m := archVariants(t)["llama3"]
	ctx := context.Background()
	for name, c := range map[string]struct {
		prefix []int
		conts  []Continuation
	}{
		"no prefix":    {nil, []Continuation{{Tokens: []int{1}}}},
		"from outside": {[]int{1}, []Continuation{{Tokens: []int{1, 2}, From: 2}}},
		"too long":     {[]int{1}, []Continuation{{Tokens: make([]int, m.Positions()+1)}}},
	} {
		if _, err := m.ContinuationLogProbs(ctx, c.prefix, c.conts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
