package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"weak"

	"fspo/tensor"
)

// clone copies m's weights into a new F32 model.
func clone(t testing.TB, m *Model) *Model {
	p := NewParams(m.Config)
	for i, tt := range p.Tensors(m.Config) {
		copy(tt.Data, m.W.Tensors(m.Config)[i].Data)
	}
	c, err := New(m.Config, p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// widened is the F32 model holding exactly the values of reduced model r.
func widened(t testing.TB, r *Model) *Model {
	c := r.Config
	p := NewParams(c)
	for _, tt := range p.Tensors(c) {
		copy(tt.Data, r.W.Tensors(c)[indexOf(c, tt.Name)].Data)
	}
	fill := func(dst []float32, qs ...*tensor.QMatrix) {
		for _, q := range qs {
			for i := range q.Rows {
				q.Row(i, dst[i*q.Cols:])
			}
			dst = dst[q.Rows*q.Cols:]
		}
	}
	q := r.q
	fill(p.Wq, q.wq...)
	fill(p.Wk, q.wk...)
	fill(p.Wv, q.wv...)
	fill(p.Wo, q.wo...)
	fill(p.W1, q.w1...)
	fill(p.W2, q.w2...)
	fill(p.W3, q.w3...)
	fill(p.Emb, q.emb)
	if p.Wcls != nil {
		fill(p.Wcls, q.cls)
	}
	m, err := New(c, p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func indexOf(c Config, name string) int {
	for i, s := range c.shapes() {
		if s.name == name {
			return i
		}
	}
	return -1
}

// q8Variants are small models whose rows are multiples of 32 long, so that
// Q8_0 holds every matrix (one has a tail: hidden 80 is kept in F16).
func q8Variants(t testing.TB) map[string]*Model {
	base := Config{Dim: 64, Hidden: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 50, SeqLen: 64, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 10000}
	qwen2 := base
	qwen2.Arch, qwen2.QKVBias, qwen2.SharedClassifier = "qwen2", true, false
	qwen3 := base
	qwen3.Arch, qwen3.HeadDim, qwen3.QKNorm, qwen3.Hidden = "qwen3", 32, true, 80
	return map[string]*Model{"llama": randomModel(t, base, 3), "qwen2": randomModel(t, qwen2, 4), "qwen3": randomModel(t, qwen3, 5)}
}

// TestReducedWeightsComputeTheirValues: a model held in F16, BF16 or Q8_0
// scores texts as the F32 model holding the same (rounded) values does, to
// float32 rounding; decoding on its cached path agrees with its own scoring
// (F16, BF16 exactly so; Q8_0 also rounds the activations of decoded rows to
// 8 bits, as llama.cpp does, so there the bound is looser).
func TestReducedWeightsComputeTheirValues(t *testing.T) {
	models := archVariants(t)
	for name, m := range q8Variants(t) {
		models["q8-"+name] = m
	}
	for name, m := range models {
		for _, dt := range []tensor.DType{tensor.F16, tensor.BF16, tensor.Q8_0} {
			r := clone(t, m)
			if err := r.SetDType(dt); err != nil {
				t.Fatal(err)
			}
			ref := widened(t, r)
			rng := rand.New(rand.NewPCG(1, 2))
			toks := randTokens(rng, 20, m.Config.Vocab)
			ex := []Example{{Prompt: toks[:1], Completions: [][]int{toks[1:]}}}
			got, err := r.Score(ex, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.Score(ex, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Q8_0's decoded rows also round the activations, and so do
			// its prompts' rows where the 8-bit tiles run: with these random
			// weights (std 0.3) that moves log-probs by up to ~0.35 from the
			// F32 model's; a wrong matrix or row would move them by nats.
			// Where both round, decoding and scoring agree closely. BF16
			// prompts round the activations to BF16 where its tiles run
			// (~0.05 here), decoded rows do not. The kernels' arithmetic is
			// tested exactly in the tensor package.
			q8 := dt == tensor.Q8_0 && len(r.Fallbacks()) < 7*r.Config.Layers
			scoreTol, tol := 1e-5, 2e-5
			switch prompts := tensor.PromptsRoundActivations(dt); {
			case q8 && prompts:
				scoreTol, tol = 0.5, 1e-4
			case q8:
				tol = 0.5
			case dt == tensor.BF16 && prompts:
				scoreTol, tol = 0.15, 0.15
			}
			if d := maxAbsDiff(got.Tokens(0, 0), want.Tokens(0, 0)); d > scoreTol {
				t.Errorf("%s %s: scoring differs from the widened F32 model by %.2e (bound %.0e)", name, dt, d, scoreTol)
			}
			if d := decodeVsScore(t, r, toks, got.Tokens(0, 0)); d > tol {
				t.Errorf("%s %s: cached decoding differs from scoring by %.2e (bound %.0e)", name, dt, d, tol)
			}
		}
	}
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// decodeVsScore decodes toks with the KV cache (a prefill of 7 rows, then one
// row at a time) and returns the largest log-prob difference from want.
func decodeVsScore(t *testing.T, m *Model, toks []int, want []float32) float64 {
	cache, logits := m.NewCache(), make([]float32, m.Config.Vocab)
	prefill := min(7, len(toks)-1)
	d := 0.0
	for k := prefill; k < len(toks); k++ {
		in := toks[k-1 : k]
		if k == prefill {
			in = toks[:k]
		}
		if err := m.Forward([]Step{{Cache: cache, Tokens: in, Logits: logits}}); err != nil {
			t.Fatal(err)
		}
		got, _ := logSoftmaxAt(logits, make([]float32, len(logits)), toks[k])
		d = math.Max(d, math.Abs(float64(got-want[k-1])))
	}
	return d
}

// TestReducedStoriesGreedy: stories260K greedy-decodes 128 tokens from three
// prompts in F16 as in F32 for at least 90% of the steps (up to the first
// difference); BF16 and Q8_0 (its 172-wide down projection kept in F16) are
// reported, with each type's largest log-prob difference from F32 when
// decoding three texts.
func TestReducedStoriesGreedy(t *testing.T) {
	m := loadStories(t)
	prompts := [][]int{{BOS}, {BOS, 403, 407, 261}, {BOS, 291, 280}}
	opt := GenOptions{MaxTokens: 128}
	ref, err := m.GenerateBatch(context.Background(), prompts, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, dt := range []tensor.DType{tensor.F16, tensor.BF16, tensor.Q8_0} {
		r := clone(t, m)
		if err := r.SetDType(dt); err != nil {
			t.Fatal(err)
		}
		if dt == tensor.Q8_0 && (len(r.Fallbacks()) != m.Config.Layers || !strings.HasSuffix(r.Fallbacks()[0], ".w2")) {
			t.Errorf("q8_0 fallbacks %v, want the %d w2 matrices (172 wide)", r.Fallbacks(), m.Config.Layers)
		}
		out, err := r.GenerateBatch(context.Background(), prompts, opt, nil)
		if err != nil {
			t.Fatal(err)
		}
		same, total := 0, 0
		for i := range prompts {
			a, b := ref[i].Tokens, out[i].Tokens
			n := 0
			for n < len(a) && n < len(b) && a[n] == b[n] {
				n++
			}
			same, total = same+n, total+len(a)
		}
		t.Logf("%s: greedy tokens identical to F32 for %d of %d steps (before the first difference); weights %d → %d bytes",
			dt, same, total, m.WeightBytes(), r.WeightBytes())
		d := 0.0
		for i, p := range prompts {
			toks := append(append([]int{}, p...), ref[i].Tokens...)
			sc, err := m.Score([]Example{{Prompt: toks[:1], Completions: [][]int{toks[1:]}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			d = math.Max(d, decodeVsScore(t, r, toks, sc.Tokens(0, 0)))
		}
		t.Logf("%s: max |Δ log-prob| against F32 over the 3 decoded texts: %.3g", dt, d)
		if d > map[tensor.DType]float64{tensor.F16: 0.02, tensor.BF16: 0.2, tensor.Q8_0: 0.5}[dt] {
			t.Errorf("%s: log-probs differ from F32 by %.3g", dt, d)
		}
		if dt == tensor.F16 && same < total*9/10 {
			t.Errorf("%s: only %d of %d greedy steps match F32", dt, same, total)
		}
		if r.WeightBytes() >= m.WeightBytes()*6/10 {
			t.Errorf("%s: %d bytes of weights, F32 %d", dt, r.WeightBytes(), m.WeightBytes())
		}
	}
}

func TestSetDTypeErrors(t *testing.T) {
	m := archVariants(t)["llama3"]
	big := clone(t, m)
	big.W.W1[5] = 1e5
	if err := big.SetDType(tensor.F16); err == nil || !strings.Contains(err.Error(), "tensor layers.0.w1: value 100000 at row 0, column 5 cannot be stored as f16") {
		t.Errorf("F16 overflow: %v", err)
	}
	if big.DType() != tensor.F32 || big.W.W1 == nil {
		t.Error("a failed conversion changed the model")
	}
	r := clone(t, m)
	if err := r.SetDType(tensor.BF16); err != nil {
		t.Fatal(err)
	}
	if err := r.SetDType(tensor.F16); err == nil || !strings.Contains(err.Error(), "held in bf16") {
		t.Errorf("bf16 → f16: %v", err)
	}
	if err := r.SetDType(tensor.BF16); err != nil {
		t.Errorf("bf16 → bf16: %v", err)
	}
	if _, err := r.Checkpoint(); !errors.Is(err, ErrReducedWeights) {
		t.Errorf("checkpoint of a bf16 model: %v", err)
	}
	if err := r.WriteLlama2C(filepath.Join(t.TempDir(), "m.bin")); !errors.Is(err, ErrReducedWeights) {
		t.Errorf("llama2.c export of a bf16 model: %v", err)
	}
}

// TestReducedAdd: a loader's matrices go to their Params field, layered ones
// in order, and a name with no field is an error naming it.
func TestReducedAdd(t *testing.T) {
	qm := func(rows int) *tensor.QMatrix {
		m, err := tensor.Quantize(tensor.F16, make([]float32, rows*32), rows, 32)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	r := Reduced{DType: tensor.Q8_0}
	emb, w0, w1 := qm(1), qm(2), qm(3)
	for _, a := range []struct {
		field, name string
		m           *tensor.QMatrix
		fellBack    bool
	}{{"emb", "token_embd.weight", emb, true}, {"w2", "blk.0.ffn_down.weight", w0, false}, {"w2", "blk.1.ffn_down.weight", w1, false}} {
		if err := r.Add(a.field, a.name, a.m, a.fellBack); err != nil {
			t.Fatal(err)
		}
	}
	if r.Emb != emb || len(r.W2) != 2 || r.W2[0] != w0 || r.W2[1] != w1 || r.Wq != nil || r.Wcls != nil {
		t.Errorf("placed: emb %v, w2 %v, wq %v, wcls %v", r.Emb == emb, r.W2, r.Wq, r.Wcls)
	}
	if len(r.Fallback) != 1 || r.Fallback[0] != "token_embd.weight" {
		t.Errorf("Fallback = %q, want the embedding's name", r.Fallback)
	}
	if err := r.Add("", "blk.0.attn_norm.weight", w0, false); err == nil || !strings.Contains(err.Error(), "blk.0.attn_norm.weight") {
		t.Errorf("Add of a matrix with no field: %v", err)
	}
}

// TestCloneOfReducedModel: a clone shares the reduced matrices and decodes
// as the original does.
func TestCloneOfReducedModel(t *testing.T) {
	m := clone(t, archVariants(t)["qwen2"])
	if err := m.SetDType(tensor.F16); err != nil {
		t.Fatal(err)
	}
	c := m.Clone()
	if c.WeightBytes() != m.WeightBytes() || c.DType() != tensor.F16 {
		t.Fatalf("clone: %d bytes in %s, original %d", c.WeightBytes(), c.DType(), m.WeightBytes())
	}
	a, err := m.Generate(context.Background(), []int{1, 2, 3}, GenOptions{MaxTokens: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Generate(context.Background(), []int{1, 2, 3}, GenOptions{MaxTokens: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(a.Tokens, b.Tokens) {
		t.Errorf("clone decodes %v, original %v", b.Tokens, a.Tokens)
	}
}

// TestWideF32DecodingMatchesScore: a model at least rowDecodeDim wide decodes
// F32 row by row through QMatrix views (and, for one sequence on 2 threads,
// over its team); decoding equals scoring, and greedy generation is the same
// on 1 and 2 threads.
func TestWideF32DecodingMatchesScore(t *testing.T) {
	c := Config{Dim: rowDecodeDim, Hidden: 384, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, SeqLen: 64, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 10000}
	m := randomModel(t, c, 8)
	for _, tt := range m.W.Tensors(c) {
		if !strings.HasPrefix(tt.Name, "rms") {
			tensor.Scale(0.2, tt.Data) // keep the logits of a 256-wide random model in a sane range
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	toks := randTokens(rng, 20, c.Vocab)
	sc, err := m.Score([]Example{{Prompt: toks[:1], Completions: [][]int{toks[1:]}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := decodeVsScore(t, m, toks, sc.Tokens(0, 0)); d > 1e-5 {
		t.Errorf("row-by-row decoding differs from scoring by %.2e", d)
	}
	if m.views == nil || m.t != nil {
		t.Errorf("decoding a %d-wide model did not go through the row views", c.Dim)
	}
	defer tensor.SetThreads(tensor.Threads())
	var outs [2][]int
	for i, th := range []int{1, 2} {
		tensor.SetThreads(th)
		g, err := m.Generate(context.Background(), toks[:3], GenOptions{MaxTokens: 30}, nil)
		if err != nil {
			t.Fatal(err)
		}
		outs[i] = g.Tokens
	}
	if !equalInts(outs[0], outs[1]) {
		t.Errorf("greedy tokens on 1 thread %v, on 2 %v", outs[0], outs[1])
	}
}

// TestSetDTypeReleasesF32: after SetDType the F32 block of the weights is
// garbage (only the small tensors, copied out of it, remain). A weak pointer
// into the block says so exactly; the heap's size would also count the huge
// page slabs the new matrices are cut from, which depend on earlier tests.
func TestSetDTypeReleasesF32(t *testing.T) {
	c := Config{Dim: 256, Hidden: 512, Layers: 4, Heads: 4, KVHeads: 2, Vocab: 4096, SeqLen: 64, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 10000}
	m := randomModel(t, c, 1)
	block := weak.Make(&m.W.Wq[0]) // a matrix inside NewParams' single block
	if err := m.SetDType(tensor.Q8_0); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	if block.Value() != nil {
		t.Errorf("the F32 block of the weights is still reachable after SetDType(q8_0)")
	}
	runtime.KeepAlive(m)
}
