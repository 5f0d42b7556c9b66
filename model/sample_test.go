package model

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"fspo/tensor"
)

// fullSortNucleus is nucleus sampling by sorting every token (stable, by
// probability): the definition the sampler must reproduce exactly.
func fullSortNucleus(p []float32, topP, coin float32) int {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] > p[idx[b]] })
	var mass float32
	last := len(idx) - 1
	for k, i := range idx {
		mass += p[i]
		if mass >= topP {
			last = k
			break
		}
	}
	r := coin * mass
	var cdf float32
	for _, i := range idx[:last+1] {
		cdf += p[i]
		if r < cdf {
			return i
		}
	}
	return idx[last]
}

// plainSoftmax is the sampler's distribution written as the plain loop:
// float64 exponentials of the float32 (z − max)/T, summed in index order,
// then each divided by the sum and rounded to float32.
func plainSoftmax(logits []float32, temp float32) []float32 {
	mx := tensor.Max(logits)
	p := make([]float32, len(logits))
	var sum float64
	for i, z := range logits {
		e := math.Exp(float64((z - mx) * (1 / temp)))
		p[i] = float32(e)
		sum += e
	}
	for i := range p {
		p[i] = float32(float64(p[i]) / sum)
	}
	return p
}

// TestNucleusEqualsFullSort: the sampler's probabilities are, bit for bit,
// those of the plain softmax loop (plainSoftmax), and the sampler, which sorts only the tokens that
// can be in the nucleus, draws exactly the token a full sort draws — on
// peaked and flat distributions, with ties, tiny vocabularies and top-p
// close to 0 and 1.
func TestNucleusEqualsFullSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	draws, rareFallback := 0, 0
	for _, n := range []int{1, 2, 3, 17, 1000, 32000} {
		for _, spread := range []float64{0, 0.5, 3, 12} { // 0: all equal (ties everywhere)
			for _, quant := range []bool{false, true} {
				logits := make([]float32, n)
				for i := range logits {
					z := rng.NormFloat64() * spread
					if quant {
						z = math.Round(z) // many exact ties
					}
					logits[i] = float32(z)
				}
				for _, topP := range []float32{1e-6, 0.1, 0.5, 0.9, 0.99, 0.999999} {
					for _, temp := range []float32{0.7, 1} {
						s := NewSampler(temp, topP, uint64(draws))
						// the sampler draws one Float32 of this generator per token
						twin := rand.New(rand.NewPCG(uint64(draws), 0x5eed))
						for range 5 {
							coin := twin.Float32()
							got := s.Sample(logits)
							for i, want := range plainSoftmax(logits, temp) {
								if math.Float32bits(s.probs[i]) != math.Float32bits(want) {
									t.Fatalf("n %d spread %v T %v: p[%d] = %v, the plain loop gives %v", n, spread, temp, i, s.probs[i], want)
								}
							}
							want := fullSortNucleus(s.probs[:n], topP, coin)
							if got != want {
								t.Fatalf("n %d spread %v ties %v top-p %v T %v: sampled %d, a full sort gives %d", n, spread, quant, topP, temp, got, want)
							}
							draws++
							if len(s.cand) == n && n > 1 {
								rareFallback++
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d draws identical to the full sort (in %d of them every token could be in the nucleus)", draws, rareFallback)
}

// BenchmarkNucleus128k: one top-p draw over a Llama-3 sized vocabulary with
// logits of a peaked (trained-model-like) spread.
func BenchmarkNucleus128k(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 128256)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 3)
	}
	s := NewSampler(1, 0.9, 1)
	b.Run("sampler", func(b *testing.B) {
		for b.Loop() {
			s.Sample(logits)
		}
	})
	b.Run("full-sort", func(b *testing.B) {
		s.Sample(logits)
		for b.Loop() {
			fullSortNucleus(s.probs, 0.9, 0.5)
		}
	})
}
