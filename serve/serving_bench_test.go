package serve_test

import (
	"context"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"fspo/model"
	"fspo/serve"
	"fspo/tensor"
)

// BenchmarkServing180M measures, on a random model of SmolLM2-135M's layer
// shapes with Llama-3.1's vocabulary (~180M parameters; weights in
// $FSPO_BENCH_DTYPE, default f32; keys and values cached in $FSPO_BENCH_KV,
// default f32), what a personalized server pays:
//   - time to first token of a user's first question (a 4-shot context of
//     360 tokens and a 24-token question) and of their second question after
//     the same context, through the batcher with the prefix cache;
//   - throughput of 16 users answered at once (64 new tokens each, every
//     prompt its own) against a single stream, cold (whole prompts), with
//     each user's context already cached (seen once, in a one-token answer:
//     copied from the entry into fresh memory), and for the users' next
//     questions after those answers (each entry's memory handed over to the
//     user's next sequence: "-next"; a lone user and the 16 alternating
//     three times, medians).
//
// go test ./serve -run '^$' -bench Serving180M -benchtime 1x
func BenchmarkServing180M(b *testing.B) {
	c := model.Config{Dim: 576, Hidden: 1536, Layers: 30, Heads: 9, KVHeads: 3, Vocab: 128256, SeqLen: 1024, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 1e5}
	m := randomModel(b, c)
	if d := os.Getenv("FSPO_BENCH_DTYPE"); d != "" && d != "f32" {
		dt, err := tensor.ParseDType(d)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.SetDType(dt); err != nil {
			b.Fatal(err)
		}
	}
	kvCacheFromEnv(b, m)
	rng := rand.New(rand.NewPCG(1, 2))
	tokens := func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = 1 + rng.IntN(c.Vocab-1)
		}
		return out
	}
	contexts := make([][]int, 16)
	for i := range contexts {
		contexts[i] = tokens(360)
	}
	prompt := func(u int) []int { return append(append([]int(nil), contexts[u]...), tokens(24)...) }
	for b.Loop() {
		bt, stop := startServingBatcher(m, true)
		var first, second []float64
		for u := range 3 {
			first = append(first, timeToFirstToken(b, bt, prompt(u)))
			second = append(second, timeToFirstToken(b, bt, prompt(u)))
		}
		b.ReportMetric(median(first)*1e3, "ms-ttft-first")
		b.ReportMetric(median(second)*1e3, "ms-ttft-second")
		b.ReportMetric(median(second)/median(first), "ttft-ratio")
		stop()
		cold, stopCold := startServingBatcher(m, false)
		one, sixteen := answerTogether(b, cold, prompt, 1), answerTogether(b, cold, prompt, 16)
		stopCold()
		b.ReportMetric(one, "tok/s-1-stream")
		b.ReportMetric(sixteen, "tok/s-16-users")
		b.ReportMetric(sixteen/one, "x-16-vs-1")
		warm, stopWarm := startServingBatcher(m, true)
		for u := range 16 { // each user's context seen once
			timeToFirstToken(b, warm, prompt(u))
		}
		oneW, sixteenW := answerTogether(b, warm, prompt, 1), answerTogether(b, warm, prompt, 16)
		// next questions: a lone user and 16 users alternating, three times
		// each (a lone stream's 64 tokens last about a second: one run of
		// it is at the mercy of the machine's other work)
		var oneN, sixteenN []float64
		for range 3 {
			before := warm.Prefix.Stats().Handovers
			oneN = append(oneN, answerTogether(b, warm, prompt, 1))
			sixteenN = append(sixteenN, answerTogether(b, warm, prompt, 16))
			if handovers := warm.Prefix.Stats().Handovers - before; handovers != 17 {
				b.Fatalf("%d of the 17 next questions took over their entry's memory", handovers)
			}
		}
		stopWarm()
		b.ReportMetric(sixteenW/oneW, "x-16-vs-1-cached")
		b.ReportMetric(sixteenW, "tok/s-16-users-cached")
		b.ReportMetric(median(sixteenN)/median(oneN), "x-16-vs-1-cached-next")
		b.ReportMetric(median(oneN), "tok/s-1-stream-cached-next")
		b.ReportMetric(median(sixteenN), "tok/s-16-users-cached-next")
	}
}

// kvCacheFromEnv stores m's caches as $FSPO_BENCH_KV says (f32, the
// default, or f16).
func kvCacheFromEnv(tb testing.TB, m *model.Model) {
	d := os.Getenv("FSPO_BENCH_KV")
	if d == "" {
		return
	}
	dt, err := tensor.ParseDType(d)
	if err == nil {
		err = m.SetKVCache(dt)
	}
	if err != nil {
		tb.Fatalf("FSPO_BENCH_KV: %v", err)
	}
}

// startServingBatcher runs a batcher of 16 rows on m, with a prefix cache
// of 1 GiB when prefix; the function returned stops it.
func startServingBatcher(m *model.Model, prefix bool) (*serve.Batcher, func()) {
	bt := serve.NewBatcher(m, 16)
	if prefix {
		bt.Prefix = serve.NewPrefixCache(1 << 30)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go bt.Run(ctx)
	return bt, cancel
}

// timeToFirstToken is the seconds bt takes to answer p with one token.
func timeToFirstToken(tb testing.TB, bt *serve.Batcher, p []int) float64 {
	tb.Helper()
	t0 := time.Now()
	if _, err := bt.Generate(context.Background(), p, model.GenOptions{MaxTokens: 1}, nil); err != nil {
		tb.Fatal(err)
	}
	return time.Since(t0).Seconds()
}

// answerTogether is the tokens per second of bt answering users 0..users-1
// (the prompt of each from prompt) at once, 64 new tokens each.
func answerTogether(tb testing.TB, bt *serve.Batcher, prompt func(u int) []int, users int) float64 {
	tb.Helper()
	t0 := time.Now()
	var wg sync.WaitGroup
	for u := range users {
		p := prompt(u)
		wg.Go(func() {
			if _, err := bt.Generate(context.Background(), p, model.GenOptions{MaxTokens: 64, Temperature: 1, Seed: uint64(u), StopAtBOS: false}, nil); err != nil {
				tb.Error(err)
			}
		})
	}
	wg.Wait()
	return float64(64*users) / time.Since(t0).Seconds()
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// randomModel is a model of shape c with N(0, 0.02) weights and unit norms.
func randomModel(tb testing.TB, c model.Config) *model.Model {
	p := model.NewParams(c)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, t := range p.Tensors(c) {
		norm := len(t.Shape) == 1
		for i := range t.Data {
			if norm {
				t.Data[i] = 1
			} else {
				t.Data[i] = float32(rng.NormFloat64() * 0.02)
			}
		}
	}
	m, err := model.New(c, p)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// BenchmarkDecodeStep180M times what a batcher's decoding step of 16 users
// costs on BenchmarkServing180M's model without the batcher around it: 16
// sequences whose caches hold 384 prompt positions each take one token per
// step, split over a team as the batcher splits them (weight products,
// attention over each cache, key/value stores, logits; no sampling). The
// metric is the median step of 48 (the caches grow to 432 positions).
//
// go test ./serve -run '^$' -bench DecodeStep180M -benchtime 1x
func BenchmarkDecodeStep180M(b *testing.B) {
	c := model.Config{Dim: 576, Hidden: 1536, Layers: 30, Heads: 9, KVHeads: 3, Vocab: 128256, SeqLen: 1024, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 1e5}
	m := randomModel(b, c)
	kvCacheFromEnv(b, m)
	rng := rand.New(rand.NewPCG(5, 6))
	team := tensor.NewTeam()
	defer team.Close()
	for b.Loop() {
		steps := make([]model.Step, 16)
		for i := range steps {
			prompt := make([]int, 384)
			for j := range prompt {
				prompt[j] = 1 + rng.IntN(c.Vocab-1)
			}
			steps[i] = model.Step{Cache: m.NewCacheFor(384 + 64 - 1), Tokens: prompt}
			if err := m.Forward(steps[i : i+1]); err != nil {
				b.Fatal(err)
			}
		}
		logits := make([]float32, 16*c.Vocab)
		var times []float64
		for range 48 {
			for i := range steps {
				steps[i].Tokens, steps[i].Logits = []int{1 + rng.IntN(c.Vocab-1)}, logits[i*c.Vocab:(i+1)*c.Vocab]
			}
			t0 := time.Now()
			if err := m.ForwardOn(team, steps); err != nil {
				b.Fatal(err)
			}
			times = append(times, time.Since(t0).Seconds())
		}
		for _, s := range steps {
			s.Cache.Release()
		}
		b.ReportMetric(median(times)*1e3, "ms/step")
	}
}
