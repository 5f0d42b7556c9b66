package eval

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"fspo/episode"
	"fspo/fewshot"
	"fspo/model"
	"fspo/tokenizer"
)

// chunk bounds the sequences generated at once: each holds a KV cache of
// the model's whole context (stories260K: 0.66 MB).
const chunk = 128

// job is one method's generation: which model continues which prompt.
type job struct {
	method string
	model  *model.Model
	// variant of the prompt; "" continues the query's text itself (the
	// base model's natural use: a story opening continued as a story).
	variant episode.Variant
	k       int // samples per episode
	// given: a COT model states the user's true description (as with
	// Config.GivenDescription) instead of its own guess.
	given bool
}

// response is one generated response.
type response struct {
	Text        string
	Description string // COT: the description the model wrote first
	Tokens      int    // tokens of the response text
	Finish      string // "stop" or "length"
	ParseError  string // COT output without a response part
	// ContextLimited: the prompt left less room than the token cap.
	ContextLimited bool
}

// generator turns episodes into prompts and generates responses.
type generator struct {
	cfg    Config
	tok    tokenizer.Codec
	chat   *fewshot.Chat // nil for a base model
	layout episode.Layout
	caps   caps
}

func (g *generator) codec(v episode.Variant) fewshot.Codec {
	return fewshot.Codec{Tok: g.tok, Chat: g.chat, Variant: v, Layout: g.layout}
}

// prompt is the token sequence generation continues: BOS and the query's
// text for the raw job, else BOS, the variant's prompt and the completion
// header (forced, as every training completion starts with it).
func (g *generator) prompt(v episode.Variant, ep episode.Episode) ([]int, error) {
	if v == "" {
		return g.tok.Encode(ep.Query.Prompt, true), nil
	}
	c := g.codec(v)
	p, err := c.Prompt(ep.Shots, ep.Query.Prompt, ep.Query.Description)
	return append(p, c.Header()...), err
}

// maxTokens is the cap on generated tokens: the longest training response,
// and for COT also the longest description and the separator before the
// response. Config.MaxTokens overrides the response part.
func (g *generator) maxTokens(v episode.Variant) int {
	n := g.caps.response
	if g.cfg.MaxTokens > 0 {
		n = g.cfg.MaxTokens
	}
	if v == episode.COT {
		c := g.codec(v)
		n += g.caps.description + len(c.Completion("", "")) - len(c.Header()) - 1
	}
	return n
}

// generate runs job j over the episodes; out[i][s] is sample s of episode i.
// Sequence q = i*k+s is sampled with seed seedFor(method)+q, so a rerun with
// the same data and seed writes the same responses.
func (g *generator) generate(ctx context.Context, j job, eps []episode.Episode) ([][]response, error) {
	limit := g.maxTokens(j.variant)
	prompts := make([][]int, 0, len(eps)*j.k)
	var limited []bool
	for i, ep := range eps {
		p, err := g.prompt(j.variant, ep)
		if err != nil {
			return nil, fmt.Errorf("eval %s: episode %d (user %s): %w", j.method, i, ep.User, err)
		}
		// Room for the response: the model's context after the prompt. A
		// prompt that leaves less than the cap is generated within the
		// context (model.GenerateBatch stops there) and counted; one that
		// leaves less than a plain response is an error.
		room := j.model.Positions() - len(p)
		if room < min(limit, g.maxTokens(episode.Plain)) {
			return nil, fmt.Errorf("eval %s: episode %d (user %s, query %s): prompt of %d tokens leaves %d of the model's %d positions, fewer than the %d-token response cap; use fewer shots or a smaller token cap",
				j.method, i, ep.User, ep.Query.Key(), len(p), room, j.model.Positions(), min(limit, g.maxTokens(episode.Plain)))
		}
		contextLimited := room < limit
		for range j.k {
			prompts = append(prompts, p)
			limited = append(limited, contextLimited)
		}
	}
	codec := g.codec(j.variant)
	opt := model.GenOptions{MaxTokens: limit, Temperature: float32(g.cfg.Temperature), TopP: float32(g.cfg.TopP), Stop: codec.Stop(true)}
	seed := seedFor(g.cfg.Seed, j.method)
	gens := make([]model.Generated, 0, len(prompts))
	t0 := time.Now()
	for lo := 0; lo < len(prompts); lo += chunk {
		hi := min(lo+chunk, len(prompts))
		opt.Seed = seed + uint64(lo)
		var out []model.Generated
		var err error
		switch {
		case j.variant == episode.COT && (g.cfg.GivenDescription || j.given):
			out, err = g.generateGiven(ctx, j.model, codec, prompts[lo:hi], descriptions(eps[lo/j.k:(hi+j.k-1)/j.k], j.k, lo), opt)
		case j.variant == episode.COT && g.cfg.COTDescriptions > 1:
			chunkEps := make([]episode.Episode, hi-lo)
			for q := range chunkEps {
				chunkEps[q] = eps[(lo+q)/j.k]
			}
			var descs []string
			if descs, err = g.pickDescriptions(ctx, j.model, codec, chunkEps, prompts[lo:hi], opt); err == nil {
				out, err = g.generateGiven(ctx, j.model, codec, prompts[lo:hi], func(q int) string { return descs[q] }, opt)
			}
		case j.variant == episode.COT:
			out, err = g.generateCOT(ctx, j.model, codec.DescriptionEnd, prompts[lo:hi], opt)
		default:
			out, err = j.model.GenerateBatch(ctx, prompts[lo:hi], opt, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("eval %s: %w", j.method, err)
		}
		gens = append(gens, out...)
		g.cfg.progress("%s: generated %d/%d responses (%.1fs)", j.method, hi, len(prompts), time.Since(t0).Seconds())
	}
	res := make([][]response, len(eps))
	for i := range eps {
		res[i] = make([]response, j.k)
		for s := range j.k {
			gen := gens[i*j.k+s]
			r := response{Finish: gen.FinishReason, ContextLimited: limited[i*j.k+s]}
			if j.variant == "" {
				r.Text = codec.Text(gen.Tokens)
			} else {
				desc, text, err := codec.Parse(gen.Tokens)
				r.Description, r.Text = desc, text
				if err != nil {
					r.ParseError = err.Error()
				}
			}
			r.Tokens = len(g.tok.Encode(r.Text, false))
			res[i][s] = r
		}
	}
	return res, nil
}

// descriptions lists the true description of each prompt of a chunk that
// starts at prompt lo of episodes eps (those the chunk covers, the first
// at index lo/k), k prompts per episode.
func descriptions(eps []episode.Episode, k, lo int) func(q int) string {
	return func(q int) string { return eps[(lo+q)/k-lo/k].Query.Description }
}

// generateGiven is generateCOT with the description given: each prompt
// continues with the user's true description and the separator, as the
// model states its own, and only the response is generated (capped like
// every method's); the outputs hold both parts, so they parse as COT
// outputs.
func (g *generator) generateGiven(ctx context.Context, m *model.Model, c fewshot.Codec, prompts [][]int, desc func(q int) string, opt model.GenOptions) ([]model.Generated, error) {
	stated := make([][]int, len(prompts))
	second := make([][]int, len(prompts))
	for q, p := range prompts {
		stated[q] = c.DescriptionPart(desc(q))
		second[q] = append(slices.Clip(p), stated[q]...)
	}
	ropt := opt
	ropt.MaxTokens = g.maxTokens(episode.Plain)
	out, err := m.GenerateBatch(ctx, second, ropt, nil)
	if err != nil {
		return nil, err
	}
	for q := range out {
		out[q].Tokens = append(stated[q], out[q].Tokens...)
	}
	return out, nil
}

// generateCOT generates COT outputs in two parts: the description at
// Config.DescriptionTemperature up to and including the separator before
// the response, which ends the description part where descEnd says (within
// opt's total cap), then the response at opt's
// temperature, capped like every method's response. An output whose
// description ends (EOS or the cap) without the separator is returned as
// is, and parses as having no response part.
func (g *generator) generateCOT(ctx context.Context, m *model.Model, descEnd func([]int) int, prompts [][]int, opt model.GenOptions) ([]model.Generated, error) {
	dopt := opt
	dopt.Temperature, dopt.TopP = float32(g.cfg.DescriptionTemperature), 1
	if dopt.Temperature > 0 {
		// a sampled description draws from its own stream, not the response's
		dopt.TopP, dopt.Seed = opt.TopP, opt.Seed^0x9e3779b97f4a7c15
	}
	desc, done, err := describe(ctx, m, descEnd, prompts, dopt)
	if err != nil {
		return nil, err
	}
	var idx []int
	var second [][]int
	for i, d := range desc {
		if done[i] {
			idx = append(idx, i)
			second = append(second, append(slices.Clip(prompts[i]), d.Tokens...))
		}
	}
	out := desc
	if len(second) == 0 {
		return out, nil
	}
	// The response is capped like every method's (a description longer
	// than the cap's share of it does not shorten the response).
	ropt := opt
	ropt.MaxTokens = g.maxTokens(episode.Plain)
	resp, err := m.GenerateBatch(ctx, second, ropt, nil)
	if err != nil {
		return nil, err
	}
	for k, i := range idx {
		out[i].Tokens = append(out[i].Tokens, resp[k].Tokens...)
		out[i].FinishReason = resp[k].FinishReason
	}
	return out, nil
}

// seedFor derives a method's sampling seed from the run's seed: the first
// 8 bytes of SHA-256("generate/<seed>/<method>").
func seedFor(seed int64, method string) uint64 {
	h := sha256.Sum256([]byte(fmt.Sprintf("generate/%d/%s", seed, method)))
	return binary.LittleEndian.Uint64(h[:8])
}
