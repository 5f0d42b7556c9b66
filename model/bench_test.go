package model

import (
	"math/rand/v2"
	"testing"

	"fspo/tensor"
)

func BenchmarkTrainStepProfile(b *testing.B) {
	m := loadStories(b)
	tensor.SetThreads(1)
	rng := rand.New(rand.NewPCG(1, 2))
	exs := make([]Example, 8)
	for i := range exs {
		exs[i] = Example{Prompt: []int{1}, Completions: [][]int{randTokens(rng, 256, 512)}}
	}
	g := NewParams(m.Config)
	var p *Pass
	for i := 0; i < b.N; i++ {
		p, _ = m.Score(exs, p)
		for k := range exs {
			p.SetGrad(k, 0, 1)
		}
		p.Backward(g)
	}
	b.ReportMetric(float64(8*256*b.N)/b.Elapsed().Seconds(), "tok/s")
}
