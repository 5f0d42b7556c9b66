package model

import (
	"cmp"
	"math/rand/v2"
	"slices"

	"fspo/tensor"
)

// Sampler picks the next token from logits: greedy (Temperature 0),
// temperature sampling, or nucleus (top-p) sampling (Holtzman et al. 2020).
// It is seeded and reproducible; one Sampler serves one sequence.
type Sampler struct {
	Temperature float32
	TopP        float32 // in (0,1) to truncate to the smallest set of tokens with mass ≥ TopP; 0 or 1: off
	rng         *rand.Rand
	probs       []float32
	cand        []ranked
}

// NewSampler makes a sampler seeded with seed.
func NewSampler(temperature, topP float32, seed uint64) *Sampler {
	return &Sampler{Temperature: temperature, TopP: topP, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

// Sample returns the next token. logits is not modified.
func (s *Sampler) Sample(logits []float32) int {
	if s.Temperature <= 0 {
		return tensor.Argmax(logits)
	}
	if cap(s.probs) < len(logits) {
		s.probs = make([]float32, len(logits))
	}
	p := s.probs[:len(logits)]
	mx := tensor.Max(logits)
	// p[i] = exp((z_i − max)/T) / Σ, each exponential math.Exp's in float64
	// and the sum in index order (tensor.ExpScaled forms eight at a time with
	// those bits).
	sum := tensor.ExpScaled(p, logits, mx, 1/s.Temperature)
	tensor.DivideBy(p, sum)
	coin := s.rng.Float32()
	if s.TopP <= 0 || s.TopP >= 1 {
		var cdf float32
		for i, v := range p {
			cdf += v
			if coin < cdf {
				return i
			}
		}
		return len(p) - 1
	}
	return s.nucleus(p, coin)
}

// nucleus samples from the smallest set of most probable tokens whose mass
// reaches TopP, with p sorted by probability (ties by token id). Only the
// tokens with p ≥ (1−TopP)/(n−1) are sorted: a token below that bound is
// never in the set (were the k-th most probable below it, the k−1 before it
// holding less than TopP, the rest — at most n−1 tokens, each below the
// bound — would hold less than 1−TopP). Where rounding leaves the sorted
// tokens short of TopP, all are sorted: the draw is the full sort's, always.
func (s *Sampler) nucleus(p []float32, coin float32) int {
	bound := float32(0)
	if len(p) > 1 {
		bound = (1 - s.TopP) / float32(len(p)-1)
	}
	for {
		s.cand = s.cand[:0]
		for i, v := range p {
			if v >= bound {
				s.cand = append(s.cand, ranked{v, int32(i)})
			}
		}
		slices.SortFunc(s.cand, func(a, b ranked) int {
			if a.p != b.p {
				return cmp.Compare(b.p, a.p)
			}
			return cmp.Compare(a.i, b.i)
		})
		var mass float32
		last := -1
		for k, c := range s.cand {
			mass += c.p
			if mass >= s.TopP {
				last = k
				break
			}
		}
		if last < 0 && len(s.cand) < len(p) {
			bound = 0 // rounding: sort them all
			continue
		}
		if last < 0 {
			last = len(s.cand) - 1
		}
		r := coin * mass
		var cdf float32
		for _, c := range s.cand[:last+1] {
			cdf += c.p
			if r < cdf {
				return int(c.i)
			}
		}
		return int(s.cand[last].i)
	}
}

// ranked is a token and its probability.
type ranked struct {
	p float32
	i int32
}
