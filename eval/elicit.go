package eval

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"fspo/dataset"
	"fspo/elicit"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/model"
	"fspo/pref"

	"golang.org/x/sync/errgroup"
)

// ElicitLabels are the label counts of the elicitation curves.
var ElicitLabels = []int{1, 2, 4, 8}

// Elicitation is report.json's "elicitation": the FSPO run's win rate
// against base on each held-out user's queries when the user has labelled
// k pairs, chosen at random or actively (package elicit), for each k of
// ElicitLabels. The pairs come from the user's own records that are not
// evaluation queries; the user's answer to a pair is the record's label.
type Elicitation struct {
	Random map[string]float64 `json:"random"` // k → win rate (percent)
	Active map[string]float64 `json:"active"`
	// CI95 holds the intervals: strategy ("random", "active") → k → [low, high].
	CI95 map[string]map[string][2]float64 `json:"ci95"`
	// ShotsKept is the mean number of the k labelled pairs the prompt held
	// (the oldest are left out when they do not fit the context).
	ShotsKept map[string]map[string]float64 `json:"mean_shots_kept"`
	Members   int                           `json:"committee_members"`
	MeanPool  float64                       `json:"mean_candidate_pairs"`
	// ScoringS is the committee's scoring time per user (every member on
	// every candidate pair, policy and reference), ChoiceUS the time of one
	// choice given those scores.
	ScoringS float64 `json:"committee_scoring_s_per_user"`
	ChoiceUS float64 `json:"choice_us"`
}

// Elicitation strategies.
const (
	Random = "random"
	Active = "active"
)

// elicitUser is one held-out user's candidate pairs and the order in which
// each strategy asks them (indices into pool).
type elicitUser struct {
	pool  []dataset.Record
	order map[string][]int
}

// elicitationAll measures the curves into rep.Elicitation; chosen holds the
// base responses the new ones are judged against.
func elicitationAll(ctx context.Context, c Config, g *generator, ms *models, d *data, runs map[string]*loaded, chosen map[string][]response, rep *Report) error {
	if !c.Elicitation {
		return nil
	}
	defer func(t0 time.Time) { rep.Timings["elicitation"] = time.Since(t0).Seconds() }(time.Now())
	l, ok := runs[FSPO]
	if !ok {
		rep.Absent["elicitation"] = "needs the fspo run"
		return nil
	}
	refPath, _, err := referenceFor(FSPO, l, c)
	if err != nil {
		return fmt.Errorf("eval elicitation: %w", err)
	}
	ref, err := ms.load(refPath)
	if err != nil {
		return fmt.Errorf("eval elicitation: reference: %w", err)
	}
	obj, _ := objectiveOf(l, c.Beta)
	codec := g.codec(variantOf[FSPO])
	members := elicit.Contexts(d.train, cmp.Or(c.ElicitMembers, elicit.DefaultMembers), c.Shots, c.Seed)
	e := &Elicitation{Random: map[string]float64{}, Active: map[string]float64{}, CI95: map[string]map[string][2]float64{},
		ShotsKept: map[string]map[string]float64{}, Members: len(members)}
	t0 := time.Now()
	users := map[string]*elicitUser{}
	var choice time.Duration
	choices := 0
	for _, u := range sortedUsers(d.test) {
		eu := &elicitUser{pool: candidatePairs(d, u), order: map[string][]int{}}
		n := min(len(eu.pool), slices.Max(ElicitLabels))
		if n == 0 {
			return fmt.Errorf("eval elicitation: held-out user %s has no records besides the evaluation queries", u)
		}
		p, err := committeeProbs(ctx, codec, members, eu.pool, l.model, ref.model, obj)
		if err != nil {
			return fmt.Errorf("eval elicitation: user %s: %w", u, err)
		}
		com, err := elicit.NewCommittee(p)
		if err != nil {
			return err
		}
		tc := time.Now()
		eu.order[Active] = activeOrder(com, n)
		choice += time.Since(tc)
		choices += n
		eu.order[Random] = randomOrder(len(eu.pool), n, c.Seed, u)
		users[u] = eu
		e.MeanPool += float64(len(eu.pool)) / float64(len(d.test))
		c.progress("elicitation: committee of %d scored user %s's %d candidate pairs (%.1fs)", len(members), u, len(eu.pool), time.Since(t0).Seconds())
	}
	e.ScoringS = time.Since(t0).Seconds() / float64(len(d.test))
	e.ChoiceUS = float64(choice.Microseconds()) / float64(choices)
	return elicitationCurves(ctx, c, g, d, l.model, users, chosen, e, rep)
}

// elicitationCurves generates and judges the FSPO run's answers for every
// strategy and label count.
func elicitationCurves(ctx context.Context, c Config, g *generator, d *data, m *model.Model, users map[string]*elicitUser, chosen map[string][]response, e *Elicitation, rep *Report) error {
	var methods []string
	all := map[string][]response{Base: chosen[Base]}
	for _, strategy := range []string{Random, Active} {
		e.ShotsKept[strategy] = map[string]float64{}
		for _, k := range ElicitLabels {
			method := fmt.Sprintf("fspo_%s_%d", strategy, k)
			eps, kept, err := g.elicitedEpisodes(d.episodes, users, strategy, k, m)
			if err != nil {
				return fmt.Errorf("eval elicitation %s: %w", method, err)
			}
			out, err := g.generate(ctx, job{method: method, variant: variantOf[FSPO], k: 1, model: m}, eps)
			if err != nil {
				return err
			}
			all[method] = pick(out, method, c, eps)
			methods = append(methods, method)
			e.ShotsKept[strategy][strconv.Itoa(k)] = kept
		}
	}
	samples, err := judgeAll(ctx, c, d, methods, all)
	if err != nil {
		return err
	}
	t := Summarize(samples, c.Seed)
	for _, strategy := range []string{Random, Active} {
		e.CI95[strategy] = map[string][2]float64{}
		for _, k := range ElicitLabels {
			s := t.Overall[fmt.Sprintf("fspo_%s_%d", strategy, k)]
			key := strconv.Itoa(k)
			rates := e.Random
			if strategy == Active {
				rates = e.Active
			}
			rates[key] = s.Percent
			e.CI95[strategy][key] = [2]float64{s.Low, s.High}
		}
	}
	rep.Elicitation = e
	return nil
}

// elicitedEpisodes gives each evaluation episode the first k pairs its user
// was asked under the strategy, as labelled (oldest first), leaving out the
// oldest while the prompt leaves less room than the response cap; and the
// mean number kept.
func (g *generator) elicitedEpisodes(eps []episode.Episode, users map[string]*elicitUser, strategy string, k int, m *model.Model) ([]episode.Episode, float64, error) {
	out := make([]episode.Episode, len(eps))
	limit := g.maxTokens(variantOf[FSPO])
	kept := 0
	for i, ep := range eps {
		eu := users[ep.User]
		order := eu.order[strategy][:min(k, len(eu.order[strategy]))]
		shots := make([]dataset.Record, len(order))
		for s, j := range order {
			shots[s] = eu.pool[j]
		}
		for {
			e := episode.Episode{User: ep.User, Shots: shots, Query: ep.Query}
			p, err := g.prompt(variantOf[FSPO], e)
			if err != nil {
				return nil, 0, err
			}
			if len(p)+limit <= m.Positions() || len(shots) == 0 {
				out[i] = e
				break
			}
			shots = shots[1:]
		}
		kept += len(shots)
	}
	return out, float64(kept) / float64(len(eps)), nil
}

// candidatePairs are the user's records that are not evaluation queries,
// in key order: the pairs the user can be asked.
func candidatePairs(d *data, user string) []dataset.Record {
	queries := map[string]bool{}
	for _, ep := range d.episodes {
		if ep.User == user {
			queries[ep.Query.Key()] = true
		}
	}
	var pool []dataset.Record
	for _, r := range d.test[user] {
		if !queries[r.Key()] {
			pool = append(pool, r)
		}
	}
	slices.SortFunc(pool, func(a, b dataset.Record) int { return strings.Compare(a.Key(), b.Key()) })
	return pool
}

// committeeProbs scores every pool pair under every member's context with
// policy and reference: P[m][j] is member m's probability that the user
// prefers pair j's Chosen (elicit.Prob of the run's margin). A member's
// pairs share its context, scored once (memberMargins). A pair too long for
// the model under a member's context gets ½ (that member has no say on it).
func committeeProbs(ctx context.Context, codec fewshot.Codec, members [][]dataset.Record, pool []dataset.Record, policy, ref *model.Model, obj pref.Objective) ([][]float64, error) {
	p := make([][]float64, len(members))
	grp, gctx := errgroup.WithContext(ctx)
	grp.SetLimit(scoringWorkers)
	for m, shots := range members {
		grp.Go(func() error {
			margins, err := memberMargins(gctx, codec, shots, pool, policy, ref, obj)
			if err != nil {
				return err
			}
			p[m] = make([]float64, len(pool))
			for j, mg := range margins {
				p[m][j] = 0.5
				if !math.IsNaN(mg) {
					p[m][j] = elicit.Prob(obj.Kind, mg)
				}
			}
			return nil
		})
	}
	if err := grp.Wait(); err != nil {
		return nil, err
	}
	return p, nil
}

// memberMargins is the run's margin (β·h) of each pool pair under one
// member's context, NaN where prompt and completion do not fit the model.
// The prompts share the context: it is computed once and each pair's
// question and completions continue it (model.ContinuationLogProbs).
func memberMargins(ctx context.Context, codec fewshot.Codec, shots, pool []dataset.Record, policy, ref *model.Model, obj pref.Objective) ([]float64, error) {
	prompts := make([][]int, len(pool))
	comps := make([][2][]int, len(pool))
	for j, r := range pool {
		var err error
		if prompts[j], comps[j][0], comps[j][1], err = codec.Encode(episode.Episode{Shots: shots, Query: r}, ""); err != nil {
			return nil, err
		}
	}
	shared := commonPrefix(prompts)
	var conts []model.Continuation
	var at []int
	for j, pr := range prompts {
		if fewshot.Positions(pr, comps[j][0], comps[j][1]) > policy.Positions() {
			continue
		}
		for _, c := range comps[j] {
			tail := pr[shared:]
			conts = append(conts, model.Continuation{Tokens: append(slices.Clip(tail), c...), From: len(tail)})
		}
		at = append(at, j)
	}
	margins := make([]float64, len(pool))
	for j := range margins {
		margins[j] = math.NaN()
	}
	if len(conts) == 0 {
		return margins, nil
	}
	pol, err := policy.ContinuationLogProbs(ctx, prompts[0][:shared], conts)
	if err != nil {
		return nil, err
	}
	rf, err := ref.ContinuationLogProbs(ctx, prompts[0][:shared], conts)
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	for k, j := range at {
		margins[j] = obj.Margin(pref.Pair{Chosen: pol[2*k], Rejected: pol[2*k+1], RefChosen: rf[2*k], RefRejected: rf[2*k+1],
			ChosenLen: len(comps[j][0]), RejectedLen: len(comps[j][1])})
	}
	return margins, nil
}

// commonPrefix is the length of the tokens every prompt starts with, at
// least 1 (BOS) and short of the shortest prompt's last token (a
// continuation reads the token before it).
func commonPrefix(prompts [][]int) int {
	n := len(prompts[0]) - 1
	for _, p := range prompts[1:] {
		n = min(n, len(p)-1)
		for i := range n {
			if p[i] != prompts[0][i] {
				n = i
				break
			}
		}
	}
	return max(n, 1)
}

// activeOrder asks n pairs one after the other, each the committee's
// choice given the answers so far; the user's answer to a pool pair is its
// label (Chosen first).
func activeOrder(c elicit.Committee, n int) []int {
	answers := map[int]bool{}
	var order []int
	for range n {
		j, _ := c.Next(answers)
		if j < 0 {
			break
		}
		answers[j] = true
		order = append(order, j)
	}
	return order
}

// randomOrder is a seeded random choice of n of the pool's indices.
func randomOrder(pool, n int, seed int64, user string) []int {
	h := uint64(0)
	for _, b := range []byte(user) {
		h = h*1099511628211 ^ uint64(b)
	}
	perm := rand.New(rand.NewPCG(uint64(seed), h)).Perm(pool)
	return perm[:n]
}

func sortedUsers[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
