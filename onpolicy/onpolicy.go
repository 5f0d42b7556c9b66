// Package onpolicy labels a trained model's own answers: for each training
// user it samples several responses to the user's questions under the
// user's shots, scores them with the user's exact reward (a synthetic
// user's profile), and keeps the best and the worst as a preference pair
// when their rewards differ by a margin.
//
// Another few-shot IPO round on these pairs, against the model that wrote
// them, is online (iterative) preference optimization: the preference pairs
// are drawn from the current policy instead of a fixed offline pool (Xiong
// et al. 2024, "Iterative Preference Learning from Human Feedback", ICML;
// Guo et al. 2024, "Direct Language Model Alignment from Online AI
// Feedback"). The offline pairs differ in what the user cares about by
// construction; the policy's own answers mostly already carry it and differ
// in other ways, which is what a reranker by the implicit reward has to
// tell apart.
package onpolicy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/model"
)

// Source is the Source of every record Pairs makes.
const Source = "onpolicy"

// Rewarder is a user's exact reward for a response.
type Rewarder interface {
	Reward(text string) float64
}

// Options says how many answers to sample and which pairs to keep.
type Options struct {
	Shots       int     // examples of the user in each prompt (the policy's N)
	Samples     int     // answers per question, at least 2
	Passes      int     // episode passes over each user's records (each a new draw of shots and question)
	MinMargin   float64 // reward margin a kept pair needs (closer pairs are ties)
	Temperature float64 // sampling temperature
	TopP        float64 // nucleus mass
	MaxTokens   int     // response token cap
	Seed        int64
	// Done lists users whose pairs were made before (a resumed run): they
	// are skipped, and every other user gets the answers an uninterrupted
	// run gives it.
	Done map[string]bool
	// Emit, when not nil, receives each user's pairs as soon as the user is
	// done (for writing them out); returning an error stops the run.
	Emit func(user string, pairs []dataset.Record) error
	// Progress, when not nil, sees the users done so far.
	Progress func(done, total int)
}

// Stats counts what Pairs did.
type Stats struct {
	Users, Episodes, Samples int
	Pairs                    int     // pairs kept
	Ties                     int     // questions whose best and worst answers were closer than MinMargin
	Skipped                  int     // questions whose prompt leaves fewer positions than the answer cap
	MeanMargin               float64 // mean reward margin of the kept pairs
}

// Validate reports options Pairs cannot run with.
func (o Options) Validate() error {
	switch {
	case o.Samples < 2:
		return fmt.Errorf("onpolicy: samples %d: a pair needs at least 2 answers per question", o.Samples)
	case o.Passes < 1:
		return fmt.Errorf("onpolicy: passes %d: want at least 1", o.Passes)
	case o.Shots < 1:
		return fmt.Errorf("onpolicy: shots %d: the policy must read at least one example", o.Shots)
	case o.MinMargin < 0:
		return fmt.Errorf("onpolicy: min margin %g is negative", o.MinMargin)
	case o.MaxTokens < 1:
		return fmt.Errorf("onpolicy: max tokens %d: want at least 1", o.MaxTokens)
	case o.Temperature <= 0:
		return fmt.Errorf("onpolicy: temperature %g: sampling needs a positive temperature (several greedy answers are one answer)", o.Temperature)
	}
	return nil
}

// Pairs samples opt.Samples answers of m to every episode of the users in
// train (opt.Passes passes, episode.Build's windows) and returns, user by
// user in sorted order, the pairs of each episode's best and worst answer
// under rewards[user] that clear opt.MinMargin. For a COT codec the
// answers are sampled after the user's true description (the description
// part a COT completion is trained on), so the pair's two answers differ
// in the response alone, which the reward scores; the pair carries that
// description on both sides.
// Answers are seeded by the episode's place in the whole run, so a resumed
// run (opt.Done) and an uninterrupted one give the same pairs.
func Pairs(ctx context.Context, m *model.Model, codec fewshot.Codec, train map[string][]dataset.Record, rewards map[string]Rewarder, opt Options) ([]dataset.Record, Stats, error) {
	var st Stats
	if err := opt.Validate(); err != nil {
		return nil, st, err
	}
	users := slices.Sorted(maps.Keys(train))
	for _, u := range users {
		if rewards[u] == nil {
			return nil, st, fmt.Errorf("onpolicy: user %q has no exact reward (a synthetic user's profile)", u)
		}
	}
	eps := episode.Build(train, opt.Shots, opt.Passes, opt.Seed)
	first := map[string]int{} // user → index of its first episode
	for i := len(eps) - 1; i >= 0; i-- {
		first[eps[i].User] = i
	}
	var out []dataset.Record
	var margins float64
	for i, u := range users {
		if at, ok := first[u]; ok && !opt.Done[u] { // a user with too few records has no episode
			pairs, s, err := userPairs(ctx, m, codec, eps, at, rewards[u], opt)
			if err != nil {
				return out, st, fmt.Errorf("onpolicy: user %s: %w", u, err)
			}
			st.Users++
			st.Episodes += s.Episodes
			st.Samples += s.Samples
			st.Ties += s.Ties
			st.Skipped += s.Skipped
			st.Pairs += len(pairs)
			for _, p := range pairs {
				margins += *p.ChosenScore - *p.RejectedScore
			}
			out = append(out, pairs...)
			if opt.Emit != nil {
				if err := opt.Emit(u, pairs); err != nil {
					return out, st, err
				}
			}
		}
		if opt.Progress != nil {
			opt.Progress(i+1, len(users))
		}
	}
	if st.Episodes == 0 && st.Skipped > 0 {
		return out, st, fmt.Errorf("onpolicy: none of %d questions leaves room for the %d-token answer cap in the model's %d positions", st.Skipped, opt.MaxTokens, m.Positions())
	}
	if st.Pairs > 0 {
		st.MeanMargin = margins / float64(st.Pairs)
	}
	return out, st, nil
}

// userPairs samples the answers to the episodes of one user, which start
// at eps[at], and keeps each episode's best and worst. An episode whose
// prompt leaves fewer positions than the answer cap is skipped (the
// trainer would drop its pair as too long).
func userPairs(ctx context.Context, m *model.Model, codec fewshot.Codec, eps []episode.Episode, at int, r Rewarder, opt Options) ([]dataset.Record, Stats, error) {
	var st Stats
	user := eps[at].User
	var prompts [][]int
	var kept []int // indices into eps of the episodes sampled
	for i := at; i < len(eps) && eps[i].User == user; i++ {
		p, err := prompt(codec, eps[i])
		if err != nil {
			return nil, st, err
		}
		if m.Positions()-len(p) < opt.MaxTokens {
			st.Skipped++
			continue
		}
		kept = append(kept, i)
		for range opt.Samples {
			prompts = append(prompts, p)
		}
	}
	if len(kept) == 0 {
		return nil, st, nil
	}
	gen := model.GenOptions{MaxTokens: opt.MaxTokens, Temperature: float32(opt.Temperature), TopP: float32(opt.TopP),
		Stop: codec.Stop(true), Seed: uint64(opt.Seed) + uint64(at*opt.Samples)}
	outs, err := m.GenerateBatch(ctx, prompts, gen, nil)
	if err != nil {
		return nil, st, err
	}
	st.Episodes, st.Samples = len(kept), len(outs)
	var pairs []dataset.Record
	for e, i := range kept {
		ep := eps[i]
		texts := make([]string, opt.Samples)
		scores := make([]float64, opt.Samples)
		for s := range texts {
			texts[s] = codec.Text(outs[e*opt.Samples+s].Tokens)
			scores[s] = r.Reward(texts[s])
		}
		best, worst := extremes(scores)
		if scores[best]-scores[worst] < opt.MinMargin || texts[best] == texts[worst] {
			st.Ties++
			continue
		}
		rec := record(ep, i, texts[best], texts[worst], scores[best], scores[worst])
		if codec.Variant == episode.COT {
			rec.RejectedDescription = rec.Description // both answers were written after it
		}
		pairs = append(pairs, rec)
	}
	return pairs, st, nil
}

// prompt is what the policy answers after: the episode's prompt and the
// header, and for COT the user's description part.
func prompt(codec fewshot.Codec, ep episode.Episode) ([]int, error) {
	p, err := codec.Prompt(ep.Shots, ep.Query.Prompt, "")
	if err != nil {
		return nil, err
	}
	p = append(p, codec.Header()...)
	if codec.Variant == episode.COT {
		if ep.Query.Description == "" {
			return nil, fmt.Errorf("episode of query %s: a cot policy answers after the user's description, and the record has none", ep.Query.Key())
		}
		p = append(p, codec.DescriptionPart(ep.Query.Description)...)
	}
	return p, nil
}

// extremes returns the indices of the highest and the lowest score, the
// first of equals.
func extremes(scores []float64) (best, worst int) {
	for i, s := range scores {
		if s > scores[best] {
			best = i
		}
		if s < scores[worst] {
			worst = i
		}
	}
	return best, worst
}

// record is the pair of one episode's answers.
func record(ep episode.Episode, index int, chosen, rejected string, cs, rs float64) dataset.Record {
	h := sha256.Sum256([]byte(ep.User + "\x00" + ep.Query.Prompt + "\x00" + chosen + "\x00" + rejected))
	return dataset.Record{
		User: ep.User, Prompt: ep.Query.Prompt, Chosen: chosen, Rejected: rejected,
		Description: ep.Query.Description,
		ID:          Source + "-" + ep.User + "-" + hex.EncodeToString(h[:8]),
		Source:      Source, ChosenScore: &cs, RejectedScore: &rs,
		Meta: map[string]string{"episode": strconv.Itoa(index), "query": ep.Query.Key()},
	}
}
