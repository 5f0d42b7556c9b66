package model

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"fspo/tensor"
)

// BenchmarkTrainStep: forward + backward, batch 8 × 256 tokens, one thread.
func BenchmarkTrainStep(b *testing.B) {
	m := loadStories(b)
	tensor.SetThreads(1)
	defer tensor.SetThreads(0)
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

func BenchmarkGenerate512(b *testing.B) {
	m := loadStories(b)
	for _, th := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", th), func(b *testing.B) {
			tensor.SetThreads(th)
			defer tensor.SetThreads(0)
			for i := 0; i < b.N; i++ {
				if _, err := m.Generate(context.Background(), []int{BOS}, GenOptions{MaxTokens: 511}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(511*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
