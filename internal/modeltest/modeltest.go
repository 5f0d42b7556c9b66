// Package modeltest holds helpers that tests of several packages use on a
// loaded model (not imported by package model's own tests, which would make
// a cycle).
package modeltest

import (
	"math/rand/v2"
	"testing"

	"fspo/model"
)

// Perturbed returns a copy of m with every weight multiplied by 1 + scale·z,
// z standard normal from seed: a policy that differs from its reference m.
func Perturbed(m *model.Model, seed uint64, scale float64) *model.Model {
	p := m.Clone()
	rng := rand.New(rand.NewPCG(seed, seed))
	for _, x := range p.W.Tensors(p.Config) {
		for i := range x.Data {
			x.Data[i] *= float32(1 + scale*rng.NormFloat64())
		}
	}
	p.W.Changed()
	return p
}

// DecodeLogits feeds tokens one at a time through the KV cache and returns
// the logits after each, concatenated.
func DecodeLogits(tb testing.TB, m *model.Model, tokens []int) []float32 {
	tb.Helper()
	cache := m.NewCacheFor(len(tokens))
	var out []float32
	for _, tok := range tokens {
		l := make([]float32, m.Config.Vocab)
		if err := m.Forward([]model.Step{{Cache: cache, Tokens: []int{tok}, Logits: l}}); err != nil {
			tb.Fatal(err)
		}
		out = append(out, l...)
	}
	return out
}
