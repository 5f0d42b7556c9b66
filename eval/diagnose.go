package eval

import (
	"fmt"
	"math"
	"sort"

	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/model"
)

// ProbeReport says whether a model reads its few-shot context: the
// chosen-minus-rejected log-prob margin of each query under the user's own
// shots and under another user's shots (the episode half the list away).
type ProbeReport struct {
	Episodes  int     `json:"episodes"`
	AccOwn    float64 `json:"acc_own"`    // share of queries with margin > 0, own shots
	AccOther  float64 `json:"acc_other"`  // the same under another user's shots
	MeanOwn   float64 `json:"mean_own"`   // mean margin (nats), own shots
	MeanOther float64 `json:"mean_other"` // mean margin, another user's shots
	Diff      float64 `json:"diff"`       // mean own − other: what the shots are worth
	SE        float64 `json:"se"`         // its standard error
}

func (r ProbeReport) String() string {
	return fmt.Sprintf("%d episodes: accuracy %.3f with the user's own shots, %.3f with another user's; mean log p(chosen) − log p(rejected): own %.3f, other %.3f; own − other %.3f ± %.3f nats",
		r.Episodes, r.AccOwn, r.AccOther, r.MeanOwn, r.MeanOther, r.Diff, r.SE)
}

// Probe builds one pass of episodes per user of byUser (shots each, seeded)
// and scores every query's pair under its own and another user's shots.
// It needs episodes of at least two users.
func Probe(m *model.Model, c fewshot.Codec, byUser map[string][]dataset.Record, shots int, seed int64) (ProbeReport, error) {
	eps := episode.Build(byUser, shots, 1, seed)
	users := map[string]bool{}
	for _, ep := range eps {
		users[ep.User] = true
	}
	if len(users) < 2 {
		return ProbeReport{}, fmt.Errorf("probe: episodes of %d user(s); another user's shots need at least 2", len(users))
	}
	r := ProbeReport{Episodes: len(eps)}
	var sq float64
	for i, ep := range eps {
		other := eps[(i+len(eps)/2)%len(eps)]
		for k := 1; other.User == ep.User; k++ { // half the list away, or the next other user
			other = eps[(i+len(eps)/2+k)%len(eps)]
		}
		var d [2]float64
		for k, s := range [][]dataset.Record{ep.Shots, other.Shots} {
			p, err := c.Prompt(s, ep.Query.Prompt, "")
			if err != nil {
				return r, fmt.Errorf("probe: episode %d (user %s): %w", i, ep.User, err)
			}
			ex := model.Example{Prompt: p, Completions: [][]int{c.Completion(ep.Query.Chosen, ""), c.Completion(ep.Query.Rejected, "")}}
			if n := fewshot.Positions(ex.Prompt, ex.Completions...); n > m.Positions() {
				return r, fmt.Errorf("probe: episode %d (user %s) needs %d positions, the model has %d: use fewer shots", i, ep.User, n, m.Positions())
			}
			pass, err := m.Score([]model.Example{ex}, nil)
			if err != nil {
				return r, fmt.Errorf("probe: %w", err)
			}
			d[k] = pass.Sum(0, 0) - pass.Sum(0, 1)
		}
		r.MeanOwn += d[0]
		r.MeanOther += d[1]
		r.AccOwn += b2f(d[0] > 0)
		r.AccOther += b2f(d[1] > 0)
		sq += (d[0] - d[1]) * (d[0] - d[1])
	}
	n := float64(len(eps))
	r.MeanOwn, r.MeanOther, r.AccOwn, r.AccOther = r.MeanOwn/n, r.MeanOther/n, r.AccOwn/n, r.AccOther/n
	r.Diff = r.MeanOwn - r.MeanOther
	r.SE = math.Sqrt(math.Max(sq/n-r.Diff*r.Diff, 0) / n)
	return r, nil
}

// MarginReport splits a preference-trained model's log-ratio margin
// h = [log πθ(y_w) − log πref(y_w)] − [log πθ(y_l) − log πref(y_l)] over
// pairs into the part its COT completions' descriptions (with the separator
// before the response) earn and the part the responses earn; for a plain
// model all of h is the response's.
type MarginReport struct {
	Pairs       int     `json:"pairs"`
	Mean        float64 `json:"mean"`        // mean h (nats)
	Description float64 `json:"description"` // its description part
	Response    float64 `json:"response"`    // its response part
	Positive    float64 `json:"positive"`    // share of pairs with h > 0
	PosDesc     float64 `json:"pos_description"`
	PosResp     float64 `json:"pos_response"`
}

func (r MarginReport) String() string {
	return fmt.Sprintf("%d pairs: mean h %.2f nats = description %.2f + response %.2f; h > 0 on %.0f%% (description part %.0f%%, response part %.0f%%)",
		r.Pairs, r.Mean, r.Description, r.Response, 100*r.Positive, 100*r.PosDesc, 100*r.PosResp)
}

// Margins scores up to max pairs (one pass of episodes over byUser, with the
// users' own rejected descriptions or another user's for COT) under policy
// and ref.
func Margins(policy, ref *model.Model, c fewshot.Codec, byUser map[string][]dataset.Record, shots, max int, seed int64) (MarginReport, error) {
	eps := episode.Build(byUser, shots, 1, seed)
	sort.SliceStable(eps, func(a, b int) bool { return eps[a].User < eps[b].User })
	others := episode.NewOthers(episode.Descriptions(byUser))
	var exs, descs []model.Example
	for i, ep := range eps {
		if len(exs) == max {
			break
		}
		p, ch, rj, err := c.Encode(ep, others.For(ep, seed))
		if err != nil {
			return MarginReport{}, fmt.Errorf("margins: episode %d (user %s): %w", i, ep.User, err)
		}
		if fewshot.Positions(p, ch, rj) > policy.Positions() {
			continue // left out, as in training
		}
		exs = append(exs, model.Example{Prompt: p, Completions: [][]int{ch, rj}})
		if c.Variant == episode.COT {
			h := len(c.Header())
			dc, dr := c.DescriptionEnd(ch[h:]), c.DescriptionEnd(rj[h:])
			if dc < 0 || dr < 0 {
				return MarginReport{}, fmt.Errorf("margins: episode %d: a COT completion without the separator", i)
			}
			descs = append(descs, model.Example{Prompt: p, Completions: [][]int{ch[:h+dc], rj[:h+dr]}})
		}
	}
	if len(exs) == 0 {
		return MarginReport{}, fmt.Errorf("margins: no pair fits the model's %d positions", policy.Positions())
	}
	total, err := logRatioMargins(policy, ref, exs)
	if err != nil {
		return MarginReport{}, err
	}
	desc := make([]float64, len(exs))
	if descs != nil {
		if desc, err = logRatioMargins(policy, ref, descs); err != nil {
			return MarginReport{}, err
		}
	}
	r := MarginReport{Pairs: len(exs)}
	for i := range total {
		r.Mean += total[i]
		r.Description += desc[i]
		r.Positive += b2f(total[i] > 0)
		r.PosDesc += b2f(desc[i] > 0)
		r.PosResp += b2f(total[i]-desc[i] > 0)
	}
	n := float64(len(exs))
	r.Mean, r.Description, r.Positive, r.PosDesc, r.PosResp = r.Mean/n, r.Description/n, r.Positive/n, r.PosDesc/n, r.PosResp/n
	r.Response = r.Mean - r.Description
	return r, nil
}

// logRatioMargins is h of each example's (chosen, rejected) pair.
func logRatioMargins(policy, ref *model.Model, exs []model.Example) ([]float64, error) {
	out := make([]float64, len(exs))
	var pass *model.Pass
	var err error
	for lo := 0; lo < len(exs); lo += scoreBatch {
		hi := min(lo+scoreBatch, len(exs))
		for _, s := range []struct {
			m    *model.Model
			sign float64
		}{{policy, 1}, {ref, -1}} {
			if pass, err = s.m.Score(exs[lo:hi], pass); err != nil {
				return nil, fmt.Errorf("margins: %w", err)
			}
			for k := lo; k < hi; k++ {
				out[k] += s.sign * (pass.Sum(k-lo, 0) - pass.Sum(k-lo, 1))
			}
		}
	}
	return out, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ReadSplit reads a data folder's records (checked against its manifest)
// grouped by user: the training users' and the held-out users'.
func ReadSplit(dir string) (train, test map[string][]dataset.Record, err error) {
	d, err := loadData(Config{Data: dir})
	if err != nil {
		return nil, nil, err
	}
	return d.train, d.test, nil
}
