package model

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"fspo/internal/testenv"
)

func TestScoreMatchesReferenceLogprobs(t *testing.T) {
	m := loadStories(t)
	ref := loadRefLogprobs(t)
	var exs []Example
	for _, tc := range ref.Cases {
		exs = append(exs, Example{Prompt: tc.Tokens[:1], Completions: [][]int{tc.Tokens[1:]}})
	}
	p, err := m.Score(exs, nil) // the three texts batched, padded to the longest
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range ref.Cases {
		got := p.Tokens(i, 0)
		if len(got) != len(tc.Logprobs) {
			t.Fatalf("%q: %d log-probs, want %d", tc.Text, len(got), len(tc.Logprobs))
		}
		maxDiff := 0.0
		for k := range got {
			maxDiff = math.Max(maxDiff, math.Abs(float64(got[k])-tc.Logprobs[k]))
		}
		if maxDiff > 1e-4 {
			t.Errorf("%q: max |logprob - reference| = %.2e, want <= 1e-4", tc.Text, maxDiff)
		}
		if d := math.Abs(p.Sum(i, 0) - tc.Sum); d > 1e-3 {
			t.Errorf("%q: sum %.6f, reference %.6f", tc.Text, p.Sum(i, 0), tc.Sum)
		}
	}
}

// reference-grads.json: gradients of the first reference text's summed
// next-token log-probability from an independent PyTorch implementation
// (see models/stories260k/testdata/README.md).
func TestGradientsMatchReference(t *testing.T) {
	m := loadStories(t)
	raw := testenv.Reference(t, "reference-grads.json")
	var ref struct {
		Tensors map[string]struct {
			Shape  []int     `json:"shape"`
			L2     float64   `json:"l2"`
			First8 []float64 `json:"first8"`
			Sum    float64   `json:"sum"`
		} `json:"tensors"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	toks := loadRefLogprobs(t).Cases[0].Tokens
	p, err := m.Score([]Example{{Prompt: toks[:1], Completions: [][]int{toks[1:]}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.SetGrad(0, 0, 1)
	g := NewParams(m.Config)
	p.Backward(g)
	checked := 0
	for _, tt := range g.Tensors(m.Config) {
		r, ok := ref.Tensors[tt.Name]
		if !ok {
			t.Errorf("%s: no reference", tt.Name)
			continue
		}
		checked++
		var l2 float64
		for _, v := range tt.Data {
			l2 += float64(v) * float64(v)
		}
		l2 = math.Sqrt(l2)
		if rel := math.Abs(l2-r.L2) / r.L2; rel > 1e-3 {
			t.Errorf("%s: L2 %.6g, reference %.6g (relative error %.2e)", tt.Name, l2, r.L2, rel)
		}
		for i, want := range r.First8 {
			got := float64(tt.Data[i])
			if math.Abs(got-want) > 1e-3*math.Max(math.Abs(want), r.L2/math.Sqrt(float64(len(tt.Data)))) {
				t.Errorf("%s[%d] = %.7g, reference %.7g", tt.Name, i, got, want)
			}
		}
	}
	if checked != len(ref.Tensors) {
		t.Errorf("checked %d tensors, the reference has %d", checked, len(ref.Tensors))
	}
}

func tinyModel(t testing.TB, shared bool, seed uint64) *Model {
	c := Config{Dim: 16, Hidden: 24, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 37, SeqLen: 32, SharedClassifier: shared, NormEps: 1e-5, RopeTheta: 10000}
	p := NewParams(c)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, tt := range p.Tensors(c) {
		for i := range tt.Data {
			tt.Data[i] = float32(rng.NormFloat64() * 0.3)
		}
		if tt.Name == "rms_att" || tt.Name == "rms_ffn" || tt.Name == "rms_final" {
			for i := range tt.Data {
				tt.Data[i] += 1
			}
		}
	}
	m, err := New(c, p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func randTokens(rng *rand.Rand, n, vocab int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = rng.IntN(vocab)
	}
	return out
}

// objective is a weighted sum of completion log-probs, with weights that
// differ per completion so every path of the backward pass is exercised.
func objective(t testing.TB, m *Model, exs []Example, weights [][]float32) (float64, *Pass) {
	p, err := m.Score(exs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var f float64
	for i := range exs {
		for j := range exs[i].Completions {
			for k, v := range p.Tokens(i, j) {
				f += float64(weights[i][j]) * float64(v) * float64(k+1) / 3
			}
		}
	}
	return f, p
}

// TestFiniteDifferences checks the gradient of every weight tensor, for a tied
// and an untied classifier, by a directional finite difference.
func TestFiniteDifferences(t *testing.T) {
	for _, shared := range []bool{true, false} {
		checkFiniteDifferences(t, tinyModel(t, shared, 7), fmt.Sprintf("shared=%v", shared))
	}
}

// checkFiniteDifferences: for a random direction u inside each weight tensor,
// (f(θ+εu) − f(θ−εu)) / 2ε must equal ⟨∇f, u⟩ within 1e-2·max(1, |⟨∇f, u⟩|)
// (float32 forward passes, ε = 1e-3).
func checkFiniteDifferences(t *testing.T, m *Model, label string) {
	V := m.Config.Vocab
	rng := rand.New(rand.NewPCG(3, 4))
	exs := []Example{
		{Prompt: randTokens(rng, 6, V), Completions: [][]int{randTokens(rng, 4, V), randTokens(rng, 3, V)}},
		{Prompt: randTokens(rng, 1, V), Completions: [][]int{randTokens(rng, 9, V)}},
	}
	weights := [][]float32{{1, -0.7}, {0.5}}
	_, p := objective(t, m, exs, weights)
	for i := range exs {
		for j := range exs[i].Completions {
			n := len(exs[i].Completions[j])
			g := make([]float32, n)
			for k := range g {
				g[k] = weights[i][j] * float32(k+1) / 3
			}
			p.SetTokenGrads(i, j, g)
		}
	}
	grads := NewParams(m.Config)
	p.Backward(grads)
	gts := grads.Tensors(m.Config)
	for ti, w := range m.W.Tensors(m.Config) {
		u := make([]float32, len(w.Data))
		var analytic float64
		for i := range u {
			u[i] = float32(rng.NormFloat64())
			analytic += float64(u[i]) * float64(gts[ti].Data[i])
		}
		orig := append([]float32(nil), w.Data...)
		const eps = 1e-3
		for i := range w.Data {
			w.Data[i] = orig[i] + eps*u[i]
		}
		fp, _ := objective(t, m, exs, weights)
		for i := range w.Data {
			w.Data[i] = orig[i] - eps*u[i]
		}
		fm, _ := objective(t, m, exs, weights)
		copy(w.Data, orig)
		numeric := (fp - fm) / (2 * eps)
		if d := math.Abs(numeric - analytic); d > 1e-2*math.Max(1, math.Abs(analytic)) {
			t.Errorf("%s %s: directional derivative %.6g, finite difference %.6g", label, w.Name, analytic, numeric)
		}
	}
}

// TestSharedPrefixEqualsSeparate: scoring two completions after one prompt in
// one packed row gives the log-probs and gradients of scoring each full
// sequence on its own.
func TestSharedPrefixEqualsSeparate(t *testing.T) {
	m := tinyModel(t, true, 11)
	rng := rand.New(rand.NewPCG(5, 6))
	prompt := randTokens(rng, 12, 37)
	c1, c2 := randTokens(rng, 5, 37), randTokens(rng, 8, 37)
	packedPass, err := m.Score([]Example{{Prompt: prompt, Completions: [][]int{c1, c2}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	packedPass.SetGrad(0, 0, 1)
	packedPass.SetGrad(0, 1, -0.5)
	gPacked := NewParams(m.Config)
	packedPass.Backward(gPacked)

	sep, err := m.Score([]Example{{Prompt: prompt, Completions: [][]int{c1}}, {Prompt: prompt, Completions: [][]int{c2}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sep.SetGrad(0, 0, 1)
	sep.SetGrad(1, 0, -0.5)
	gSep := NewParams(m.Config)
	sep.Backward(gSep)
	for j, want := range [][]float32{sep.Tokens(0, 0), sep.Tokens(1, 0)} {
		got := packedPass.Tokens(0, j)
		for k := range want {
			if math.Abs(float64(got[k]-want[k])) > 1e-5 {
				t.Errorf("completion %d token %d: packed %.7f, separate %.7f", j, k, got[k], want[k])
			}
		}
	}
	sepT := gSep.Tensors(m.Config)
	for ti, tt := range gPacked.Tensors(m.Config) {
		for i, v := range tt.Data {
			if d := math.Abs(float64(v - sepT[ti].Data[i])); d > 1e-4*math.Max(1, math.Abs(float64(v))) {
				t.Fatalf("%s[%d]: packed gradient %.7g, separate %.7g", tt.Name, i, v, sepT[ti].Data[i])
			}
		}
	}
}
