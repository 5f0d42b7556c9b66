package serve

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"

	"fspo/model"
	"fspo/tensor"
)

// Batcher runs the generations of concurrent requests through shared
// forward passes (continuous batching, as in Orca, Yu et al., OSDI 2022):
// at every step each running sequence advances by one token — or by its
// whole prompt when it has just joined — in one model.Forward call, so
// overlapping requests share every matrix multiplication. Each sequence
// keeps its own KV cache and sampler (its own temperature, top-p and seed),
// so its tokens are those model.Generate would give it alone, up to float
// rounding of the batched products.
type Batcher struct {
	m        *model.Model
	maxBatch int
	join     chan *seq
	stopped  chan struct{}
	running  atomic.Int64 // sequences in the batch, for tests and metrics
	// Prefix, when set, lends each prompt the KV cache of the longest prefix
	// it shares with a recent prompt, and keeps each prompt's cache.
	Prefix *PrefixCache
	drawn  []int        // the step's sampled tokens, one per sequence (reused)
	team   *tensor.Team // Run's, when there are threads to share
}

// seq is one generation in the batch.
type seq struct {
	ctx     context.Context
	prompt  []int
	opt     model.GenOptions
	cache   *model.Cache
	sampler *model.Sampler
	logits  []float32 // nil for greedy decoding, which asks for the next token alone
	next    int       // the greedy next token
	limit   int
	last    int
	out     model.Generated
	stop    atomic.Bool // set by the request when its consumer wants no more
	toks    chan int    // new tokens, to the request's goroutine (buffered: never blocks the batch)
	done    chan error  // the result, once
}

// NewBatcher makes a batcher of at most maxBatch sequences per step; Run
// must be running for Generate to make progress.
func NewBatcher(m *model.Model, maxBatch int) *Batcher {
	return &Batcher{m: m, maxBatch: max(1, maxBatch), join: make(chan *seq), stopped: make(chan struct{})}
}

// Run steps the batch until ctx is done; then the waiting and running
// generations fail with ctx's error.
func (b *Batcher) Run(ctx context.Context) {
	defer close(b.stopped)
	if tensor.Threads() > 1 {
		// the steps' products and attention are split with a spinning
		// partner (it parks when the batch is idle)
		b.team = tensor.NewTeam()
		defer b.team.Close()
	}
	var active []*seq
	for {
		if len(active) == 0 {
			select {
			case s := <-b.join:
				active = append(active, s)
			case <-ctx.Done():
				return
			}
		}
		if b.team != nil {
			// Requests made runnable on this thread wait for it to block,
			// which it does not while the batch runs (its partner spins on
			// the other): let them come to the join first.
			runtime.Gosched()
		}
	fill:
		for len(active) < b.maxBatch {
			select {
			case s := <-b.join:
				active = append(active, s)
			default:
				break fill
			}
		}
		if ctx.Err() != nil {
			for _, s := range active {
				s.finish(ctx.Err())
			}
			return
		}
		active = b.step(active)
	}
}

// step advances every sequence by one forward pass and one sampled token,
// and returns the sequences still running.
func (b *Batcher) step(active []*seq) []*seq {
	steps := make([]model.Step, 0, len(active))
	live := active[:0]
	for _, s := range active {
		if err := s.ctx.Err(); err != nil {
			s.finish(err)
			continue
		}
		toks := []int{s.last}
		if n := s.cache.Len(); n < len(s.prompt) { // joining: the prompt, after any prefix lent by b.Prefix
			toks = s.prompt[n:]
		}
		st := model.Step{Cache: s.cache, Tokens: toks, Logits: s.logits}
		if s.logits == nil {
			st.Next = &s.next
		}
		steps = append(steps, st)
		live = append(live, s)
	}
	b.running.Store(int64(len(live)))
	if len(live) == 0 {
		return live
	}
	if err := b.m.ForwardOn(b.team, steps); err != nil {
		for _, s := range live {
			s.finish(fmt.Errorf("generate: %w", err))
		}
		return live[:0]
	}
	// Each sequence samples from its own logits with its own generator, so
	// the rows are drawn in parallel (a softmax over a 128k vocabulary takes
	// about a millisecond) and the tokens are those of a serial draw.
	b.drawn = slices.Grow(b.drawn[:0], len(live))[:len(live)]
	draw := func(k int) {
		if s := live[k]; s.logits != nil {
			b.drawn[k] = s.sampler.Sample(s.logits)
		} else {
			b.drawn[k] = s.next // greedy: the forward pass chose it
		}
	}
	if b.team != nil {
		b.team.For(len(live), func(_, k int) { draw(k) })
	} else {
		for k := range live {
			draw(k)
		}
	}
	next := live[:0]
	for k, s := range live {
		if b.Prefix != nil && len(steps[k].Tokens) > 1 && s.cache.Len() == len(s.prompt) {
			b.Prefix.Store(s.prompt, s.cache, b.m.NewCacheFor)
		}
		tok := b.drawn[k]
		if s.opt.Stops(tok) {
			s.out.FinishReason = "stop"
			s.finish(nil)
			continue
		}
		s.out.Tokens = append(s.out.Tokens, tok)
		s.toks <- tok
		switch {
		case s.stop.Load():
			s.out.FinishReason = "stop"
			s.finish(nil)
		case len(s.out.Tokens) >= s.limit:
			s.out.FinishReason = "length"
			s.finish(nil)
		default:
			s.last = tok
			next = append(next, s)
		}
	}
	return next
}

func (s *seq) finish(err error) {
	s.cache.Release() // its memory goes to the next sequence's cache (once the prefix cache, if it shares it, lets go too)
	close(s.toks)
	s.done <- err
}

var errBatcherStopped = errors.New("generate: the batcher has stopped")

// Generate is model.Generate through the batch: it continues prompt with
// opt, calling emit (on the caller's goroutine) with each new token; emit
// returning false stops the sequence.
func (b *Batcher) Generate(ctx context.Context, prompt []int, opt model.GenOptions, emit func(tok int) bool) (model.Generated, error) {
	if len(prompt) == 0 {
		return model.Generated{}, errors.New("generate: empty prompt (start it with BOS)")
	}
	if len(prompt) >= b.m.Positions() {
		return model.Generated{}, fmt.Errorf("generate: prompt has %d tokens, the model's context is %d", len(prompt), b.m.Positions())
	}
	limit := b.m.Positions() - len(prompt) + 1 // the last token is never fed back
	if opt.MaxTokens > 0 && opt.MaxTokens < limit {
		limit = opt.MaxTokens
	}
	s := &seq{ctx: ctx, prompt: prompt, opt: opt, sampler: model.NewSampler(opt.Temperature, opt.TopP, opt.Seed),
		limit: limit, toks: make(chan int, limit), done: make(chan error, 1)}
	if opt.Temperature != 0 {
		s.logits = make([]float32, b.m.Config.Vocab)
	}
	if b.Prefix != nil {
		s.cache, _ = b.Prefix.Lend(prompt, len(prompt)+limit-1, b.m.NewCacheFor)
	} else {
		s.cache = b.m.NewCacheFor(len(prompt) + limit - 1)
	}
	select {
	case b.join <- s:
	case <-ctx.Done():
		return model.Generated{}, ctx.Err()
	case <-b.stopped:
		return model.Generated{}, errBatcherStopped
	}
	// The batch may run a few tokens ahead of emit; once emit says stop or
	// ctx ends, the rest are dropped, so the result is what model.Generate gives.
	emitted, stoppedByEmit := 0, false
	for tok := range s.toks {
		if s.stop.Load() {
			continue
		}
		if ctx.Err() != nil {
			s.stop.Store(true)
			continue
		}
		emitted++
		if emit != nil && !emit(tok) {
			s.stop.Store(true)
			stoppedByEmit = true
		}
	}
	err := <-s.done
	switch {
	case stoppedByEmit:
		s.out.Tokens, s.out.FinishReason = s.out.Tokens[:emitted], "stop"
		return s.out, nil
	case err != nil:
		return s.out, err
	case ctx.Err() != nil:
		return s.out, ctx.Err()
	}
	return s.out, nil
}

// Running is the number of sequences in the last step.
func (b *Batcher) Running() int { return int(b.running.Load()) }
