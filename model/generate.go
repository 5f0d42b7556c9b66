package model

import (
	"context"
	"fmt"
	"slices"

	"fspo/tensor"
)

// Special token ids of the llama2.c tokenizers.
const (
	BOS = 1
	EOS = 2
)

// GenOptions controls generation.
type GenOptions struct {
	MaxTokens   int     // new tokens at most (0: until the context is full)
	Temperature float32 // 0: greedy
	TopP        float32
	Seed        uint64 // sequence i of a batch uses Seed+i
	// StopAtBOS also ends a sequence at BOS, as llama2.c's run does (its
	// stories separate documents with BOS).
	StopAtBOS bool
	// Stop, when not nil, lists the token ids that end a sequence instead
	// of EOS (and BOS): a chat model's end-of-turn tokens, or the EOS id of
	// a tokenizer other than llama2.c's.
	Stop []int
}

// Stops reports whether tok ends a sequence.
func (o *GenOptions) Stops(tok int) bool {
	if o.Stop != nil {
		return slices.Contains(o.Stop, tok)
	}
	return tok == EOS || (o.StopAtBOS && tok == BOS)
}

// Generated is one sequence's output.
type Generated struct {
	Tokens       []int  // new tokens, without the stop token
	FinishReason string // "stop" (a stop token) or "length"
}

// Generate continues prompt (token ids, normally starting with BOS). emit,
// when not nil, sees each new token as it is chosen and may return false to
// stop early.
func (m *Model) Generate(ctx context.Context, prompt []int, opt GenOptions, emit func(tok int) bool) (Generated, error) {
	var e func(int, int) bool
	if emit != nil {
		e = func(_, tok int) bool { return emit(tok) }
	}
	out, err := m.GenerateBatch(ctx, [][]int{prompt}, opt, e)
	if err != nil {
		return Generated{}, err
	}
	return out[0], nil
}

// GenerateBatch continues several prompts at once: each step runs every
// unfinished sequence's next token through one batched forward pass.
// emit(i, tok) sees sequence i's tokens as they come. A prompt equal to the
// one before it (several samples of one prompt) is computed once. Greedy
// decoding (temperature 0) asks each step for the next token alone
// (Step.Next), which spares reading the whole of a large classifier.
func (m *Model) GenerateBatch(ctx context.Context, prompts [][]int, opt GenOptions, emit func(i, tok int) bool) ([]Generated, error) {
	n := len(prompts)
	out := make([]Generated, n)
	caches := make([]*Cache, n)
	samplers := make([]*Sampler, n)
	logits, next := make([][]float32, n), make([]int, n) // a step's logits, or its greedy token
	limit, err := m.genLimits(prompts, opt.MaxTokens)
	if err != nil {
		return nil, err
	}
	greedy := opt.Temperature == 0
	steps := make([]Step, 0, n)
	same := make([]int, n) // the first of a run of identical prompts
	for i, p := range prompts {
		samplers[i] = NewSampler(opt.Temperature, opt.TopP, opt.Seed+uint64(i))
		if !greedy {
			logits[i] = make([]float32, m.Config.Vocab)
		}
		caches[i] = m.NewCacheFor(len(p) + limit[i] - 1)
		if i > 0 && slices.Equal(p, prompts[i-1]) {
			same[i] = same[i-1] // prefilled once, for the first of the run
			continue
		}
		same[i] = i
		steps = append(steps, genStep(caches[i], p, logits[i], &next[i]))
	}
	defer func() {
		for _, c := range caches {
			c.Release()
		}
	}()
	if n == 1 && tensor.Threads() > 1 {
		// one sequence: its attention heads are split with a spinning partner
		caches[0].team = tensor.NewTeam()
		defer caches[0].team.Close()
	}
	active := make([]int, n)
	for i := range active {
		active[i] = i
	}
	for len(active) > 0 {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if err := m.Forward(steps); err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		if same != nil { // the prompts' own step
			copyRepeats(prompts, same, caches, logits, next)
			same = nil
		}
		still := active[:0]
		steps = steps[:0]
		for _, i := range active {
			tok := next[i]
			if !greedy {
				tok = samplers[i].Sample(logits[i])
			}
			if opt.Stops(tok) {
				out[i].FinishReason = "stop"
				continue
			}
			out[i].Tokens = append(out[i].Tokens, tok)
			if emit != nil && !emit(i, tok) {
				out[i].FinishReason = "stop"
				continue
			}
			if len(out[i].Tokens) >= limit[i] {
				out[i].FinishReason = "length"
				continue
			}
			still = append(still, i)
			steps = append(steps, genStep(caches[i], []int{tok}, logits[i], &next[i]))
		}
		active = still
	}
	return out, nil
}

// genLimits checks the prompts and gives each one's most new tokens.
func (m *Model) genLimits(prompts [][]int, maxTokens int) ([]int, error) {
	limit := make([]int, len(prompts))
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("generate: prompt %d is empty (start it with BOS)", i)
		}
		if len(p) >= m.Positions() {
			return nil, fmt.Errorf("generate: prompt %d has %d tokens, the model's context is %d", i, len(p), m.Positions())
		}
		limit[i] = m.Positions() - len(p) + 1 // the last token is never fed back
		if maxTokens > 0 && maxTokens < limit[i] {
			limit[i] = maxTokens
		}
	}
	return limit, nil
}

// genStep is a generation step of toks: its logits wanted in logits, or
// (nil logits: greedy) its next token in next.
func genStep(c *Cache, toks []int, logits []float32, next *int) Step {
	if logits == nil {
		return Step{Cache: c, Tokens: toks, Next: next}
	}
	return Step{Cache: c, Tokens: toks, Logits: logits}
}

// copyRepeats gives each prompt i that repeats an earlier one (same[i] its
// first, computed) that prompt's keys, values and logits or greedy token,
// which depend on the tokens alone.
func copyRepeats(prompts [][]int, same []int, caches []*Cache, logits [][]float32, next []int) {
	for i, f := range same {
		if f != i {
			caches[i].CopyPrefix(caches[f], len(prompts[i]))
			copy(logits[i], logits[f])
			next[i] = next[f]
		}
	}
}
