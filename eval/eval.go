package eval

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"fspo/episode"
	"fspo/judge"
	"fspo/tokenizer"
)

// judgeWorkers bounds the comparisons in flight (an LLM judge calls out).
const judgeWorkers = 8

// scoringWorkers is how many scorings of independent prompts run at once
// (COT description candidates, elicitation committee members): one keeps a
// little over one thread busy, two fill this project's 2-core machines.
const scoringWorkers = 2

// Run evaluates every method whose model is given (the others are reported
// as absent with the reason), writes the outputs into c.Out (WriteOutputs)
// and returns the report.
func Run(ctx context.Context, c Config) (*Report, error) {
	t0 := time.Now()
	var ms models
	c, err := resolvePrompt(c, &ms)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	layout, err := episode.ParseLayout(c.Layout)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	d, err := loadData(c)
	if err != nil {
		return nil, err
	}
	if c.Judge == nil || c.Rewards != nil {
		for u := range d.test {
			if c.Rewards[u] == nil {
				return nil, fmt.Errorf("eval: held-out user %q has no reward (the reward judge and the oracle need every user's)", u)
			}
		}
	}
	base, err := ms.load(c.Base)
	if err != nil {
		return nil, fmt.Errorf("eval base: %w", err)
	}
	tok, err := baseCodec(c, base)
	if err != nil {
		return nil, err
	}
	cp, err := measureCaps(tok, d.train)
	if err != nil && c.MaxTokens == 0 {
		return nil, err
	}
	g := &generator{cfg: c, tok: tok, chat: c.Chat, layout: layout, caps: cp}
	rep := newReport(c, judgeName(c.Judge), d, g)
	c.progress("%d held-out users, %d queries, token cap %d", len(d.test), len(d.episodes), g.maxTokens(episode.Plain))

	chosen, runs, err := generateAll(ctx, c, g, &ms, base, d, rep)
	if err != nil {
		return nil, err
	}

	// Judging against the base model's responses, in both orders.
	tj := time.Now()
	samples, err := judgeAll(ctx, c, d, rep.Methods, chosen)
	if err != nil {
		return nil, err
	}
	rep.Timings["judge"] = time.Since(tj).Seconds()
	if u, ok := c.Judge.(interface{ Usage() judge.Usage }); ok {
		usage := u.Usage()
		rep.JudgeUsage = &usage
	}
	rep.summarize(samples, c)

	if err := accuracyAll(ctx, c, g, &ms, d, runs, rep); err != nil {
		return nil, err
	}
	if err := elicitationAll(ctx, c, g, &ms, d, runs, chosen, rep); err != nil {
		return nil, err
	}
	rep.Timings["total"] = time.Since(t0).Seconds()
	if err := WriteOutputs(c.Out, rep, samples); err != nil {
		return nil, err
	}
	c.progress("wrote %s", c.Out)
	return rep, nil
}

// baseCodec is the base model's tokenizer: Config.Codec, or the llama2.c
// tokenizer file, checked against the model's vocabulary.
func baseCodec(c Config, base *loaded) (tokenizer.Codec, error) {
	if c.Codec != nil {
		if c.Codec.VocabSize() > base.model.Config.Vocab {
			return nil, fmt.Errorf("eval: base model %s has %d embedding rows, fewer than its tokenizer's %d tokens", base.path, base.model.Config.Vocab, c.Codec.VocabSize())
		}
		return c.Codec, nil
	}
	l2c, err := tokenizer.Load(c.Tokenizer)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	if err := l2c.CheckVocab(base.model.Config.Vocab); err != nil {
		return nil, fmt.Errorf("eval: base model %s with tokenizer %s: %w", base.path, c.Tokenizer, err)
	}
	return tokenizer.Llama2C(l2c), nil
}

// generateAll generates every method's responses, method by method, each
// in batches, and returns the responses kept and the trained runs loaded.
func generateAll(ctx context.Context, c Config, g *generator, ms *models, base *loaded, d *data, rep *Report) (map[string][]response, map[string]*loaded, error) {
	chosen := map[string][]response{}
	runs := map[string]*loaded{}
	for _, method := range Methods {
		j := job{method: method, variant: variantOf[method], k: 1}
		switch method {
		case Base, FewShot:
			j.model = base.model
		case OracleBK:
			if c.Rewards == nil {
				rep.Absent[method] = "needs the users' exact rewards"
				continue
			}
			j.model, j.k = base.model, c.OracleK
		default:
			path, ok := c.Runs[method]
			if !ok {
				rep.Absent[method] = "no model given"
				continue
			}
			l, err := ms.load(path)
			if err != nil {
				return nil, nil, fmt.Errorf("eval %s: %w", method, err)
			}
			if l.model.Config.Vocab != base.model.Config.Vocab {
				return nil, nil, fmt.Errorf("eval %s: %s has a %d-token vocabulary, the base model %d", method, l.path, l.model.Config.Vocab, base.model.Config.Vocab)
			}
			runs[method], j.model = l, l.model
			rep.Models[method] = l.path
		}
		if method == Base || method == FewShot || method == OracleBK {
			rep.Models[method] = base.path
		}
		tg := time.Now()
		out, err := g.generate(ctx, j, d.episodes)
		if err != nil {
			return nil, nil, err
		}
		chosen[method] = pick(out, method, c, d.episodes)
		rep.Timings["generate_"+method] = time.Since(tg).Seconds()
		rep.Methods = append(rep.Methods, method)
	}
	if c.BestOf > 1 {
		if err := bestOfAll(ctx, c, g, ms, d, runs, chosen, rep); err != nil {
			return nil, nil, err
		}
	}
	if l, ok := runs[FSPOCOT]; ok && c.AlsoGivenDescription {
		tg := time.Now()
		out, err := g.generate(ctx, job{method: FSPOCOTGiven, variant: episode.COT, k: 1, model: l.model, given: true}, d.episodes)
		if err != nil {
			return nil, nil, err
		}
		chosen[FSPOCOTGiven] = pick(out, FSPOCOTGiven, c, d.episodes)
		rep.Timings["generate_"+FSPOCOTGiven] = time.Since(tg).Seconds()
		rep.Methods = append(rep.Methods, FSPOCOTGiven)
		rep.Models[FSPOCOTGiven] = l.path
	}
	return chosen, runs, nil
}

// bestOfAll adds FSPOBest: c.BestOf samples of the FSPO run per episode,
// the one with the highest implicit reward kept.
func bestOfAll(ctx context.Context, c Config, g *generator, ms *models, d *data, runs map[string]*loaded, chosen map[string][]response, rep *Report) error {
	l, ok := runs[FSPO]
	if !ok {
		rep.Absent[FSPOBest] = "needs the fspo run"
		return nil
	}
	refPath, _, err := referenceFor(FSPO, l, c)
	if err != nil {
		return fmt.Errorf("eval %s: %w", FSPOBest, err)
	}
	ref, err := ms.load(refPath)
	if err != nil {
		return fmt.Errorf("eval %s: reference: %w", FSPOBest, err)
	}
	obj, _ := objectiveOf(l, c.Beta)
	tg := time.Now()
	j := job{method: FSPOBest, variant: variantOf[FSPO], k: c.BestOf, model: l.model}
	out, err := g.generate(ctx, j, d.episodes)
	if err != nil {
		return err
	}
	var rewards [][]float64
	if chosen[FSPOBest], rewards, err = pickByImplicitReward(ctx, g.codec(j.variant), d.episodes, out, l.model, ref.model, obj.Kind == "ipo_norm" || c.BestOfPerToken); err != nil {
		return fmt.Errorf("eval %s: %w", FSPOBest, err)
	}
	if c.Rewards != nil {
		if a, n := rewardAgreement(d.episodes, out, rewards, c.Rewards); n > 0 {
			rep.BestOfAgreement = &RewardAgreement{Fraction: a, Pairs: n}
			c.progress("%s: the implicit reward orders %.1f%% of %d sample pairs as the exact reward does", FSPOBest, 100*a, n)
		}
	}
	rep.Timings["generate_"+FSPOBest] = time.Since(tg).Seconds()
	rep.Methods = append(rep.Methods, FSPOBest)
	rep.Models[FSPOBest] = l.path
	return nil
}

// accuracyAll measures the implicit-reward accuracy of the
// preference-trained models into rep.
func accuracyAll(ctx context.Context, c Config, g *generator, ms *models, d *data, runs map[string]*loaded, rep *Report) error {
	ta := time.Now()
	for _, method := range PreferenceMethods {
		l, ok := runs[method]
		if !ok {
			continue
		}
		acc, err := accuracyOf(ctx, c, g, ms, d, method, l)
		if err != nil {
			return fmt.Errorf("eval %s: implicit-reward accuracy: %w", method, err)
		}
		rep.Accuracy[method] = acc
		rep.RewardAccuracy[method] = acc.Percent / 100
		c.progress("%s: implicit-reward accuracy %.1f%% on %d held-out pairs", method, acc.Percent, acc.N)
	}
	rep.Timings["reward_accuracy"] = time.Since(ta).Seconds()
	return nil
}

// pick keeps one response per episode: the only one, or for the oracle the
// best of its K samples under the user's true reward (the first on ties).
func pick(out [][]response, method string, c Config, eps []episode.Episode) []response {
	res := make([]response, len(out))
	for i, rs := range out {
		best := 0
		if method == OracleBK {
			r := c.Rewards[eps[i].User]
			bestR := r.Reward(rs[0].Text)
			for s := 1; s < len(rs); s++ {
				if v := r.Reward(rs[s].Text); v > bestR {
					best, bestR = s, v
				}
			}
		}
		res[i] = rs[best]
	}
	return res
}

// judgeAll judges every method's response against the base model's, in
// both orders, and returns the samples in method then episode order.
func judgeAll(ctx context.Context, c Config, d *data, methods []string, chosen map[string][]response) ([]Sample, error) {
	n := len(d.episodes)
	samples := make([]Sample, len(methods)*n)
	grp, gctx := errgroup.WithContext(ctx)
	grp.SetLimit(judgeWorkers)
	for mi, method := range methods {
		for i, ep := range d.episodes {
			grp.Go(func() error {
				r, b := chosen[method][i], chosen[Base][i]
				s := Sample{User: ep.User, Kind: d.kinds[ep.User], Description: ep.Query.Description, Method: method, Query: ep.Query.Key(),
					Prompt: ep.Query.Prompt, Response: r.Text, ResponseDescription: r.Description, BaselineResponse: b.Text,
					Tokens: r.Tokens, BaselineTokens: b.Tokens, Finish: r.Finish, ParseError: r.ParseError, ContextLimited: r.ContextLimited}
				j := c.Judge
				if rw := c.Rewards[ep.User]; rw != nil {
					rr, br := rw.Reward(r.Text), rw.Reward(b.Text)
					s.Reward, s.BaselineReward = &rr, &br
					if j == nil {
						j = rewardJudge(rw)
					}
				}
				if r.ParseError != "" {
					// The method wrote no response (a COT output without its
					// response part): a loss whatever the judge would say of
					// an empty text.
					s.PMethodFirst, s.PBaselineFirst, s.VerdictMethodFirst, s.VerdictBaselineFirst = 0, 1, "baseline", "baseline"
					samples[mi*n+i] = s
					return nil
				}
				if err := judgePair(gctx, j, &s); err != nil {
					return fmt.Errorf("eval: judge %s for user %s, query %s: %w", method, ep.User, ep.Query.Key(), err)
				}
				samples[mi*n+i] = s
				return nil
			})
		}
	}
	if err := grp.Wait(); err != nil {
		return nil, err
	}
	return samples, nil
}

// accuracyOf measures one preference-trained run against its reference.
func accuracyOf(ctx context.Context, c Config, g *generator, ms *models, d *data, method string, l *loaded) (Accuracy, error) {
	refPath, refSource, err := referenceFor(method, l, c)
	if err != nil {
		return Accuracy{}, err
	}
	ref, err := ms.load(refPath)
	if err != nil {
		return Accuracy{}, fmt.Errorf("reference: %w", err)
	}
	obj, fromRun := objectiveOf(l, c.Beta)
	src := "default"
	if fromRun {
		src = "run"
	}
	w, margin, tooLong, err := implicitAccuracy(ctx, c, g.codec(variantOf[method]), d.episodes, d.others, l.model, ref.model, obj)
	if err != nil {
		return Accuracy{}, err
	}
	return Accuracy{Summary: w, Objective: obj.Kind, Beta: obj.Beta, BetaSource: src, Reference: ref.path, RefSource: refSource, MeanMargin: margin, TooLong: tooLong}, nil
}
