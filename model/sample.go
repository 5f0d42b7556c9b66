package model

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Sampler picks the next token from logits: greedy (Temperature 0),
// temperature sampling, or nucleus (top-p) sampling (Holtzman et al. 2020).
// It is seeded and reproducible; one Sampler serves one sequence.
type Sampler struct {
	Temperature float32
	TopP        float32 // in (0,1) to truncate to the smallest set of tokens with mass ≥ TopP; 0 or 1: off
	rng         *rand.Rand
	probs       []float32
	idx         []int
}

// NewSampler makes a sampler seeded with seed.
func NewSampler(temperature, topP float32, seed uint64) *Sampler {
	return &Sampler{Temperature: temperature, TopP: topP, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

// Argmax is the index of the first largest value.
func Argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// Sample returns the next token. logits is not modified.
func (s *Sampler) Sample(logits []float32) int {
	if s.Temperature <= 0 {
		return Argmax(logits)
	}
	if cap(s.probs) < len(logits) {
		s.probs = make([]float32, len(logits))
	}
	p := s.probs[:len(logits)]
	mx := logits[Argmax(logits)]
	var sum float64
	inv := 1 / s.Temperature
	for i, z := range logits {
		e := math.Exp(float64((z - mx) * inv))
		p[i] = float32(e)
		sum += e
	}
	for i := range p {
		p[i] = float32(float64(p[i]) / sum)
	}
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
	s.idx = s.idx[:0]
	for i := range p {
		s.idx = append(s.idx, i)
	}
	sort.SliceStable(s.idx, func(a, b int) bool { return p[s.idx[a]] > p[s.idx[b]] })
	var mass float32
	last := len(s.idx) - 1
	for k, i := range s.idx {
		mass += p[i]
		if mass >= s.TopP {
			last = k
			break
		}
	}
	r := coin * mass
	var cdf float32
	for _, i := range s.idx[:last+1] {
		cdf += p[i]
		if r < cdf {
			return i
		}
	}
	return s.idx[last]
}
