package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomAdapter is an adapter on every target with random A and B (B not
// zero, so that the adapter changes the model).
func randomAdapter(t *testing.T, c Config, seed uint64) *LoRA {
	l, err := NewLoRA(c, 3, 6, LoRATargets, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	for _, tt := range l.Tensors {
		for i := range tt.B {
			tt.B[i] = float32(rng.NormFloat64() * 0.2)
		}
	}
	return l
}

// TestAdapterFiniteDifferences: for every architecture variant and every
// target, the adapter gradients of BackwardAdapter equal finite differences
// of the objective in a random direction of A and of B, and the base
// weights are left alone.
func TestAdapterFiniteDifferences(t *testing.T) {
	for name, m := range archVariants(t) {
		l := randomAdapter(t, m.Config, 5)
		if err := m.Attach(l); err != nil {
			t.Fatal(err)
		}
		V := m.Config.Vocab
		rng := rand.New(rand.NewPCG(3, 4))
		exs := []Example{
			// 24 prompt tokens: 2 × 28 rows, more than the 32 below which
			// products take the decoding paths (tensor.GemmPlus's term in one pass)
			{Prompt: randTokens(rng, 24, V), Completions: [][]int{randTokens(rng, 4, V), randTokens(rng, 3, V)}},
			{Prompt: randTokens(rng, 1, V), Completions: [][]int{randTokens(rng, 9, V)}},
		}
		weights := [][]float32{{1, -0.7}, {0.5}}
		_, p := objective(t, m, exs, weights)
		for i := range exs {
			for j := range exs[i].Completions {
				g := make([]float32, len(exs[i].Completions[j]))
				for k := range g {
					g[k] = weights[i][j] * float32(k+1) / 3
				}
				p.SetTokenGrads(i, j, g)
			}
		}
		before := m.W.Clone(m.Config)
		grads := l.Grads()
		p.BackwardAdapter(grads)
		for ti, tt := range l.Tensors {
			for part, w := range map[string][]float32{"A": tt.A, "B": tt.B} {
				gw := grads.Tensors[ti].A
				if part == "B" {
					gw = grads.Tensors[ti].B
				}
				u := make([]float32, len(w))
				var analytic float64
				for i := range u {
					u[i] = float32(rng.NormFloat64())
					analytic += float64(u[i]) * float64(gw[i])
				}
				orig := append([]float32(nil), w...)
				const eps = 1e-3
				for i := range w {
					w[i] = orig[i] + eps*u[i]
				}
				fp, _ := objective(t, m, exs, weights)
				for i := range w {
					w[i] = orig[i] - eps*u[i]
				}
				fm, _ := objective(t, m, exs, weights)
				copy(w, orig)
				numeric := (fp - fm) / (2 * eps)
				if d := math.Abs(numeric - analytic); d > 1e-2*math.Max(1, math.Abs(analytic)) || analytic == 0 {
					t.Errorf("%s layer %d %s.%s: directional derivative %.6g, finite difference %.6g", name, tt.Layer, tt.Target, part, analytic, numeric)
				}
			}
		}
		for ti, tt := range m.W.Tensors(m.Config) {
			if b := before.Tensors(m.Config)[ti]; !equalFloats(tt.Data, b.Data) {
				t.Errorf("%s: base tensor %s changed", name, tt.Name)
			}
		}
	}
}

func equalFloats(a, b []float32) bool {
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

// TestAdapterEqualsMerged: scoring with an attached adapter gives the
// log-probs of the merged model W + (alpha/r)·B·A; a fresh NewLoRA (B = 0)
// gives the base's exactly.
func TestAdapterEqualsMerged(t *testing.T) {
	for name, m := range archVariants(t) {
		rng := rand.New(rand.NewPCG(8, 9))
		// 2 × 20 rows: the adapter's term added in the base product's pass (tensor.GemmPlus)
		V := m.Config.Vocab
		exs := []Example{{Prompt: randTokens(rng, 14, V), Completions: [][]int{randTokens(rng, 6, V)}}, {Prompt: randTokens(rng, 9, V), Completions: [][]int{randTokens(rng, 11, V)}}}
		base, err := m.Score(exs, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]float32(nil), base.Tokens(0, 0)...)
		fresh, err := NewLoRA(m.Config, 4, 8, []string{"q", "v", "down"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Attach(fresh); err != nil {
			t.Fatal(err)
		}
		same, err := m.Score(exs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !equalFloats(same.Tokens(0, 0), want) {
			t.Errorf("%s: a fresh adapter changes the log-probs", name)
		}
		l := randomAdapter(t, m.Config, 6)
		if err := m.Attach(l); err != nil {
			t.Fatal(err)
		}
		adapted, err := m.Score(exs, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := append([]float32(nil), adapted.Tokens(0, 0)...)
		merged := &Model{Config: m.Config, W: m.W.Clone(m.Config)}
		if err := l.Merge(m.Config, merged.W); err != nil {
			t.Fatal(err)
		}
		mm, err := New(m.Config, merged.W)
		if err != nil {
			t.Fatal(err)
		}
		mp, err := mm.Score(exs, nil)
		if err != nil {
			t.Fatal(err)
		}
		worst, moved := 0.0, 0.0
		for k, v := range mp.Tokens(0, 0) {
			worst = math.Max(worst, math.Abs(float64(v-got[k])))
			moved = math.Max(moved, math.Abs(float64(v-want[k])))
		}
		if worst > 2e-5 || moved < 1e-3 {
			t.Errorf("%s: adapted vs merged max |Δ log-prob| %.2e (want ≤ 2e-5); the adapter moved them by %.2e", name, worst, moved)
		}
		m.Attach(nil)
	}
}

// TestRecomputeSameGradients: with activation checkpointing (Pass.Recompute)
// the log-probs and every gradient — of all weights, and of an adapter — are
// bit-identical to those of the pass that keeps every activation.
func TestRecomputeSameGradients(t *testing.T) {
	for name, m := range archVariants(t) {
		rng := rand.New(rand.NewPCG(12, 13))
		V := m.Config.Vocab
		exs := []Example{{Prompt: randTokens(rng, 5, V), Completions: [][]int{randTokens(rng, 6, V), randTokens(rng, 4, V)}}}
		run := func(recompute bool, adapter *LoRA) ([]float32, []float32) {
			if err := m.Attach(adapter); err != nil {
				t.Fatal(err)
			}
			p, err := m.Score(exs, &Pass{Recompute: recompute})
			if err != nil {
				t.Fatal(err)
			}
			lp := append(append([]float32(nil), p.Tokens(0, 0)...), p.Tokens(0, 1)...)
			p.SetGrad(0, 0, 1)
			p.SetGrad(0, 1, -0.6)
			var flat []float32
			if adapter == nil {
				g := NewParams(m.Config)
				p.Backward(g)
				for _, tt := range g.Tensors(m.Config) {
					flat = append(flat, tt.Data...)
				}
			} else {
				g := adapter.Grads()
				p.BackwardAdapter(g)
				for _, tt := range g.Tensors {
					flat = append(append(flat, tt.A...), tt.B...)
				}
			}
			return lp, flat
		}
		for _, adapter := range []*LoRA{nil, randomAdapter(t, m.Config, 4)} {
			lpA, gA := run(false, adapter)
			lpB, gB := run(true, adapter)
			if !equalFloats(lpA, lpB) || !equalFloats(gA, gB) {
				t.Errorf("%s (adapter %v): recomputed pass differs", name, adapter != nil)
			}
		}
		m.Attach(nil)
	}
}
