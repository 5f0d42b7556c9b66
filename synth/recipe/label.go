package recipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"fspo/dataset"
	"fspo/judge"
	"fspo/llm"
)

// verdict is the judge's answer for one order of one pair, in terms of the
// pair's candidates (not of the positions A and B).
type verdict int8

const (
	failed    verdict = iota // the call finally failed
	first                    // candidate i preferred
	second                   // candidate j preferred
	undecided                // the description does not decide
)

// pair is two candidates (indices i < j) of one question.
type pair struct {
	q    question
	i, j int
}

func (pr pair) key() string { return fmt.Sprintf("%s/%d-%d", pr.q.ID, pr.i, pr.j) }

// outcome is a pair judged in both orders: ab shows i as A, ba shows j as
// A; pab and pba are the probabilities each order gives to i being preferred.
type outcome struct {
	ab, ba   verdict
	pab, pba float64
}

func (o outcome) consistent() bool { return o.ab == o.ba && (o.ab == first || o.ab == second) }
func (o outcome) open() bool {
	return o.ab != failed && o.ba != failed && (o.ab == undecided || o.ba == undecided)
}

// entropy is the binary entropy (nats) of the pair's label distribution,
// taken as the mean of the two orders' probabilities for i (with the
// structured judge: 1, 0, or ½ when undecided); ok is false when an order
// failed.
func (o outcome) entropy() (float64, bool) {
	if o.ab == failed || o.ba == failed {
		return 0, false
	}
	p := (o.pab + o.pba) / 2
	if p <= 0 || p >= 1 {
		return 0, true
	}
	return -p*math.Log(p) - (1-p)*math.Log(1-p), true
}

// UserStat summarises one user's labelling.
type UserStat struct {
	User  string `json:"user"`
	Index int    `json:"index"`
	// Pairs judged; Kept consistent ones written; Inconsistent dropped
	// because the two orders disagree; Undecided still open after the last
	// round; Failed with a call that finally failed.
	Pairs        int `json:"pairs"`
	Kept         int `json:"kept"`
	Inconsistent int `json:"inconsistent"`
	Undecided    int `json:"undecided"`
	Failed       int `json:"failed"`
	// Identical pairs of candidates with the same text, not judged.
	Identical int `json:"identical,omitempty"`
	// EntropyBefore and EntropyAfter are the mean label entropies (nats)
	// before refinement and after the last round.
	EntropyBefore float64  `json:"entropy_before"`
	EntropyAfter  float64  `json:"entropy_after"`
	Clauses       []string `json:"clauses,omitempty"`
}

// userResult is one user's final records and labels.
type userResult struct {
	stat    UserStat
	records []dataset.Record
	labels  map[string]int8 // pair key → +1 (i preferred) / -1, for the disagreement matrix
}

// errLate marks a record that would land out of order: a call that failed
// in an earlier run has now been answered, for a user whose records are
// already followed by later ones in the file.
var errLate = errors.New("record for a user already written")

// label judges every user of this shard, refines personas, and appends each
// user's records once that user's labels are final, in user order, skipping
// records already in the file (a resumed run), so an interrupted and
// resumed run writes the same bytes as an uninterrupted one. When a rerun
// recovers records of users already written (their calls had failed), the
// file is rebuilt in order from the cache into a temporary file that then
// replaces it, so records stay grouped by user and in order.
func (p *pipeline) label(ctx context.Context) (*Report, error) {
	path := partPath(p.cfg.Out, dataset.FileName)
	rep, err := p.labelInto(ctx, path, true)
	if !errors.Is(err, errLate) {
		return rep, err
	}
	fmt.Fprintf(p.log, "synth: %v; rebuilding %s in order from the call cache\n", err, path)
	tmp := path + ".rebuild"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("synth: %w", err)
	}
	p.acct.drop("label", "refine")
	if rep, err = p.labelInto(ctx, tmp, false); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	return rep, nil
}

// lastUserIndex is the user index of the last record of the file (-1 when
// empty); the file is in user order, so it is the largest.
func lastUserIndex(path string) (int, error) {
	rd, err := dataset.Open(path)
	if err != nil {
		return -1, err
	}
	defer rd.Close()
	last := -1
	for {
		r, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return last, nil
		}
		if err != nil {
			return -1, err
		}
		idx, err := strconv.Atoi(r.Meta["user_index"])
		if err != nil {
			return -1, fmt.Errorf("%s:%d: meta.user_index: %q is not an integer", path, rd.Line(), r.Meta["user_index"])
		}
		last = idx
	}
}

func (p *pipeline) labelInto(ctx context.Context, path string, checkLate bool) (*Report, error) {
	w, err := dataset.Append(path)
	if err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	defer w.Close()
	lastIdx := -1
	if checkLate {
		if lastIdx, err = lastUserIndex(path); err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
	}
	rep := &Report{Recipe: p.r.Name, RecipeHash: p.r.Hash(), Seed: p.cfg.Seed, Shard: fmt.Sprintf("%d/%d", p.cfg.Shard, p.cfg.Shards), Questions: len(p.qs)}
	var mine []*user
	for _, u := range p.users {
		if !p.mine(u.Index) {
			continue
		}
		if !u.ok {
			p.acct.skip("label", u.ID, "user skipped: its persona call failed")
			continue
		}
		mine = append(mine, u)
	}
	mx := newMatrixBuilder(maxMatrixUsers)
	chunk := p.cfg.Workers
	for start := 0; start < len(mine); start += chunk {
		end := min(start+chunk, len(mine))
		results := make([]*userResult, end-start)
		g, gctx := errgroup.WithContext(ctx)
		for k := start; k < end; k++ {
			g.Go(func() error {
				res, err := p.labelUser(gctx, mine[k])
				results[k-start] = res
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		for _, res := range results {
			var todo []dataset.Record
			late := false
			for _, r := range res.records {
				if !w.Has(r.ID) {
					todo = append(todo, r)
				} else if len(todo) > 0 {
					late = true // a missing record precedes one already written
				}
			}
			if checkLate && len(todo) > 0 && (late || res.stat.Index < lastIdx) {
				return nil, fmt.Errorf("user %s: %d records now answered: %w", res.stat.User, len(todo), errLate)
			}
			if len(todo) > 0 {
				if err := w.WriteBatch(todo); err != nil {
					return nil, fmt.Errorf("synth: user %s: %w", res.stat.User, err)
				}
			}
			rep.Written += len(todo)
			rep.Records += len(res.records)
			rep.PerUser = append(rep.PerUser, res.stat)
			mx.add(res.stat.User, res.labels)
		}
		fmt.Fprintf(p.log, "synth: labelled %d/%d users\n", end, len(mine))
	}
	rep.Users = len(mine)
	rep.Disagreement = mx.build()
	rep.summarise()
	return rep, nil
}

// userPairs draws the pairs u labels: for each of u's questions, a
// shuffled sample of the pairs of its distinct candidates. identical counts
// the pairs left out because both texts are the same.
func (p *pipeline) userPairs(u *user) (pairs []pair, identical int) {
	for _, q := range p.userQuestions(u) {
		var idx []int
		for k, c := range p.cands[q.ID] {
			if c != nil {
				idx = append(idx, k)
			}
		}
		var qp []pair
		cs := p.cands[q.ID]
		for a := 0; a < len(idx); a++ {
			for b := a + 1; b < len(idx); b++ {
				if cs[idx[a]].Text == cs[idx[b]].Text {
					identical++ // nothing to prefer
					continue
				}
				qp = append(qp, pair{q: q, i: idx[a], j: idx[b]})
			}
		}
		rng := p.rng("pairs", u.ID, q.ID)
		rng.Shuffle(len(qp), func(a, b int) { qp[a], qp[b] = qp[b], qp[a] })
		if n := p.r.Label.PairsPerQuestion; n > 0 && len(qp) > n {
			qp = qp[:n]
		}
		pairs = append(pairs, qp...)
	}
	return pairs, identical
}

// labelUser judges all pairs of u in both orders, then, while some pair is
// undecided and rounds remain, has the judge pick a side for the first such
// pair and append a clause to u's description, and relabels all u's pairs
// (Singh et al. 2025, §5, "iterative persona refinement").
func (p *pipeline) labelUser(ctx context.Context, u *user) (*userResult, error) {
	pairs, identical := p.userPairs(u)
	res := &userResult{stat: UserStat{User: u.ID, Index: u.Index, Pairs: len(pairs), Identical: identical}, labels: map[string]int8{}}
	desc := u.Description
	var outs []outcome
	for round := 0; ; round++ {
		var err error
		outs, err = p.judgeAll(ctx, u, desc, round, pairs)
		if err != nil {
			return nil, err
		}
		if round == 0 {
			res.stat.EntropyBefore = meanEntropy(outs)
		}
		open := -1
		for k, o := range outs {
			if o.open() {
				open = k
				break
			}
		}
		if open < 0 || round >= p.r.Refine.Rounds {
			break
		}
		clause, ok, err := p.refine(ctx, u, desc, round, pairs[open])
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		desc = strings.TrimSpace(desc) + " " + clause
		res.stat.Clauses = append(res.stat.Clauses, clause)
	}
	res.stat.EntropyAfter = meanEntropy(outs)
	for k, o := range outs {
		pr := pairs[k]
		switch {
		case o.ab == failed || o.ba == failed:
			res.stat.Failed++
			continue
		case o.open():
			res.stat.Undecided++
			continue
		case !o.consistent():
			res.stat.Inconsistent++
			continue
		}
		win, lose := pr.i, pr.j
		res.labels[pr.key()] = 1
		if o.ab == second {
			win, lose = pr.j, pr.i
			res.labels[pr.key()] = -1
		}
		res.records = append(res.records, p.record(u, desc, pr, win, lose, len(res.stat.Clauses)))
		res.stat.Kept++
	}
	return res, nil
}

// judgeAll labels every pair in both orders with description desc.
func (p *pipeline) judgeAll(ctx context.Context, u *user, desc string, round int, pairs []pair) ([]outcome, error) {
	// votes[n] is order n%2 of pair n/2: its verdict and the probability
	// that candidate i is preferred.
	type vote struct {
		v verdict
		p float64
	}
	votes := make([]vote, 2*len(pairs))
	err := p.each(ctx, 2*len(pairs), func(ctx context.Context, n int) error {
		pr, swap := pairs[n/2], n%2 == 1
		cs := p.cands[pr.q.ID]
		a, b := cs[pr.i], cs[pr.j]
		order := "ab"
		if swap {
			a, b, order = b, a, "ba"
		}
		item := fmt.Sprintf("%s/%s/%s/r%d", u.ID, pr.key(), order, round)
		seed := seedFor(p.cfg.Seed, "label", u.ID, pr.q.Text, strconv.Itoa(pr.i), strconv.Itoa(pr.j), order)
		pA, ok, err := p.judgeOnce(ctx, item, seed, desc, pr.q.Text, a.Text, b.Text)
		if err != nil || !ok {
			return err
		}
		pi := pA // probability that candidate i is preferred
		if swap {
			pi = 1 - pA
		}
		v := undecided
		switch m := p.r.Label.Margin; {
		case pi > 0.5+m:
			v = first
		case pi < 0.5-m:
			v = second
		}
		votes[n] = vote{v, pi}
		return nil
	})
	outs := make([]outcome, len(pairs))
	for k := range outs {
		ab, ba := votes[2*k], votes[2*k+1]
		outs[k] = outcome{ab: ab.v, ba: ba.v, pab: ab.p, pba: ba.p}
	}
	return outs, err
}

// judgeOnce asks the judge about one order of one pair and returns the
// probability that a is preferred: from the recipe's structured prompt (A:
// 1, B: 0, undecided: ½), or from the alpaca judge's letter probabilities.
func (p *pipeline) judgeOnce(ctx context.Context, item string, seed int64, desc, question, a, b string) (float64, bool, error) {
	if p.judge != nil {
		msgs, err := p.judge.Prompt(desc, question, a, b)
		if err != nil {
			return 0, false, err
		}
		maxTok := p.r.Label.MaxTokens
		if maxTok == 0 {
			maxTok = 5
		}
		req := llm.Request{Stage: "label", Messages: msgs, Temperature: p.r.Label.Temperature, MaxTokens: maxTok, TopLogprobs: 5, Seed: seed}
		resp, ok, err := p.complete(ctx, item, req)
		if err != nil || !ok {
			return 0, ok, err
		}
		pA, _, perr := judge.Preference(resp)
		if perr != nil {
			p.acct.fail("label", item, "invalid_answer", perr)
			return 0, false, nil
		}
		return pA, true, nil
	}
	var ans struct {
		Preferred string `json:"preferred"`
	}
	data := map[string]any{"Description": desc, "Question": question, "A": a, "B": b}
	if _, ok, err := p.call(ctx, "label", item, &p.r.Label.Step, data, seed, &ans); err != nil || !ok {
		return 0, ok, err
	}
	switch strings.ToLower(strings.TrimSpace(ans.Preferred)) {
	case "a":
		return 1, true, nil
	case "b":
		return 0, true, nil
	case "undecided", "tie", "neither":
		return 0.5, true, nil
	}
	p.acct.fail("label", item, "invalid_answer", fmt.Errorf("preferred %q is not A, B or undecided", ans.Preferred))
	return 0, false, nil
}

// refine asks the judge to pick a side of an undecided pair and returns the
// clause to append to the description.
func (p *pipeline) refine(ctx context.Context, u *user, desc string, round int, pr pair) (string, bool, error) {
	cs := p.cands[pr.q.ID]
	var ans struct {
		Preferred string `json:"preferred"`
		Clause    string `json:"clause"`
	}
	item := fmt.Sprintf("%s/%s/r%d", u.ID, pr.key(), round)
	data := map[string]any{"Description": desc, "Question": pr.q.Text, "A": cs[pr.i].Text, "B": cs[pr.j].Text}
	_, ok, err := p.call(ctx, "refine", item, &p.r.Refine.Step, data, seedFor(p.cfg.Seed, "refine", u.ID, strconv.Itoa(round)), &ans)
	if err != nil || !ok {
		return "", false, err
	}
	clause := strings.TrimSpace(ans.Clause)
	if clause == "" {
		p.acct.fail("refine", item, "invalid_answer", errors.New("empty clause"))
		return "", false, nil
	}
	return clause, true, nil
}

// record builds the preference record of a consistently labelled pair. The
// rejected response's description is the persona that steered it, or, for
// a view-steered response, another user's description drawn from (seed,
// user, pair) — what the COT template needs for the rejected completion.
func (p *pipeline) record(u *user, desc string, pr pair, win, lose, rounds int) dataset.Record {
	cs := p.cands[pr.q.ID]
	c, r := cs[win], cs[lose]
	rejDesc := r.Steer
	if r.Kind != "persona" {
		rejDesc = p.otherDescription(u, pr)
	}
	return dataset.Record{
		User:                u.ID,
		Prompt:              pr.q.Text,
		Chosen:              c.Text,
		Rejected:            r.Text,
		Description:         desc,
		ID:                  shortID(p.r.Name, strconv.FormatInt(p.cfg.Seed, 10), u.ID, pr.q.Text, strconv.Itoa(pr.i), strconv.Itoa(pr.j)),
		Source:              p.r.Name,
		RejectedDescription: rejDesc,
		Meta: map[string]string{
			"user_index":        strconv.Itoa(u.Index),
			"question_id":       pr.q.ID,
			"pair":              fmt.Sprintf("%d-%d", pr.i, pr.j),
			"chosen_steering":   c.Kind,
			"rejected_steering": r.Kind,
			"chosen_model":      c.Model,
			"rejected_model":    r.Model,
			"refine_rounds":     strconv.Itoa(rounds),
		},
	}
}

func meanEntropy(outs []outcome) float64 {
	sum, n := 0.0, 0
	for _, o := range outs {
		if h, ok := o.entropy(); ok {
			sum += h
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// otherDescription draws, from (seed, user, pair), the description of a
// user other than u among those whose persona is known ("" when none).
func (p *pipeline) otherDescription(u *user, pr pair) string {
	n := len(p.pool)
	self, found := slices.BinarySearchFunc(p.pool, u.Index, func(o *user, idx int) int { return o.Index - idx })
	if found {
		n--
	}
	if n <= 0 {
		return ""
	}
	k := p.rng("rejected-description", u.ID, pr.key()).IntN(n)
	if found && k >= self {
		k++
	}
	return p.pool[k].Description
}
