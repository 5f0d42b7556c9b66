package model

import (
	"math/rand/v2"
	"testing"
)

// TestPromptAttentionMatchesRows: a prompt's rows attending as matrix
// products (attendPrompt: blocks of 64 rows, here two, the second partial,
// from an empty cache and after 10 cached positions) give the logits that
// decoding the same tokens one at a time gives (the row kernels), for head
// sizes 16, 32 and 12.
func TestPromptAttentionMatchesRows(t *testing.T) {
	base := Config{Dim: 64, Hidden: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 50, SeqLen: 160, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 10000}
	qwen3 := base
	qwen3.Arch, qwen3.HeadDim, qwen3.QKNorm = "qwen3", 32, true
	odd := base
	odd.Heads, odd.KVHeads, odd.HeadDim = 6, 3, 12
	for name, c := range map[string]Config{"llama": base, "qwen3": qwen3, "hs12": odd} {
		m := randomModel(t, c, 7)
		toks := randTokens(rand.New(rand.NewPCG(3, 4)), 130, c.Vocab)
		V := c.Vocab
		want := make([]float32, len(toks)*V)
		cache := m.NewCache()
		for i, tok := range toks {
			if err := m.Forward([]Step{{Cache: cache, Tokens: []int{tok}, Logits: want[i*V : (i+1)*V]}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, cached := range []int{0, 10} {
			if !m.promptStep(Step{Tokens: toks[cached:]}) {
				t.Fatalf("%s: %d rows do not take the prompt path", name, len(toks)-cached)
			}
			cache := m.NewCache()
			got := make([]float32, len(toks)*V)
			if cached > 0 {
				if err := m.Forward([]Step{{Cache: cache, Tokens: toks[:cached], AllLogits: got[:cached*V]}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Forward([]Step{{Cache: cache, Tokens: toks[cached:], AllLogits: got[cached*V:]}}); err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(got, want); d > 1e-4 {
				t.Errorf("%s, %d cached: prompt logits differ from decoding's by %.2e", name, cached, d)
			}
		}
	}
}

// TestPromptAttentionInABatch: prompts that join a batch beside a decoded
// row (serve's batcher: a new user's prompt while others decode) attend as
// matrix products at their own rows of the call, and every step's logits
// are those of the step run alone — the decoded row first, so that a prompt
// read at the wrong rows would show.
func TestPromptAttentionInABatch(t *testing.T) {
	c := Config{Dim: 64, Hidden: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 50, SeqLen: 160, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 10000}
	m := randomModel(t, c, 9)
	rng := rand.New(rand.NewPCG(5, 6))
	V := c.Vocab
	type part struct{ before, toks []int }
	parts := []part{
		{randTokens(rng, 20, V), randTokens(rng, 1, V)}, // a decoded row
		{nil, randTokens(rng, 40, V)},                   // a prompt from an empty cache
		{randTokens(rng, 5, V), randTokens(rng, 35, V)}, // a prompt after cached positions
		{randTokens(rng, 3, V), randTokens(rng, 2, V)},  // a short step: rows one by one
	}
	prepare := func(p part) *Cache {
		cache := m.NewCache()
		if len(p.before) > 0 {
			if err := m.Forward([]Step{{Cache: cache, Tokens: p.before}}); err != nil {
				t.Fatal(err)
			}
		}
		return cache
	}
	var steps []Step
	want := make([][]float32, len(parts))
	for i, p := range parts {
		if m.promptStep(Step{Tokens: p.toks}) != (len(p.toks) >= promptAttnRows) {
			t.Fatalf("part %d: %d rows take the wrong path", i, len(p.toks))
		}
		want[i] = make([]float32, len(p.toks)*V)
		if err := m.Forward([]Step{{Cache: prepare(p), Tokens: p.toks, AllLogits: want[i]}}); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, Step{Cache: prepare(p), Tokens: p.toks, AllLogits: make([]float32, len(p.toks)*V)})
	}
	if err := m.Forward(steps); err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		if d := maxAbsDiff(s.AllLogits, want[i]); d > 1e-4 {
			t.Errorf("part %d (%d rows): logits in the batch differ from alone by %.2e", i, len(s.Tokens), d)
		}
	}
}
