package model

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"fspo/tensor"
)

// cpuTime is the process's user+system CPU time: on a machine shared with
// other work it grows only while this process runs, so tokens per CPU second
// of a one-thread run are a steadier speed measure than wall time.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecodeCPU is BenchmarkGenerate512 that also reports tokens per
// CPU second (cpu-tok/s) next to the wall-clock rate.
func BenchmarkDecodeCPU(b *testing.B) {
	m := loadStories(b)
	for _, th := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", th), func(b *testing.B) {
			tensor.SetThreads(th)
			defer tensor.SetThreads(0)
			c0 := cpuTime(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Generate(context.Background(), []int{BOS}, GenOptions{MaxTokens: 511}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(511*b.N)/b.Elapsed().Seconds(), "tok/s")
			b.ReportMetric(float64(511*b.N)/(cpuTime(b)-c0).Seconds(), "cpu-tok/s")
		})
	}
}

// BenchmarkTrainCPU is BenchmarkTrainStep (forward + backward, batch 8 × 256)
// at 1 and 2 threads, also reporting tokens per CPU second.
func BenchmarkTrainCPU(b *testing.B) {
	m := loadStories(b)
	rng := rand.New(rand.NewPCG(1, 2))
	exs := make([]Example, 8)
	for i := range exs {
		exs[i] = Example{Prompt: []int{1}, Completions: [][]int{randTokens(rng, 256, 512)}}
	}
	for _, th := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", th), func(b *testing.B) {
			tensor.SetThreads(th)
			defer tensor.SetThreads(0)
			g := NewParams(m.Config)
			p, _ := m.Score(exs, nil)
			c0 := cpuTime(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p, _ = m.Score(exs, p)
				for k := range exs {
					p.SetGrad(k, 0, 1)
				}
				p.Backward(g)
			}
			b.ReportMetric(float64(8*256*b.N)/b.Elapsed().Seconds(), "tok/s")
			b.ReportMetric(float64(8*256*b.N)/(cpuTime(b)-c0).Seconds(), "cpu-tok/s")
		})
	}
}
