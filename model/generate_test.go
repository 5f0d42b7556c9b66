package model

import (
	"context"
	"testing"
)

// TestBatchedGenerationEqualsSingle: sequences generated together (greedy and
// seeded sampling) are the sequences generated one by one, also where a
// prompt repeats the one before it (computed once, then copied).
func TestBatchedGenerationEqualsSingle(t *testing.T) {
	m := loadStories(t)
	prompts := [][]int{{BOS}, {BOS, 403, 407, 261}, {BOS, 403, 407, 261}, {BOS, 403, 407, 261}, {BOS, 291, 280}, {BOS, 403, 407, 261}, {BOS, 403, 407, 261}}
	for _, opt := range []GenOptions{
		{MaxTokens: 40},
		{MaxTokens: 40, Temperature: 0.9, TopP: 0.9, Seed: 42},
		{MaxTokens: 40, Temperature: 1.0, Seed: 7},
	} {
		batch, err := m.GenerateBatch(context.Background(), prompts, opt, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range prompts {
			o := opt
			o.Seed = opt.Seed + uint64(i)
			single, err := m.Generate(context.Background(), p, o, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !equalInts(single.Tokens, batch[i].Tokens) {
				t.Errorf("opt %+v prompt %d: batched %v, single %v", opt, i, batch[i].Tokens, single.Tokens)
			}
		}
	}
}

func TestSamplingIsSeeded(t *testing.T) {
	m := loadStories(t)
	gen := func(seed uint64) []int {
		out, err := m.Generate(context.Background(), []int{BOS}, GenOptions{MaxTokens: 30, Temperature: 1, TopP: 0.95, Seed: seed}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out.Tokens
	}
	a, b, c := gen(1), gen(1), gen(2)
	if !equalInts(a, b) {
		t.Fatal("same seed gave different samples")
	}
	if equalInts(a, c) {
		t.Fatal("different seeds gave the same 30 tokens")
	}
}

func TestTopPKeepsTheNucleus(t *testing.T) {
	// probabilities ∝ exp(logits): 0.5, 0.3, 0.15, 0.05; top-p 0.7 keeps the first two only
	logits := []float32{0, -0.5108256, -1.2039728, -2.3025851}
	s := NewSampler(1, 0.7, 3)
	counts := make([]int, 4)
	for i := 0; i < 4000; i++ {
		counts[s.Sample(logits)]++
	}
	if counts[2] != 0 || counts[3] != 0 {
		t.Fatalf("top-p 0.7 sampled outside the nucleus: %v", counts)
	}
	if r := float64(counts[0]) / 4000; r < 0.57 || r > 0.68 { // 0.5/0.8 = 0.625
		t.Fatalf("token 0 drawn %.3f of the time, want about 0.625", r)
	}
}

func TestGenerateErrors(t *testing.T) {
	m := loadStories(t)
	long := make([]int, m.Positions())
	for i := range long {
		long[i] = 300
	}
	if _, err := m.Generate(context.Background(), long, GenOptions{MaxTokens: 3}, nil); err == nil {
		t.Fatal("a prompt as long as the context was accepted")
	}
	if _, err := m.Generate(context.Background(), nil, GenOptions{MaxTokens: 3}, nil); err == nil {
		t.Fatal("an empty prompt was accepted")
	}
	if _, err := m.Generate(context.Background(), []int{BOS, 9999}, GenOptions{MaxTokens: 3}, nil); err == nil {
		t.Fatal("a token outside the vocabulary was accepted")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
