package eval

import (
	"context"
	"math"
	"slices"

	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/model"
)

// pickDescriptions chooses the description a COT model states for each
// prompt (Config.COTDescriptions > 1): of its greedy description and
// COTDescriptions−1 sampled ones, the one under which the model itself best
// tells the user's labelled answers apart — for every shot, with the other
// shots as the context, the log-probability of its chosen response minus
// its rejected one after the description, summed over the shots (a
// leave-one-out check of the description against what the user said).
// eps[q] is prompt q's episode.
func (g *generator) pickDescriptions(ctx context.Context, m *model.Model, c fewshot.Codec, eps []episode.Episode, prompts [][]int, opt model.GenOptions) ([]string, error) {
	n := g.cfg.COTDescriptions
	cands := make([][]string, len(prompts))
	for s := range n {
		dopt := opt
		dopt.Temperature, dopt.TopP = float32(g.cfg.DescriptionTemperature), 1
		if s > 0 { // sampled descriptions, each from its own stream
			dopt.Temperature, dopt.TopP, dopt.Seed = 1, opt.TopP, opt.Seed^(0x9e3779b97f4a7c15*uint64(s+1))
		}
		gens, done, err := describe(ctx, m, c.DescriptionEnd, prompts, dopt)
		if err != nil {
			return nil, err
		}
		for q := range prompts {
			if d, _, err := c.Parse(gens[q].Tokens); err == nil && done[q] && !slices.Contains(cands[q], d) {
				cands[q] = append(cands[q], d)
			} else if s == 0 && !done[q] {
				cands[q] = append(cands[q], d) // the greedy one, kept even without its separator
			}
		}
	}
	out := make([]string, len(prompts))
	for q, ep := range eps {
		best := math.Inf(-1)
		for _, d := range cands[q] {
			fit, err := shotFit(ctx, m, c, ep.Shots, d)
			if err != nil {
				return nil, err
			}
			if fit > best {
				best, out[q] = fit, d
			}
		}
	}
	return out, nil
}

// shotFit is Σ over shots of log p(chosen) − log p(rejected) after the
// description d, each shot's question asked with the other shots as context.
func shotFit(ctx context.Context, m *model.Model, c fewshot.Codec, shots []dataset.Record, d string) (float64, error) {
	part := c.DescriptionPart(d)
	fit := 0.0
	for i, sh := range shots {
		others := append(slices.Clip(shots[:i]), shots[i+1:]...)
		p, err := c.Prompt(others, sh.Prompt, "")
		if err != nil {
			return 0, err
		}
		prefix := append(p, c.Header()...)
		conts := []model.Continuation{
			{Tokens: append(slices.Clip(part), c.Completion(sh.Chosen, "")[len(c.Header())+len(c.DescriptionPart("")):]...), From: len(part)},
			{Tokens: append(slices.Clip(part), c.Completion(sh.Rejected, "")[len(c.Header())+len(c.DescriptionPart("")):]...), From: len(part)},
		}
		if len(prefix)+max(len(conts[0].Tokens), len(conts[1].Tokens)) > m.Positions() {
			continue
		}
		lp, err := m.ContinuationLogProbs(ctx, prefix, conts)
		if err != nil {
			return 0, err
		}
		fit += lp[0] - lp[1]
	}
	return fit, nil
}

// describe generates a COT description for every prompt, stopping each at
// the separator before the response (done) or at opt's cap.
func describe(ctx context.Context, m *model.Model, descEnd func([]int) int, prompts [][]int, opt model.GenOptions) ([]model.Generated, []bool, error) {
	done := make([]bool, len(prompts))
	seen := make([][]int, len(prompts))
	out, err := m.GenerateBatch(ctx, prompts, opt, func(i, tok int) bool {
		seen[i] = append(seen[i], tok)
		done[i] = descEnd(seen[i]) >= 0
		return !done[i]
	})
	return out, done, err
}
