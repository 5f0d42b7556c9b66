package hf_test

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"fspo/atomicfile"
	"fspo/hf"
	"fspo/model"
	"fspo/safetensors"
	"fspo/tensor"
)

// BenchmarkLoadBF16 writes a random BF16 folder shaped like Llama-3.2-1B
// (2048 wide, 16 layers, 32 heads, 8 key/value heads, 8192 feed-forward,
// 128,256-token vocabulary, tied embedding: 1.24 billion weights, 2.5 GB;
// streamed, so writing costs little memory) and loads it — as F32 (Load),
// or straight into BF16 or Q8_0 (LoadAs) — reporting the load time and the
// resident memory after it (VmRSS, and the peak VmHWM, which includes the
// writer's small share). Run each in its own process for its peak:
//
//	GOEXPERIMENT=simd go test ./hf -run '^$' -bench 'LoadBF16/f32$' -benchtime 1x
//	GOEXPERIMENT=simd go test ./hf -run '^$' -bench 'LoadBF16/bf16$' -benchtime 1x
//	GOEXPERIMENT=simd go test ./hf -run '^$' -bench 'LoadBF16/q8_0$' -benchtime 1x
//
// FSPO_BENCH_DIR chooses where the folder goes (default: a temporary folder).
func BenchmarkLoadBF16(b *testing.B) {
	dir := os.Getenv("FSPO_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	dir = filepath.Join(dir, "llama-1b-bf16")
	if _, err := os.Stat(filepath.Join(dir, hf.WeightsFile)); err != nil {
		if err := writeRandom1B(dir); err != nil {
			b.Fatal(err)
		}
	}
	for _, dt := range []tensor.DType{tensor.F32, tensor.BF16, tensor.Q8_0} {
		b.Run(dt.String(), func(b *testing.B) {
			runtime.GC()
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				m, _, err := hf.LoadAs(dir, dt)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(start).Seconds(), "load-s")
				b.ReportMetric(statusMiB("VmRSS"), "rss-MiB")
				b.ReportMetric(statusMiB("VmHWM"), "peak-rss-MiB")
				b.ReportMetric(float64(m.WeightBytes())/(1<<20), "weights-MiB")
				runtime.KeepAlive(m)
			}
		})
	}
}

// statusMiB reads a kB field of /proc/self/status in MiB.
func statusMiB(field string) float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func writeRandom1B(dir string) error {
	c := model.Config{Arch: "llama", Dim: 2048, Hidden: 8192, Layers: 16, Heads: 32, KVHeads: 8, Vocab: 128256,
		SeqLen: 131072, NormEps: 1e-5, RopeTheta: 500000, SharedClassifier: true,
		RopeScaling: &model.RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg, err := hf.ConfigJSON(c, safetensors.BF16)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, hf.ConfigFile), cfg); err != nil {
		return err
	}
	shapes := hf.Shapes(c)
	slices.SortFunc(shapes, func(a, b hf.Shape) int { return strings.Compare(a.Name, b.Name) }) // as hf.Save orders them
	var ts []safetensors.Tensor
	for i, s := range shapes {
		seed := uint64(i + 1)
		ts = append(ts, safetensors.Tensor{Name: s.Name, DType: safetensors.BF16, Shape: s.Shape, Fill: func(off int, dst []float32) {
			x := seed*0x9e3779b97f4a7c15 + uint64(off)
			for j := range dst { // xorshift: uniform in (-0.05, 0.05)
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				dst[j] = float32(math.Float64frombits(0x3ff0000000000000|x>>12)-1.5) / 10
			}
		}})
	}
	return safetensors.Write(filepath.Join(dir, hf.WeightsFile), map[string]string{"format": "pt"}, ts)
}
