package gguf

import (
	"math/rand/v2"
	"testing"

	"fspo/model"
)

func BenchmarkZZPrefill(b *testing.B) {
	m, _, err := Load("/tmp/fspo-speed/random-180m-f32.gguf")
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	prompt := make([]int, 512)
	for i := range prompt {
		prompt[i] = r.IntN(m.Config.Vocab)
	}
	logits := make([]float32, m.Config.Vocab)
	b.ResetTimer()
	for range b.N {
		cache := m.NewCacheFor(512)
		if err := m.Forward([]model.Step{{Cache: cache, Tokens: prompt, Logits: logits}}); err != nil {
			b.Fatal(err)
		}
		cache.Release()
	}
	b.ReportMetric(float64(512*b.N)/b.Elapsed().Seconds(), "tok/s")
}
