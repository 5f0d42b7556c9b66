package model

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"fspo/tensor"
)

// archVariants are tiny random models with the features of the Llama 3,
// Qwen2 and Qwen3 families switched on, alone and together.
func archVariants(t testing.TB) map[string]*Model {
	base := Config{Dim: 16, Hidden: 24, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 37, SeqLen: 32, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 10000}
	scaling := &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 64}
	llama3 := base
	llama3.HeadDim, llama3.Heads, llama3.RopeScaling = 8, 2, scaling // head size 8: the attention row kernels
	qwen2 := base
	qwen2.Arch, qwen2.QKVBias, qwen2.SharedClassifier = "qwen2", true, false
	qwen3 := base
	qwen3.Arch, qwen3.HeadDim, qwen3.QKNorm = "qwen3", 8, true // q_dim 32 ≠ dim 16
	all := qwen3
	all.QKVBias, all.RopeScaling, all.HeadDim, all.KVHeads = true, scaling, 6, 4
	out := map[string]*Model{}
	for name, c := range map[string]Config{"llama3": llama3, "qwen2": qwen2, "qwen3": qwen3, "all": all} {
		out[name] = randomModel(t, c, 9)
	}
	return out
}

func randomModel(t testing.TB, c Config, seed uint64) *Model {
	p := NewParams(c)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, tt := range p.Tensors(c) {
		for i := range tt.Data {
			tt.Data[i] = float32(rng.NormFloat64() * 0.3)
			switch tt.Name {
			case "rms_att", "rms_ffn", "rms_final", "q_norm", "k_norm":
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

func TestFiniteDifferencesArchs(t *testing.T) {
	for name, m := range archVariants(t) {
		checkFiniteDifferences(t, m, name)
	}
}

// TestCachedForwardMatchesScore: for every variant, decoding with the KV
// cache (a prefill of several rows, then single rows on the transposed
// weights) gives the log-probs of the batched scoring pass.
func TestCachedForwardMatchesScore(t *testing.T) {
	for name, m := range archVariants(t) {
		rng := rand.New(rand.NewPCG(1, 2))
		toks := randTokens(rng, 20, m.Config.Vocab)
		p, err := m.Score([]Example{{Prompt: toks[:1], Completions: [][]int{toks[1:]}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		maxDiff := decodeVsScore(t, m, toks, p.Tokens(0, 0))
		if maxDiff > 1e-5 {
			t.Errorf("%s: cached decoding differs from scoring by %.2e", name, maxDiff)
		}
	}
}

// TestLlama3Freq: the three bands of Llama 3.1's frequency scaling (factor 8,
// low 1, high 4, original context 8192, as in Llama-3.1's config.json).
func TestLlama3Freq(t *testing.T) {
	rs := &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192}
	mid := 2 * math.Pi / 4096 // wavelength 4096: smooth = (8192/4096 − 1)/3 = 1/3
	for _, tc := range []struct{ f, want float64 }{
		{1, 1}, // wavelength 2π < 2048: kept
		{2 * math.Pi / 10000, 2 * math.Pi / 10000 / 8}, // wavelength 10000 > 8192: divided
		{mid, (2.0/3)*mid/8 + (1.0/3)*mid},
	} {
		if got := llama3Freq(tc.f, rs); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("llama3Freq(%g) = %.17g, want %.17g", tc.f, got, tc.want)
		}
	}
}

func TestSetContext(t *testing.T) {
	m := archVariants(t)["llama3"]
	if got := m.Positions(); got != 32 {
		t.Fatalf("Positions = %d, want the config's 32", got)
	}
	if err := m.SetContext(16); err != nil || m.Positions() != 16 {
		t.Fatalf("SetContext(16): %v, Positions %d", err, m.Positions())
	}
	if err := m.SetContext(33); err == nil {
		t.Error("SetContext beyond seq_len: no error")
	}
	c := m.Config
	c.SeqLen = 131072
	big, err := New(c, m.W)
	if err != nil {
		t.Fatal(err)
	}
	if big.Positions() != DefaultContext {
		t.Errorf("a 131072-position model prepares %d positions, want DefaultContext %d", big.Positions(), DefaultContext)
	}
}

func TestWriteLlama2CRefusesNewFeatures(t *testing.T) {
	for name, m := range archVariants(t) {
		if err := m.WriteLlama2C(t.TempDir() + "/m.bin"); err == nil {
			t.Errorf("%s: exported to llama2.c without an error", name)
		}
	}
}

// TestGenerateArchsThreadsAndBatch: for the variant with every feature and a
// prompt long enough for a decoded row's attention to be split over a Team
// (attendTeamMin positions), generation on 2 threads and in a batch gives
// the tokens of one sequence on 1 thread.
func TestGenerateArchsThreadsAndBatch(t *testing.T) {
	m := archVariants(t)["all"]
	c := m.Config
	c.SeqLen = 128
	m, err := New(c, m.W)
	if err != nil {
		t.Fatal(err)
	}
	defer tensor.SetThreads(0)
	rng := rand.New(rand.NewPCG(7, 8))
	long := randTokens(rng, attendTeamMin+6, c.Vocab)
	prompts := [][]int{long, randTokens(rng, 3, c.Vocab)}
	opt := GenOptions{MaxTokens: 30, Temperature: 0.8, Seed: 5}
	var want [][]int
	tensor.SetThreads(1)
	for i, p := range prompts {
		o := opt
		o.Seed += uint64(i)
		out, err := m.Generate(context.Background(), p, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, out.Tokens)
	}
	if len(want[0]) < 10 {
		t.Fatalf("only %d tokens generated", len(want[0]))
	}
	tensor.SetThreads(2)
	two, err := m.Generate(context.Background(), prompts[0], opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(two.Tokens, want[0]) {
		t.Errorf("2 threads generated %v, want %v", two.Tokens, want[0])
	}
	batch, err := m.GenerateBatch(context.Background(), prompts, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		if !slices.Equal(batch[i].Tokens, want[i]) {
			t.Errorf("prompt %d: batched %v, single %v", i, batch[i].Tokens, want[i])
		}
	}
}

// TestDecays: weight decay applies to the matrices and not to the norm
// weights and biases, though those are stored per layer as (layers, n).
func TestDecays(t *testing.T) {
	c := Config{Dim: 16, Hidden: 32, Layers: 2, Heads: 2, KVHeads: 1, Vocab: 40, SeqLen: 8, NormEps: 1e-5, RopeTheta: 1e4, QKVBias: true, QKNorm: true, HeadDim: 8}
	want := map[string]bool{"emb": true, "wq": true, "wk": true, "wv": true, "wo": true, "w1": true, "w2": true, "w3": true, "wcls": true,
		"rms_att": false, "rms_ffn": false, "rms_final": false, "bq": false, "bk": false, "bv": false, "q_norm": false, "k_norm": false}
	ts := NewParams(c).Tensors(c)
	if len(ts) != len(want) {
		t.Fatalf("%d tensors, want %d", len(ts), len(want))
	}
	for _, tt := range ts {
		if got, ok := want[tt.Name]; !ok || Decays(tt) != got {
			t.Errorf("%s %v: decays %v, want %v", tt.Name, tt.Shape, Decays(tt), got)
		}
	}
}
