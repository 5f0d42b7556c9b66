package model

import (
	"context"
	"math"
	"slices"
	"testing"

	"fspo/tensor"
)

// TestGenerateSameOnTwoThreads: one sequence on 2 threads splits its
// attention over a Team; the tokens must be those of 1 thread.
func TestGenerateSameOnTwoThreads(t *testing.T) {
	m := loadStories(t)
	defer tensor.SetThreads(0)
	gen := func(threads int) []int {
		tensor.SetThreads(threads)
		out, err := m.Generate(context.Background(), []int{BOS, 403, 407}, GenOptions{MaxTokens: 300, Temperature: 0.8, Seed: 3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out.Tokens
	}
	one, two := gen(1), gen(2)
	if len(one) < 50 {
		t.Fatalf("only %d tokens generated", len(one))
	}
	if !slices.Equal(one, two) {
		t.Fatalf("2 threads generated %v,\nwant (1 thread) %v", two, one)
	}
}

// TestForwardOnTeam: a batch of decoded rows split over a team (serve's
// batcher) gives the logits of the same Forward without one within 1e-4
// (relative), and bit for bit on AVX-512 where both take the same kernels:
// one row (the row kernels) and 7–32 rows (the dot form); 5–6 rows take the
// row kernels on the team, the dot form without. The model is 256 wide, so
// its products take the weights' row views that the team splits.
func TestForwardOnTeam(t *testing.T) {
	defer tensor.SetThreads(0)
	tensor.SetThreads(2)
	c := Config{Dim: 256, Hidden: 384, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, SeqLen: 64, NormEps: 1e-5, RopeTheta: 1e4}
	m := randomModel(t, c, 4)
	team := tensor.NewTeam()
	defer team.Close()
	for _, rows := range []int{1, 5, 12, 32} {
		decode := func(team *tensor.Team) [][]float32 {
			steps := make([]Step, rows)
			for i := range steps {
				prompt := []int{BOS, 10 + i, 20 + 3*i, 7}
				steps[i] = Step{Cache: m.NewCacheFor(8), Tokens: prompt, Logits: make([]float32, c.Vocab)}
			}
			if err := m.Forward(steps); err != nil { // the prompts, without the team
				t.Fatal(err)
			}
			for i := range steps {
				steps[i].Tokens = []int{40 + i}
			}
			if err := m.ForwardOn(team, steps); err != nil {
				t.Fatal(err)
			}
			out := make([][]float32, rows)
			for i, s := range steps {
				out[i] = s.Logits
			}
			return out
		}
		alone, shared := decode(nil), decode(team)
		for i := range alone {
			for j, want := range alone[i] {
				got := shared[i][j]
				exact := tensor.SIMDLevel() == "avx512" && (rows == 1 || rows > 6)
				if exact && got != want || math.Abs(float64(got-want)) > 1e-4*(1+math.Abs(float64(want))) {
					t.Fatalf("%d rows: row %d logit %d: %v on the team, %v without", rows, i, j, got, want)
				}
			}
		}
	}
}
