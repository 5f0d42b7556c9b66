package eval

import (
	"context"
	"fmt"
	"math"

	"fspo/episode"
	"fspo/fewshot"
	"fspo/judge"
	"fspo/model"
	"fspo/pref"
)

// Accuracy is the implicit-reward accuracy of one preference-trained model
// on the held-out pairs (METHOD.md §4): the share of pairs (in percent)
// whose implicit reward β·log πθ(y|x)/πref(y|x) (for ipo_norm, each
// log-ratio divided by its completion's length: the run's own margin,
// pref.Objective.Margin) ranks the chosen response
// above the rejected one (Rafailov et al. 2023, "Direct Preference
// Optimization", §5, eq. 5), with log-probs summed over the completion
// tokens under the prompt the model was trained with.
type Accuracy struct {
	judge.Summary
	Objective  string  `json:"objective"` // the run's loss, whose margin ranks the pair (pref.Objective.Margin)
	Beta       float64 `json:"beta"`
	BetaSource string  `json:"beta_source"` // "run" (its training config) or "default"
	Reference  string  `json:"reference"`
	RefSource  string  `json:"reference_source"`
	MeanMargin float64 `json:"mean_margin"` // mean β·h over the pairs
	// TooLong counts the pairs left out because prompt and completion do not
	// fit the model's positions.
	TooLong int `json:"too_long,omitempty"`
}

// scoreBatch is how many examples go through one scoring pass. A pass keeps
// every activation (its attention alone is B·heads·T²·layers floats, 35 MB
// per stories260K example of 470 positions) and pads every row to the
// longest, so batches stay small: on 72 held-out stories pairs, 2 per pass
// took 2/3 of the time and memory of 4.
const scoreBatch = 2

// implicitAccuracy scores every episode's chosen and rejected completion
// under policy and reference.
func implicitAccuracy(ctx context.Context, c Config, codec fewshot.Codec, all []episode.Episode, others *episode.Others, policy, ref *model.Model, obj pref.Objective) (judge.Summary, float64, int, error) {
	exs := make([]model.Example, 0, len(all))
	eps := make([]episode.Episode, 0, len(all))
	lens := make([][2]int, 0, len(all))
	tooLong := 0
	for i, ep := range all {
		other := others.For(ep, c.Seed)
		p, ch, rj, err := codec.Encode(ep, other)
		if err != nil {
			return judge.Summary{}, 0, 0, fmt.Errorf("episode %d (user %s): %w", i, ep.User, err)
		}
		if codec.Variant == episode.COT && ep.Query.RejectedDescription == "" && other == "" {
			return judge.Summary{}, 0, 0, fmt.Errorf("episode %d (user %s): the cot rejected completion needs another user's description and there is none", i, ep.User)
		}
		if n := fewshot.Positions(p, ch, rj); n > policy.Positions() {
			tooLong++ // counted in the report
			continue
		}
		exs = append(exs, model.Example{Prompt: p, Completions: [][]int{ch, rj}})
		eps = append(eps, ep)
		lens = append(lens, [2]int{len(ch), len(rj)})
	}
	if len(exs) == 0 {
		return judge.Summary{}, 0, tooLong, fmt.Errorf("all %d held-out pairs are longer than the model's %d positions", len(all), policy.Positions())
	}
	pol, err := sumLogProbs(ctx, policy, exs)
	if err != nil {
		return judge.Summary{}, 0, 0, err
	}
	rf, err := sumLogProbs(ctx, ref, exs)
	if err != nil {
		return judge.Summary{}, 0, 0, err
	}
	users := make([]string, len(eps))
	for i, ep := range eps {
		users[i] = ep.User
	}
	outs, margin := rankPairs(obj, pol, rf, lens)
	return judge.WinRate(outs, users, c.Seed), margin, tooLong, nil
}

// rankPairs scores each pair (policy and reference summed log-probs of
// chosen and rejected, and the completions' lengths) with the objective's
// own margin: an outcome of 1 when it ranks the chosen response first, else
// 0 (a zero margin counts as wrong); and the mean margin.
func rankPairs(obj pref.Objective, pol, ref [][2]float64, lens [][2]int) ([]judge.Outcome, float64) {
	outs := make([]judge.Outcome, len(pol))
	var margin float64
	for i := range pol {
		m := obj.Margin(pref.Pair{Chosen: pol[i][0], Rejected: pol[i][1], RefChosen: ref[i][0], RefRejected: ref[i][1], ChosenLen: lens[i][0], RejectedLen: lens[i][1]})
		margin += m
		if m > 0 {
			outs[i].Score = 1
		}
	}
	return outs, margin / float64(len(pol))
}

// pickByImplicitReward keeps, per episode, the sample with the highest
// implicit reward log πθ(y|x) − log πref(y|x) (β, common to all, does not
// change the order; per token for ipo_norm), x the episode's few-shot
// prompt and y the tokens the sample holds (samplePart); the first on
// ties. It also returns every sample's reward, rewards[i][s].
func pickByImplicitReward(ctx context.Context, codec fewshot.Codec, eps []episode.Episode, out [][]response, policy, ref *model.Model, perToken bool) (picks []response, rewards [][]float64, err error) {
	picks, rewards = make([]response, len(out)), make([][]float64, len(out))
	var pass *model.Pass
	for i, rs := range out {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		p, err := codec.Prompt(eps[i].Shots, eps[i].Query.Prompt, "")
		if err != nil {
			return nil, nil, err
		}
		room := policy.Positions() - len(p) + 1
		if room < 2 {
			return nil, nil, fmt.Errorf("episode %d (user %s): its prompt of %d tokens leaves no room in the model's %d positions", i, eps[i].User, len(p), policy.Positions())
		}
		comps := make([][]int, len(rs))
		for s, r := range rs {
			comps[s] = samplePart(codec, r, room)
		}
		ex := []model.Example{{Prompt: p, Completions: comps}}
		rewards[i] = make([]float64, len(rs))
		for _, m := range []struct {
			model *model.Model
			sign  float64
		}{{policy, 1}, {ref, -1}} {
			if pass, err = m.model.Score(ex, pass); err != nil {
				return nil, nil, err
			}
			for s := range rs {
				rewards[i][s] += m.sign * pass.Sum(0, s)
			}
		}
		picks[i] = rs[bestReward(rewards[i], comps, perToken)]
	}
	return picks, rewards, nil
}

// samplePart is what a sample holds, as scored by the implicit reward:
// the header, its text and, when it stopped by itself, the end token (a
// sample cut at the token cap did not end), cut to room tokens where the
// prompt leaves less (generation stopped there too).
func samplePart(codec fewshot.Codec, r response, room int) []int {
	comp := codec.Completion(r.Text, "")
	if r.Finish == "length" {
		comp = comp[:len(comp)-1]
	}
	return comp[:min(len(comp), room)]
}

// rewardAgreement is how often the implicit rewards order two samples of
// an episode as the user's exact reward does, over the pairs of samples
// whose exact rewards differ, and that number of pairs.
func rewardAgreement(eps []episode.Episode, out [][]response, rewards [][]float64, exact map[string]Rewarder) (float64, int) {
	agree, n := 0, 0
	for i, rs := range out {
		r := exact[eps[i].User]
		if r == nil {
			continue
		}
		truth := make([]float64, len(rs))
		for s, x := range rs {
			truth[s] = r.Reward(x.Text)
		}
		for a := range rs {
			for b := a + 1; b < len(rs); b++ {
				if truth[a] == truth[b] {
					continue
				}
				n++
				if (rewards[i][a] > rewards[i][b]) == (truth[a] > truth[b]) {
					agree++
				}
			}
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(agree) / float64(n), n
}

// bestReward is the index of the highest reward (divided by the
// completion's length when perToken), the first on ties.
func bestReward(rewards []float64, comps [][]int, perToken bool) int {
	best, bestV := 0, math.Inf(-1)
	for s, r := range rewards {
		if perToken {
			r /= float64(len(comps[s]))
		}
		if r > bestV {
			best, bestV = s, r
		}
	}
	return best
}

// sumLogProbs scores examples of two completions each, scoreBatch at a
// time: each completion's summed log-probability.
func sumLogProbs(ctx context.Context, m *model.Model, exs []model.Example) ([][2]float64, error) {
	var pass *model.Pass
	out := make([][2]float64, len(exs))
	for lo := 0; lo < len(exs); lo += scoreBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+scoreBatch, len(exs))
		var err error
		if pass, err = m.Score(exs[lo:hi], pass); err != nil {
			return nil, err
		}
		for k := lo; k < hi; k++ {
			out[k] = [2]float64{pass.Sum(k-lo, 0), pass.Sum(k-lo, 1)}
		}
	}
	return out, nil
}
