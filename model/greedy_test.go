package model

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"fspo/tensor"
)

// greedyRef decodes prompts greedily in one batch, step by step with whole
// logits and tensor.Argmax, stopping at EOS: what greedy decoding gave
// before classifier screens. (A batch's rows share the products, whose
// rounding can depend on how many rows there are, so the reference batches
// as GenerateBatch does.)
func greedyRef(t *testing.T, m *Model, prompts [][]int, n int) [][]int {
	t.Helper()
	out := make([][]int, len(prompts))
	var steps []Step
	var seq []int // each step's sequence
	for i, p := range prompts {
		c := m.NewCacheFor(len(p) + n)
		defer c.Release()
		steps, seq = append(steps, Step{Cache: c, Tokens: p, Logits: make([]float32, m.Config.Vocab)}), append(seq, i)
	}
	for len(steps) > 0 {
		if err := m.Forward(steps); err != nil {
			t.Fatal(err)
		}
		var next []Step
		var nseq []int
		for k, s := range steps {
			i, tok := seq[k], tensor.Argmax(s.Logits)
			if tok == EOS {
				continue
			}
			if out[i] = append(out[i], tok); len(out[i]) < n {
				next, nseq = append(next, Step{Cache: s.Cache, Tokens: []int{tok}, Logits: s.Logits}), append(nseq, i)
			}
		}
		steps, seq = next, nseq
	}
	return out
}

// TestGreedyScreenedEqualsArgmax: a model with a large vocabulary decodes
// greedily through its classifier's screen (F32, F16, BF16; not Q8_0) on 1
// and 2 threads, one prompt or two, the last of them twice — on 1 thread
// from the first greedy step, while a reduced model's screen is being
// built in the background — and every token is the argmax of the whole
// logits.
func TestGreedyScreenedEqualsArgmax(t *testing.T) {
	c := Config{Dim: rowDecodeDim, Hidden: 384, Layers: 2, Heads: 4, KVHeads: 2, Vocab: screenVocab + 1000, SeqLen: 64, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 10000}
	base := randomModel(t, c, 9)
	for _, tt := range base.W.Tensors(c) {
		if !strings.HasPrefix(tt.Name, "rms") {
			tensor.Scale(0.2, tt.Data)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	prompts := [][]int{randTokens(rng, 5, c.Vocab), randTokens(rng, 9, c.Vocab)}
	defer tensor.SetThreads(tensor.Threads())
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.Q8_0} {
		m := clone(t, base)
		if dt != tensor.F32 {
			if err := m.SetDType(dt); err != nil {
				t.Fatal(err)
			}
		}
		rows0, _, _ := ScreenStats()
		for _, th := range []int{1, 2} {
			if th == 2 {
				m.PrepareClassifierScreen() // the first thread count's decoding ran while it was built
			}
			tensor.SetThreads(th)
			for _, ps := range [][][]int{prompts[:1], prompts} {
				// the second prompt twice: decoded twice from one prefill
				got, err := m.GenerateBatch(context.Background(), append(slices.Clip(ps), ps[len(ps)-1]), GenOptions{MaxTokens: 24}, nil)
				if err != nil {
					t.Fatal(err)
				}
				want := greedyRef(t, m, ps, 24)
				for i, g := range got {
					if w := want[min(i, len(ps)-1)]; !equalInts(g.Tokens, w) {
						t.Fatalf("%s, %d threads, sequence %d of %d: greedy %v, argmax of the logits %v", dt, th, i, len(got), g.Tokens, w)
					}
				}
			}
		}
		rows, exact, whole := ScreenStats()
		screened := rows - rows0
		if dt == tensor.Q8_0 && screened != 0 || dt != tensor.Q8_0 && (screened == 0 || whole != 0) {
			t.Fatalf("%s: %d greedy rows screened (%d rescored, %d whole)", dt, screened, exact, whole)
		}
		t.Logf("%s: %d rows screened", dt, screened)
	}
}
