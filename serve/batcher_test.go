package serve_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"fspo/episode"
	"fspo/model"
	"fspo/serve"
)

func startBatcher(t testing.TB, m *model.Model, max int) *serve.Batcher {
	b := serve.NewBatcher(m, max)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return b
}

// TestBatcherMatchesGenerate: concurrent generations through the batch
// (different prompts, temperatures, seeds, lengths) give the tokens that
// model.Generate gives each alone, and the batch really holds several.
func TestBatcherMatchesGenerate(t *testing.T) {
	e, _ := storiesEngine(t, episode.Plain)
	m, tok := e.Model, e.Codec.Tok
	b := startBatcher(t, m, 8)
	type job struct {
		prompt []int
		opt    model.GenOptions
	}
	var jobs []job
	for i := range 12 {
		p := tok.Encode(fmt.Sprintf("Once upon a time, there was a %s", []string{"cat", "dog", "girl", "big tree"}[i%4]), true)
		jobs = append(jobs, job{p, model.GenOptions{MaxTokens: 20 + 7*i, Temperature: float32(i%3) * 0.5, TopP: 0.9, Seed: uint64(100 + i), StopAtBOS: true}})
	}
	want := make([]model.Generated, len(jobs))
	for i, j := range jobs {
		g, err := m.Generate(context.Background(), j.prompt, j.opt, nil)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = g
	}
	got := make([]model.Generated, len(jobs))
	emitted := make([][]int, len(jobs))
	var most atomic.Int64
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			g, err := b.Generate(context.Background(), j.prompt, j.opt, func(tk int) bool {
				emitted[i] = append(emitted[i], tk)
				if n := int64(b.Running()); n > most.Load() {
					most.Store(n)
				}
				return true
			})
			if err != nil {
				t.Errorf("job %d: %v", i, err)
			}
			got[i] = g
		})
	}
	wg.Wait()
	for i := range jobs {
		if !slices.Equal(got[i].Tokens, want[i].Tokens) || got[i].FinishReason != want[i].FinishReason {
			t.Errorf("job %d: batched %v (%s), alone %v (%s)", i, got[i].Tokens, got[i].FinishReason, want[i].Tokens, want[i].FinishReason)
		}
		if !slices.Equal(emitted[i], got[i].Tokens) {
			t.Errorf("job %d: emitted %v, returned %v", i, emitted[i], got[i].Tokens)
		}
	}
	if most.Load() < 2 {
		t.Errorf("at most %d sequences ran in one step; the requests were not batched", most.Load())
	}
	t.Logf("largest batch seen: %d sequences", most.Load())
}

func TestBatcherCancelAndStop(t *testing.T) {
	e, _ := storiesEngine(t, episode.Plain)
	m, tok := e.Model, e.Codec.Tok
	b := serve.NewBatcher(m, 4)
	runCtx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { b.Run(runCtx); close(stopped) }()
	p := tok.Encode("Once upon a time", true)

	// A cancelled request ends early; a concurrent one is unaffected.
	ctx, cancel := context.WithCancel(context.Background())
	var n int
	var wg sync.WaitGroup
	var other model.Generated
	wg.Go(func() {
		other, _ = b.Generate(context.Background(), p, model.GenOptions{MaxTokens: 60, Temperature: 0}, nil)
	})
	_, err := b.Generate(ctx, p, model.GenOptions{MaxTokens: 400, Temperature: 1, Seed: 1}, func(int) bool {
		if n++; n == 5 {
			cancel()
		}
		return true
	})
	wg.Wait()
	if !errors.Is(err, context.Canceled) || n != 5 {
		t.Errorf("cancelled generation: %v after %d tokens, want context.Canceled after 5", err, n)
	}
	if len(other.Tokens) != 60 {
		t.Errorf("the other generation got %d tokens, want 60", len(other.Tokens))
	}
	// emit returning false stops the sequence.
	g, err := b.Generate(context.Background(), p, model.GenOptions{MaxTokens: 100}, func(int) bool { return false })
	if err != nil || g.FinishReason != "stop" || len(g.Tokens) != 1 {
		t.Errorf("stopped by emit: %d tokens, %q, %v", len(g.Tokens), g.FinishReason, err)
	}

	stop()
	<-stopped
	if _, err := b.Generate(context.Background(), p, model.GenOptions{MaxTokens: 5}, nil); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("Generate after Run ended: %v, want a stopped error", err)
	}
}

// BenchmarkConcurrentGeneration: 16 concurrent 64-token generations, each
// on its own (model.Generate in parallel) or through the batch.
func BenchmarkConcurrentGeneration(b *testing.B) {
	e, _ := storiesEngine(b, episode.Plain)
	p := e.Codec.Tok.Encode("Once upon a time, there was a cat", true)
	run := func(b *testing.B, gen func(context.Context, []int, model.GenOptions, func(int) bool) (model.Generated, error)) {
		for range b.N {
			var wg sync.WaitGroup
			for i := range 16 {
				wg.Go(func() {
					if _, err := gen(context.Background(), p, model.GenOptions{MaxTokens: 64, Temperature: 1, Seed: uint64(i)}, nil); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		b.ReportMetric(float64(16*64*b.N)/b.Elapsed().Seconds(), "tok/s")
	}
	b.Run("alone", func(b *testing.B) { run(b, e.Model.Generate) })
	b.Run("batched", func(b *testing.B) {
		bt := startBatcher(b, e.Model, 32)
		run(b, bt.Generate)
	})
}
