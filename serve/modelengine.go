package serve

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"

	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/model"
)

// ModelEngine is the Engine of a loaded checkpoint: it renders the user's
// shots and the question with the episode templates (the text the model was
// trained on, via fewshot.Codec), forces the completion header and samples.
// Concurrent requests generate in parallel, each with its own KV cache.
type ModelEngine struct {
	Label string
	Model *model.Model
	// Codec holds the tokenizer, the trained variant (plain, cot,
	// preferred-only) and the layout.
	Codec fewshot.Codec
	// RawBase makes the non-personalized answer a plain continuation of the
	// question text (the base stories model's natural use) instead of the
	// zero-shot template.
	RawBase bool
	// PairTemperatures are the two sampling temperatures of Pair (default
	// 0.7 and 1.2): different temperatures make the answers differ in style.
	PairTemperatures [2]float32
	// Batcher, when set (and running), batches the generations of
	// concurrent requests; otherwise each request generates on its own.
	Batcher *Batcher
	// Ref, when set, is the reference model of a preference-trained Model
	// (its run card's initial model) and Beta the objective's β: with them
	// the engine ranks answers by the user's implicit reward (Rewards).
	Ref  *model.Model
	Beta float64
	// Loss is the objective that trained Model (ipo, dpo, cdpo).
	Loss string
}

func (e *ModelEngine) generate(ctx context.Context, prompt []int, opt model.GenOptions, emit func(int) bool) (model.Generated, error) {
	if e.Batcher != nil {
		return e.Batcher.Generate(ctx, prompt, opt, emit)
	}
	return e.Model.Generate(ctx, prompt, opt, emit)
}

var _ Engine = (*ModelEngine)(nil)

// Name implements Engine.
func (e *ModelEngine) Name() string { return e.Label }

func toRecords(shots []Shot) []dataset.Record {
	recs := make([]dataset.Record, len(shots))
	for i, s := range shots {
		recs[i] = dataset.Record{Prompt: s.Prompt, Chosen: s.Chosen, Rejected: s.Rejected}
	}
	return recs
}

// codecFor is the codec of a request: the trained variant, or zero-shot.
func (e *ModelEngine) codecFor(personalize bool) fewshot.Codec {
	c := e.Codec
	if !personalize {
		c.Variant = episode.ZeroShot
	}
	return c
}

// prompt builds the token prompt, dropping the oldest shots while the prompt
// and reserve tokens do not fit the context. It returns the shots kept.
func (e *ModelEngine) prompt(c fewshot.Codec, shots []Shot, question string, raw bool, reserve int) ([]int, int, error) {
	if raw {
		p := c.Tok.Encode(question, true)
		if len(p)+reserve > e.Model.Positions() {
			return nil, 0, fmt.Errorf("%w: the question has %d tokens; with %d to generate that exceeds the model's %d positions", ErrInvalid, len(p), reserve, e.Model.Positions())
		}
		return p, 0, nil
	}
	for drop := 0; drop <= len(shots); drop++ {
		kept := shots[drop:]
		p, err := c.Prompt(toRecords(kept), question, "")
		if err != nil {
			return nil, 0, fmt.Errorf("engine %s: %w", e.Label, err)
		}
		p = append(p, c.Header()...)
		if len(p)+reserve <= e.Model.Positions() {
			return p, len(kept), nil
		}
	}
	return nil, 0, fmt.Errorf("%w: the question does not fit the model's %d positions with %d tokens to generate", ErrInvalid, e.Model.Positions(), reserve)
}

// Answer implements Engine. Shots that do not fit the context are dropped
// oldest first. A COT model first writes its description of the user
// greedily (its best guess; not streamed) — or takes the user's own
// (req.Description) — then samples the response (streamed), as fspo eval
// does.
func (e *ModelEngine) Answer(ctx context.Context, req AnswerRequest) (Answer, error) {
	raw := !req.Personalize && e.RawBase
	c := e.codecFor(req.Personalize)
	reserve := min(req.MaxTokens, e.Model.Positions()/4)
	var given []int // the user's description, stated as the model states its own
	if c.Variant == episode.COT && !raw && req.Description != "" {
		given = c.DescriptionPart(req.Description)
	}
	p, kept, err := e.prompt(c, req.Shots, req.Question, raw, reserve+len(given))
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Shots: kept}
	if given != nil {
		p = append(slices.Clip(p), given...)
		a.Description = req.Description
	} else if c.Variant == episode.COT && !raw {
		var desc []int
		found := false
		g, err := e.generate(ctx, p, model.GenOptions{MaxTokens: e.Model.Positions() / 4, Stop: c.Stop(true)}, func(tok int) bool {
			desc = append(desc, tok)
			found = c.DescriptionEnd(desc) >= 0
			return !found
		})
		if err != nil {
			return Answer{}, fmt.Errorf("engine %s: %w", e.Label, err)
		}
		a.Description, _, _ = c.Parse(g.Tokens)
		a.CompletionTokens, a.FinishReason = len(g.Tokens), g.FinishReason
		if !found {
			// cut off before the response part: the description and an empty answer
			a.PromptTokens = len(p)
			return a, nil
		}
		p = append(slices.Clip(p), g.Tokens...)
	}
	var streamErr error
	stream := c.NewStream()
	stops := NewStopScanner(req.Stop)
	send := func(piece string) bool {
		piece, hit := stops.Push(piece)
		if piece != "" && streamErr == nil && req.Stream != nil {
			streamErr = req.Stream(piece)
		}
		return streamErr == nil && !hit
	}
	var emit func(int) bool
	if req.Stream != nil || len(req.Stop) > 0 {
		emit = func(tok int) bool { return send(stream.Push(tok)) }
	}
	g, err := e.generate(ctx, p, model.GenOptions{MaxTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP,
		Seed: req.Seed, Stop: c.Stop(true)}, emit)
	if err == nil && emit != nil && !stops.Hit() {
		send(stream.Flush())
		if tail := stops.Flush(); tail != "" && req.Stream != nil && streamErr == nil {
			streamErr = req.Stream(tail)
		}
	}
	if err != nil {
		return Answer{}, fmt.Errorf("engine %s: %w", e.Label, err)
	}
	if streamErr != nil {
		return Answer{}, streamErr
	}
	a.PromptTokens = len(p) - a.CompletionTokens
	a.CompletionTokens += len(g.Tokens)
	a.FinishReason = g.FinishReason
	a.Text = c.Text(g.Tokens)
	if stops.Hit() {
		a.Text, a.FinishReason = stops.Text(), "stop"
	}
	return a, nil
}

// Pair implements Engine: two base (zero-shot) answers sampled at the two
// PairTemperatures with seeds seed and seed+1; up to four tries until they differ.
func (e *ModelEngine) Pair(ctx context.Context, question string, seed uint64) (string, string, error) {
	temps := e.PairTemperatures
	if temps == [2]float32{} {
		temps = [2]float32{0.7, 1.2}
	}
	for try := range uint64(4) {
		var out [2]string
		g, gctx := errgroup.WithContext(ctx)
		for i := range 2 {
			g.Go(func() error {
				a, err := e.Answer(gctx, AnswerRequest{Question: question, MaxTokens: e.Model.Positions() / 4,
					Temperature: temps[i], TopP: 0.95, Seed: seed + 2*try + uint64(i)})
				out[i] = a.Text
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return "", "", err
		}
		if out[0] != out[1] && out[0] != "" && out[1] != "" {
			return out[0], out[1], nil
		}
	}
	return "", "", errors.New("pair: four samples in a row gave equal or empty answers")
}

// Describe implements Engine: for a COT model, the description it writes
// (greedily) when asked the most recent shot's question; "" otherwise.
func (e *ModelEngine) Describe(ctx context.Context, shots []Shot) (string, error) {
	if e.Codec.Variant != episode.COT || len(shots) == 0 {
		return "", nil
	}
	a, err := e.Answer(ctx, AnswerRequest{Question: shots[len(shots)-1].Prompt, Shots: shots, Personalize: true,
		MaxTokens: 1, Temperature: 0, TopP: 1})
	if err != nil {
		return "", err
	}
	return a.Description, nil
}
