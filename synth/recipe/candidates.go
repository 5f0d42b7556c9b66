package recipe

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// candidates writes K steered responses for every question some user of
// this shard labels. Candidate k of question q draws its steering kind, and
// the persona or viewpoint, from (seed, q, k): persona steering writes for a
// randomly chosen user's description, view steering answers from one of the
// question's listed viewpoints (Singh et al. 2025, §5).
func (p *pipeline) candidates(ctx context.Context) error {
	qs := p.neededQuestions()
	p.pool = nil
	for _, u := range p.users {
		if u.ok {
			p.pool = append(p.pool, u)
		}
	}
	views, err := p.views(ctx, qs)
	if err != nil {
		return err
	}
	K := p.cfg.Responses
	table := make([][]*candidate, len(qs))
	for i := range table {
		table[i] = make([]*candidate, K)
	}
	err = p.each(ctx, len(qs)*K, func(ctx context.Context, n int) error {
		qi, k := n/K, n%K
		c, err := p.candidate(ctx, qs[qi], k, views[qi])
		table[qi][k] = c
		return err
	})
	if err != nil {
		return err
	}
	for i, q := range qs {
		p.cands[q.ID] = table[i]
	}
	fmt.Fprintf(p.log, "synth: candidates for %d questions\n", len(qs))
	return nil
}

// neededQuestions are the questions some usable user of this shard labels,
// in the recipe's order.
func (p *pipeline) neededQuestions() []question {
	need := map[string]bool{}
	for _, u := range p.users {
		if p.mine(u.Index) && u.ok {
			for _, q := range p.userQuestions(u) {
				need[q.ID] = true
			}
		}
	}
	var qs []question
	for _, q := range p.qs {
		if need[q.ID] {
			qs = append(qs, q)
		}
	}
	return qs
}

// views asks for the viewpoints of every question when the recipe steers
// by view (else all are empty); a question whose call failed has none.
func (p *pipeline) views(ctx context.Context, qs []question) ([][]string, error) {
	views := make([][]string, len(qs))
	useViews := false
	for _, s := range p.r.Responses.Steering {
		useViews = useViews || s == "view"
	}
	if !useViews {
		return views, nil
	}
	err := p.each(ctx, len(qs), func(ctx context.Context, i int) error {
		var out struct {
			Views []string `json:"views"`
		}
		data := map[string]any{"Question": qs[i].Text, "Count": p.r.Views.Count}
		_, ok, err := p.call(ctx, "view", qs[i].ID, &p.r.Views, data, seedFor(p.cfg.Seed, "view", qs[i].Text), &out)
		if err != nil || !ok {
			return err
		}
		for _, v := range out.Views {
			if v = strings.TrimSpace(v); v != "" {
				views[i] = append(views[i], v)
			}
		}
		return nil
	})
	return views, err
}

// candidate writes candidate k of question q (nil when it was skipped or
// its call failed, which the accounting records).
func (p *pipeline) candidate(ctx context.Context, q question, k int, views []string) (*candidate, error) {
	pool := p.pool
	rng := p.rng("steer", q.Text, fmt.Sprint(k))
	c := &candidate{Kind: p.r.Responses.Steering[rng.IntN(len(p.r.Responses.Steering))], Source: -1}
	item := fmt.Sprintf("%s/%d", q.ID, k)
	var step *Step
	data := map[string]any{"Question": q.Text}
	switch c.Kind {
	case "persona":
		if len(pool) == 0 {
			p.acct.skip("response", item, "no persona to steer by (every persona call failed)")
			return nil, nil
		}
		src := pool[rng.IntN(len(pool))]
		c.Steer, c.Source, step = src.Description, src.Index, &p.r.Responses.Persona
		data["Persona"] = src.Description
	case "view":
		if len(views) == 0 {
			p.acct.skip("response", item, "no viewpoints for the question (its view call failed)")
			return nil, nil
		}
		c.Steer, step = views[rng.IntN(len(views))], &p.r.Responses.View
		data["View"] = c.Steer
	}
	resp, ok, err := p.call(ctx, "response", item, step, data, seedFor(p.cfg.Seed, "response", q.Text, fmt.Sprint(k)), nil)
	if err != nil || !ok {
		return nil, err
	}
	if c.Text = strings.TrimSpace(resp.Text); c.Text == "" {
		p.acct.fail("response", item, "empty", errors.New("empty response"))
		return nil, nil
	}
	c.Model = resp.Model
	return c, nil
}
