package train

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"fspo/model"
)

// BenchmarkLoRAvsFull measures one training step (forward, backward,
// AdamW) of a random model of SmolLM2-135M's shape (576 wide, 30 layers,
// 9 heads, 3 KV heads, 1536 feed-forward, 49,152-token vocabulary, tied
// embedding) on 2 sequences of 256 positions, training every weight
// (full) or a rank-8 LoRA adapter on every matrix (lora), with activation
// checkpointing (lora-recompute) or without, or over the base held in BF16
// (lora-bf16: lora.base_dtype). Run each
// sub-benchmark in its own process for its peak RSS:
//
//	GOEXPERIMENT=simd go test ./train -run '^$' -bench 'LoRAvsFull/full' -benchtime 4x
//	GOEXPERIMENT=simd go test ./train -run '^$' -bench 'LoRAvsFull/lora' -benchtime 4x
//
// It reports the median wall and CPU seconds of the steps after the first
// (which includes the set-up), the heap reserved and the peak RSS. The
// ratio sub-benchmark runs full, lora and lora-bf16 by turns, b.N steps
// each per round over three rounds, and reports lora/full (and
// lora-bf16/full) as the ratio of the
// medians of every step's wall time (the machine's load shifts over a
// minute; by turns, both see it):
//
//	GOEXPERIMENT=simd go test ./train -run '^$' -bench 'LoRAvsFull/ratio' -benchtime 4x
func BenchmarkLoRAvsFull(b *testing.B) {
	for _, kind := range []string{"full", "lora", "lora-recompute", "lora-bf16"} {
		b.Run(kind, func(b *testing.B) {
			if b.N < 2 {
				return // the probe run (steps after the first are timed: use -benchtime 4x)
			}
			walls, cpus := loraBenchRun(b, kind, b.N)
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(median(walls), "s/step")
			b.ReportMetric(median(cpus), "cpu-s/step")
			b.ReportMetric(float64(ms.HeapSys)/(1<<20), "heap-sys-MiB")
			b.ReportMetric(peakRSSMiB(), "peak-rss-MiB")
		})
	}
	b.Run("ratio", func(b *testing.B) {
		if b.N < 2 {
			return
		}
		var full, lora, bf16 []float64
		for range 3 {
			w, _ := loraBenchRun(b, "full", b.N)
			full = append(full, w...)
			w, _ = loraBenchRun(b, "lora", b.N)
			lora = append(lora, w...)
			w, _ = loraBenchRun(b, "lora-bf16", b.N)
			bf16 = append(bf16, w...)
		}
		b.ReportMetric(median(full), "full-s/step")
		b.ReportMetric(median(lora), "lora-s/step")
		b.ReportMetric(median(bf16), "lora-bf16-s/step")
		b.ReportMetric(median(lora)/median(full), "lora/full")
		b.ReportMetric(median(bf16)/median(full), "lora-bf16/full")
	})
}

// loraBenchRun trains the benchmark's model (kind: full, lora or
// lora-recompute) for steps steps and returns the wall and CPU seconds of
// each step after the first (which includes the set-up); the final
// checkpoint write is not timed.
func loraBenchRun(b *testing.B, kind string, steps int) (walls, cpus []float64) {
	c := model.Config{Dim: 576, Hidden: 1536, Layers: 30, Heads: 9, KVHeads: 3, Vocab: 49152, SeqLen: 2048,
		SharedClassifier: true, NormEps: 1e-5, RopeTheta: 100000}
	p := model.NewParams(c)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, t := range p.Tensors(c) {
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64() * 0.02)
			if strings.HasPrefix(t.Name, "rms") {
				t.Data[i] = 1
			}
		}
	}
	m, err := model.New(c, p)
	if err != nil {
		b.Fatal(err)
	}
	items := make([]Item, 2)
	for i := range items {
		seq := func(n int) []int {
			out := make([]int, n)
			for k := range out {
				out[k] = 3 + rng.IntN(c.Vocab-3)
			}
			return out
		}
		items[i] = Item{User: "u", Prompt: seq(128), Chosen: seq(129)}
	}
	cfg := Default("sft")
	cfg.Batch, cfg.Steps, cfg.Warmup, cfg.CheckpointEvery, cfg.LogEvery = 2, int64(steps), 0, 1<<30, 1<<30
	if strings.HasPrefix(kind, "lora") {
		cfg.LoRA = LoRAConfig{Rank: 8, Alpha: 16, Targets: model.LoRATargets}
	}
	cfg.Recompute = strings.HasSuffix(kind, "recompute")
	if kind == "lora-bf16" {
		cfg.LoRA.BaseDType = "bf16"
	}
	var lastWall time.Time
	var lastCPU float64
	r := &Run{Config: cfg, Dir: b.TempDir(), Model: m, Items: items, Progress: func(mt Metrics, total int64) {
		now, cpu := time.Now(), cpuSeconds()
		if mt.Step > 1 {
			walls, cpus = append(walls, now.Sub(lastWall).Seconds()), append(cpus, cpu-lastCPU)
		}
		lastWall, lastCPU = now, cpu
	}}
	if err := r.Train(context.Background()); err != nil {
		b.Fatal(err)
	}
	return walls, cpus
}

// median of x (sorted in place).
func median(x []float64) float64 {
	slices.Sort(x)
	return x[len(x)/2]
}

// peakRSSMiB is the process's peak resident set (VmHWM).
func peakRSSMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var u syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()).Seconds()
}
