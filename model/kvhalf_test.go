package model

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"fspo/tensor"
)

// kvHalfModels are models whose caches TestKVCacheF16 stores as halves:
// stories260K (head size 8: the row kernels, its halves widened first) and
// random models of head size 64, three and four query heads a key/value
// head (the AVX-512 kernels that widen as they load, three heads at a time
// and one), whose 40-token prompts attend through matrix products.
func kvHalfModels(t *testing.T) map[string]*Model {
	out := map[string]*Model{"stories260K": loadStories(t)}
	for name, c := range map[string]Config{
		"hs64_group3": {Dim: 192, Hidden: 256, Layers: 2, Heads: 3, KVHeads: 1, Vocab: 97, SeqLen: 128, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 10000},
		"hs64_group4": {Dim: 256, Hidden: 256, Layers: 2, Heads: 4, KVHeads: 1, Vocab: 97, SeqLen: 128, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 10000},
	} {
		m := randomModel(t, c, 5)
		for _, tt := range m.W.Tensors(c) { // weights of a trained model's size, so that a prompt's activations stay moderate
			if len(tt.Shape) > 1 {
				tensor.Scale(0.2, tt.Data)
			}
		}
		out[name] = m
	}
	return out
}

// TestKVCacheF16: a model whose caches store halves (SetKVCache) stores
// each key and value of the first layer as F32ToF16Held of the float32
// cache's (the layout and the rounding, exactly); its log-probs over a
// 40-token prompt and 24 decoded tokens (the same tokens fed to both) stay
// within 0.05 of the float32 cache's; and a cache of halves copied
// (CopyPrefix from a View) or handed over (Adopt) gives the bits of the
// original's next step.
func TestKVCacheF16(t *testing.T) {
	for name, m := range kvHalfModels(t) {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			toks := randTokens(rng, 64, m.Config.Vocab)
			prompt, rest := toks[:40], toks[40:]
			run := func(dt tensor.DType) (*Cache, [][]float32) {
				t.Helper()
				if err := m.SetKVCache(dt); err != nil {
					t.Fatal(err)
				}
				defer m.SetKVCache(tensor.F32)
				c := m.NewCacheFor(len(toks) + 8)
				all := make([]float32, len(prompt)*m.Config.Vocab)
				if err := m.Forward([]Step{{Cache: c, Tokens: prompt, AllLogits: all}}); err != nil {
					t.Fatal(err)
				}
				var logits [][]float32
				for i := range prompt {
					logits = append(logits, all[i*m.Config.Vocab:(i+1)*m.Config.Vocab])
				}
				for _, tok := range rest {
					l := make([]float32, m.Config.Vocab)
					if err := m.Forward([]Step{{Cache: c, Tokens: []int{tok}, Logits: l}}); err != nil {
						t.Fatal(err)
					}
					logits = append(logits, l)
				}
				return c, logits
			}
			full, want := run(tensor.F32)
			half, got := run(tensor.F16)
			defer full.Release()
			defer half.Release()
			if !half.half || half.Bytes()*2 != full.Bytes() {
				t.Fatalf("a cache of halves holds %d bytes against %d", half.Bytes(), full.Bytes())
			}
			kv, ctx := m.Config.KVDim(), full.ctx
			for ch := range kv { // layer 0: the same inputs, so the same values rounded
				for p := range toks[:len(toks)-1] {
					if k, v := full.k[ch*ctx+p], full.v[ch*ctx+p]; half.hk[ch*ctx+p] != tensor.F32ToF16Held(k) || half.hv[ch*ctx+p] != tensor.F32ToF16Held(v) {
						t.Fatalf("layer 0 channel %d position %d holds %#04x %#04x, want %v %v rounded", ch, p, half.hk[ch*ctx+p], half.hv[ch*ctx+p], k, v)
					}
				}
			}
			worst := 0.0
			for i := range want {
				a, b := logSoftmax64(want[i]), logSoftmax64(got[i])
				for j := range a {
					worst = max(worst, math.Abs(a[j]-b[j]))
				}
			}
			t.Logf("max |Δ log-prob| over %d positions: %.2e", len(want), worst)
			if worst > 0.05 || worst == 0 {
				t.Fatalf("log-probs with a cache of halves differ from float32's by %.3e (want 0 < Δ ≤ 0.05)", worst)
			}

			// a copy of the halves, and the halves handed over, step as the original
			n := half.Len()
			if err := m.SetKVCache(tensor.F16); err != nil {
				t.Fatal(err)
			}
			copied, handed := m.NewCacheFor(n+8), m.NewCacheFor(n+8)
			m.SetKVCache(tensor.F32)
			view := half.View(n)
			copied.CopyPrefix(view, n)
			view.Release()
			handed.CopyPrefix(half, n)
			adopted := handed.Adopt(n)
			if adopted == nil || handed.Len() != 0 {
				t.Fatal("a cache of halves was not handed over")
			}
			next := func(c *Cache) []float32 {
				l := make([]float32, m.Config.Vocab)
				if err := m.Forward([]Step{{Cache: c, Tokens: []int{toks[5]}, Logits: l}}); err != nil {
					t.Fatal(err)
				}
				return l
			}
			ref := next(half)
			for what, c := range map[string]*Cache{"copied": copied, "handed over": adopted} {
				if l := next(c); !equalF32(l, ref) {
					t.Errorf("a %s cache of halves steps differently from the original", what)
				}
				c.Release()
			}
			defer func() {
				if recover() == nil {
					t.Error("CopyPrefix from halves into a float32 cache did not panic")
				}
			}()
			m.NewCacheFor(n).CopyPrefix(half, n)
		})
	}
	// generation over halves (the single sequence's products and attention
	// split with a partner thread past 64 positions) gives the tokens of
	// stepping the same halves by hand on one goroutine
	m := kvHalfModels(t)["hs64_group3"]
	if err := m.SetKVCache(tensor.F16); err != nil {
		t.Fatal(err)
	}
	prompt := randTokens(rand.New(rand.NewPCG(3, 3)), 70, m.Config.Vocab)
	g, err := m.Generate(context.Background(), prompt, GenOptions{MaxTokens: 40}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := m.NewCacheFor(len(prompt) + 40)
	l := make([]float32, m.Config.Vocab)
	toks := prompt
	for i, want := range g.Tokens {
		if err := m.Forward([]Step{{Cache: c, Tokens: toks, Logits: l}}); err != nil {
			t.Fatal(err)
		}
		if got := tensor.Argmax(l); got != want {
			t.Fatalf("token %d: %d by hand, %d generated", i, got, want)
		}
		toks = []int{want}
	}
	if len(g.Tokens) < 30 {
		t.Fatalf("generated %d tokens", len(g.Tokens))
	}
	m = loadStories(t)
	if err := m.SetKVCache(tensor.BF16); err == nil || m.KVCache() != tensor.F32 {
		t.Errorf("SetKVCache(bf16): %v, cache type %s", err, m.KVCache())
	}
}

func logSoftmax64(x []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = max(mx, float64(v))
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v) - mx)
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v) - mx - math.Log(sum)
	}
	return out
}
