package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"time"

	"fspo/model"
	"fspo/optim"
	"fspo/tensor"
)

func init() {
	register(&command{name: "bench", summary: "measure generation and training speed and matmul GFLOP/s (medians)", run: runBench})
}

// benchResult is what --json prints; keys of the maps are thread counts.
type benchResult struct {
	Decode  map[string]float64 `json:"decode_tokens_per_s"`
	Prefill map[string]float64 `json:"prefill_tokens_per_s"`
	Train   map[string]float64 `json:"train_tokens_per_s,omitempty"`
	// TrainGF is training's rate in GFLOP/s (trainFlops a token); GemmGF the
	// machine's sgemm peak measured beside it (sgemmPeak); PeakShare the
	// median over runs of each run's TrainGF / GemmGF.
	TrainGF   map[string]float64 `json:"train_gflops,omitempty"`
	GemmGF    map[string]float64 `json:"gemm_gflops,omitempty"`
	PeakShare map[string]float64 `json:"train_of_sgemm_peak,omitempty"`
	// ShareRuns are the runs' ratios behind PeakShare, in order.
	ShareRuns map[string][]float64 `json:"train_of_sgemm_peak_runs,omitempty"`
	DType     string               `json:"dtype"`
	Config    map[string]any       `json:"config"`
}

func runBench(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench", "[--model M] [--dtype auto|f32|f16|bf16|q8_0] [--threads 1,2] [--repeats N] [--json]")
	modelFlag := fs.String("model", "", "checkpoint file, model folder or name (any model fspo loads)")
	dtype := fs.String("dtype", "auto", dtypeHelp+" (decoding and prefill; training always runs F32)")
	threadList := fs.String("threads", "1,2", "comma-separated thread counts to measure")
	repeats := fs.Int("repeats", 5, "runs per measurement; the median is reported")
	positions := fs.Int("positions", 512, "decoding: positions per run (batch 1, greedy, from BOS)")
	prefill := fs.Int("prefill", 512, "prefill: prompt tokens per run (random tokens, one forward pass; 0: skip)")
	train := fs.Bool("train", true, "also time training steps (F32, forward+backward+AdamW) and the matmul")
	batch := fs.Int("batch", 8, "training: sequences per step")
	seqLen := fs.Int("seq", 256, "training: tokens per sequence")
	steps := fs.Int("steps", 5, "training: steps per run")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	threads, err := parseThreads(*threadList)
	if err != nil {
		return err
	}
	lm, err := loadLM(env, *modelFlag)
	if err != nil {
		return err
	}
	var f32 *model.Model // training keeps F32 weights
	if *train {
		f32 = lm.Model.Clone()
	}
	if err := lm.useDType(env, *dtype); err != nil {
		return err
	}
	m := lm.Model
	bos := model.BOS
	if ids := lm.Tok.Encode("", true); len(ids) > 0 {
		bos = ids[0]
	}
	defer tensor.SetThreads(0)
	res := benchResult{Decode: map[string]float64{}, Prefill: map[string]float64{}, DType: m.DType().String(),
		Config: map[string]any{"model": lm.Paths.Checkpoint, "params": m.Config.NumParams(), "weight_bytes": m.WeightBytes(), "positions": *positions, "prefill": *prefill,
			"batch": *batch, "seq": *seqLen, "steps_per_run": *steps, "repeats": *repeats, "simd": tensor.SIMDLevel()}}
	if *train {
		res.Train, res.TrainGF, res.GemmGF, res.PeakShare = map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
		res.ShareRuns = map[string][]float64{}
	}
	cfg := m.Config
	rng := rand.New(rand.NewPCG(1, 2))
	prompt := make([]int, min(*prefill, m.Positions()))
	for i := range prompt {
		prompt[i] = rng.IntN(cfg.Vocab)
	}
	for _, th := range threads {
		tensor.SetThreads(th)
		key := strconv.Itoa(th)
		if res.Decode[key], res.Prefill[key], err = benchInference(ctx, m, bos, prompt, *positions, *repeats); err != nil {
			return err
		}
		if !*train {
			continue
		}
		if err := res.timeTraining(ctx, f32, key, th, *repeats, *batch, *seqLen, *steps); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(res)
	}
	fmt.Fprintf(env.Stdout, "fspo bench (%s, %s weights, %.0f MB; medians of %d runs, kernels: %s)\n", lm.Paths.Checkpoint, res.DType, float64(m.WeightBytes())/1e6, *repeats, tensor.SIMDLevel())
	res.printTable(env.Stdout, threads, len(prompt), *batch, *seqLen)
	return nil
}

// benchInference returns the median tokens per second of greedy decoding
// from BOS over positions, and of prefilling prompt in one forward pass (0
// for an empty prompt). The classifier's screen for greedy steps is built
// before the clock starts.
func benchInference(ctx context.Context, m *model.Model, bos int, prompt []int, positions, repeats int) (decode, prefill float64, err error) {
	m.PrepareClassifierScreen()
	decode, err = median(repeats, func() (float64, error) {
		start := time.Now()
		out, err := m.Generate(ctx, []int{bos}, model.GenOptions{MaxTokens: positions - 1}, nil)
		return float64(len(out.Tokens)) / time.Since(start).Seconds(), err
	})
	if err != nil || len(prompt) == 0 {
		return decode, 0, err
	}
	prefill, err = median(repeats, func() (float64, error) {
		cache, logits := m.NewCacheFor(len(prompt)), make([]float32, m.Config.Vocab)
		start := time.Now()
		err := m.Forward([]model.Step{{Cache: cache, Tokens: prompt, Logits: logits}})
		secs := time.Since(start).Seconds()
		cache.Release()
		return float64(len(prompt)) / secs, err
	})
	return decode, prefill, err
}

// parseThreads reads --threads: comma-separated positive counts.
func parseThreads(list string) ([]int, error) {
	var threads []int
	for _, s := range splitComma(list) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: fspo bench: --threads %q: want positive integers like 1,2", errUsage, list)
		}
		threads = append(threads, n)
	}
	return threads, nil
}

// printTable writes the results, a row per thread count.
func (res benchResult) printTable(w io.Writer, threads []int, prefill, batch, seqLen int) {
	fmt.Fprintf(w, "%-8s %20s %22s %22s %14s %18s %12s\n", "threads", "decode tok/s (b=1)", fmt.Sprintf("prefill tok/s (%d)", prefill), fmt.Sprintf("train tok/s (%dx%d)", batch, seqLen), "train GFLOP/s", "sgemm peak GFLOP/s", "of the peak")
	for _, th := range threads {
		k := strconv.Itoa(th)
		fmt.Fprintf(w, "%-8d %20.1f %22.1f %22.1f %14.1f %18.1f %11.0f%%\n", th, res.Decode[k], res.Prefill[k], res.Train[k], res.TrainGF[k], res.GemmGF[k], 100*res.PeakShare[k])
	}
}

// timeTraining measures, repeats times in turn, training steps (benchTrain)
// and the machine's sgemm peak right after them (sgemmPeak), and keeps for
// the thread count key the medians of the rates and of each run's ratio of
// training GFLOP/s to that run's peak: side by side, as the machine's speed
// drifts between runs.
func (res *benchResult) timeTraining(ctx context.Context, m *model.Model, key string, threads, repeats, batch, seq, steps int) error {
	flops := trainFlops(m.Config, seq) / 1e9
	var rate, gf, peak, share []float64
	for range max(repeats, 1) {
		r, err := benchTrain(ctx, m, batch, seq, steps)
		if err != nil {
			return err
		}
		p := sgemmPeak(m.Config, batch*seq, threads)
		rate, gf, peak, share = append(rate, r), append(gf, r*flops), append(peak, p), append(share, r*flops/p)
	}
	res.Train[key], res.TrainGF[key], res.GemmGF[key], res.PeakShare[key] = medianOf(rate), medianOf(gf), medianOf(peak), medianOf(share)
	res.ShareRuns[key] = share
	return nil
}

// sgemmPeak is the machine's F32 matmul rate in GFLOP/s on threads threads:
// the better of a training step's largest product (the MLP up-projection
// x·W1ᵀ, rows × Hidden × Dim) and a square 1024 product, 300 ms each.
func sgemmPeak(c model.Config, rows, threads int) float64 {
	up := tensor.MeasureGemm(false, true, rows, c.Hidden, c.Dim, threads, 300*time.Millisecond)
	return max(up, tensor.MeasureGemm(false, false, 1024, 1024, 1024, threads, 300*time.Millisecond))
}

// trainFlops is the floating-point operations of a training step per token
// of sequences of seq tokens: forward, backward and the weights' gradients
// of every matrix product, 6 per weight (Kaplan et al. 2020, "Scaling Laws
// for Neural Language Models", §2.1), the classifier included (the
// embedding lookup is none), and attention's scores and weighted values:
// 12·QDim a layer for each position a token sees, (seq+1)/2 on average.
// Norms, activations and the optimizer are left out, so the rate is not
// overstated.
func trainFlops(c model.Config, seq int) float64 {
	q, kv := c.QDim(), c.KVDim()
	layer := c.Dim*(q+2*kv) + q*c.Dim + 3*c.Dim*c.Hidden
	weights := c.Layers*layer + c.Vocab*c.Dim
	attn := float64(c.Layers) * 6 * float64(q) * float64(seq+1)
	return 6*float64(weights) + attn
}

// benchTrain times steps of forward + backward + AdamW on random tokens and
// returns tokens per second. The model's weights are restored afterwards.
func benchTrain(ctx context.Context, m *model.Model, batch, seq, steps int) (float64, error) {
	work := m.Clone()
	cfg := work.Config
	rng := rand.New(rand.NewPCG(1, 2))
	exs := make([]model.Example, batch)
	for i := range exs {
		toks := make([]int, seq+1)
		toks[0] = model.BOS
		for j := 1; j <= seq; j++ {
			toks[j] = 3 + rng.IntN(cfg.Vocab-3)
		}
		exs[i] = model.Example{Prompt: toks[:1], Completions: [][]int{toks[1:]}}
	}
	grads := model.NewParams(cfg)
	opt := optim.NewAdamW()
	params, gts := work.W.Tensors(cfg), grads.Tensors(cfg)
	var pass *model.Pass
	var err error
	step := func() error {
		if pass, err = work.Score(exs, pass); err != nil {
			return err
		}
		for i := range exs {
			pass.SetGrad(i, 0, -1/float32(batch*seq))
		}
		grads.Zero(cfg)
		pass.Backward(grads)
		opt.Step(params, gts, 1e-4)
		return nil
	}
	if err := step(); err != nil { // warm-up: allocations
		return 0, err
	}
	start := time.Now()
	for s := 0; s < steps; s++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := step(); err != nil {
			return 0, err
		}
	}
	return float64(steps*batch*seq) / time.Since(start).Seconds(), nil
}

// medianOf is the median of xs (the upper one of an even count).
func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	return s[len(s)/2]
}

func median(n int, f func() (float64, error)) (float64, error) {
	xs := make([]float64, 0, n)
	for i := 0; i < max(n, 1); i++ {
		x, err := f()
		if err != nil {
			return 0, err
		}
		xs = append(xs, x)
	}
	return medianOf(xs), nil
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
