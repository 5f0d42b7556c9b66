package eval

import (
	"context"
	"math"
	"slices"

	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/model"

	"golang.org/x/sync/errgroup"
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
	// the prompts' candidates are scored scoringWorkers prompts at a time
	out := make([]string, len(prompts))
	grp, gctx := errgroup.WithContext(ctx)
	grp.SetLimit(scoringWorkers)
	for q, ep := range eps {
		grp.Go(func() error {
			fits, err := shotFits(gctx, m, c, ep.Shots, cands[q])
			if err != nil {
				return err
			}
			best := math.Inf(-1)
			for i, fit := range fits {
				if fit > best {
					best, out[q] = fit, cands[q][i]
				}
			}
			return nil
		})
	}
	if err := grp.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// shotFits is, for each description, Σ over shots of log p(chosen) −
// log p(rejected) after it, each shot's question asked with the other shots
// as context. A shot's context is computed once for all descriptions; a
// description whose continuation does not fit the model skips the shot.
func shotFits(ctx context.Context, m *model.Model, c fewshot.Codec, shots []dataset.Record, descs []string) ([]float64, error) {
	fits := make([]float64, len(descs))
	skip := len(c.Header()) + len(c.DescriptionPart(""))
	for i, sh := range shots {
		others := append(slices.Clip(shots[:i]), shots[i+1:]...)
		p, err := c.Prompt(others, sh.Prompt, "")
		if err != nil {
			return nil, err
		}
		prefix := append(p, c.Header()...)
		chosen, rejected := c.Completion(sh.Chosen, "")[skip:], c.Completion(sh.Rejected, "")[skip:]
		var conts []model.Continuation
		var of []int // the description of each pair of continuations
		for d, desc := range descs {
			part := c.DescriptionPart(desc)
			if len(prefix)+len(part)+max(len(chosen), len(rejected)) > m.Positions() {
				continue
			}
			conts = append(conts,
				model.Continuation{Tokens: append(slices.Clip(part), chosen...), From: len(part)},
				model.Continuation{Tokens: append(slices.Clip(part), rejected...), From: len(part)})
			of = append(of, d)
		}
		if len(conts) == 0 {
			continue
		}
		lp, err := m.ContinuationLogProbs(ctx, prefix, conts)
		if err != nil {
			return nil, err
		}
		for k, d := range of {
			fits[d] += lp[2*k] - lp[2*k+1]
		}
	}
	return fits, nil
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
