package eval

import (
	"fmt"
	"sort"
	"strconv"

	"fspo/dataset"
	"fspo/episode"
	"fspo/judge"
)

// Sample is one judged pair, a line of samples.jsonl: everything needed to
// recompute the report's win rates (Summarize).
type Sample struct {
	User        string `json:"user"`
	Kind        string `json:"kind"`
	Description string `json:"description"` // the user's true description
	Method      string `json:"method"`
	Query       string `json:"query"` // the query record's key
	Prompt      string `json:"prompt"`
	Response    string `json:"response"`
	// ResponseDescription is the description fspo_cot wrote before its response.
	ResponseDescription string   `json:"response_description,omitempty"`
	BaselineResponse    string   `json:"baseline_response"`
	Reward              *float64 `json:"reward"`
	BaselineReward      *float64 `json:"baseline_reward"`
	// The judge's probability that the response shown first is preferred,
	// with the method's response first, then with the baseline's first, and
	// the verdicts they give ("method", "baseline" or "tie").
	PMethodFirst         float64 `json:"p_method_first"`
	PBaselineFirst       float64 `json:"p_baseline_first"`
	VerdictMethodFirst   string  `json:"verdict_method_first"`
	VerdictBaselineFirst string  `json:"verdict_baseline_first"`
	// Dropped: the two orders disagree (left out of win rates).
	Dropped        bool    `json:"dropped"`
	Score          float64 `json:"score"` // 1 win, 0.5 tie, 0 loss
	Tokens         int     `json:"tokens"`
	BaselineTokens int     `json:"baseline_tokens"`
	Finish         string  `json:"finish"`
	ParseError     string  `json:"parse_error,omitempty"`
	// ContextLimited: the prompt left less room in the model's context
	// than the token cap, so the response could be cut shorter.
	ContextLimited bool `json:"context_limited,omitempty"`
}

// Report is report.json.
type Report struct {
	// Winrates is each evaluated method's win rate against base in percent
	// (base itself: 50), over every held-out user; CI95 its interval.
	Winrates map[string]float64    `json:"winrates"`
	CI95     map[string][2]float64 `json:"ci95"`
	// RewardAccuracy is the implicit-reward accuracy as a fraction in
	// [0, 1] (Accuracy has the details, in percent).
	RewardAccuracy map[string]float64 `json:"reward_accuracy"`
	Config         ReportConfig       `json:"config"`

	Methods []string                            `json:"methods"` // evaluated, in report order
	Absent  map[string]string                   `json:"absent"`  // method → why it was not evaluated
	Models  map[string]string                   `json:"models"`  // method → model file
	Overall map[string]judge.Summary            `json:"overall"`
	ByKind  map[string]map[string]judge.Summary `json:"by_kind"` // kind → method → win rate
	// LC is the length-controlled win rate (judge.LengthControlled) per
	// method; LCErrors says why a method has none.
	LC       map[string]judge.LC `json:"lc_winrates"`
	LCErrors map[string]string   `json:"lc_errors,omitempty"`
	Users    map[string]int      `json:"users"`   // kind → held-out users evaluated
	Queries  int                 `json:"queries"` // judged (user, query) pairs per method
	Accuracy map[string]Accuracy `json:"accuracy"`
	// MeanTokens is each method's mean response length in tokens.
	MeanTokens  map[string]float64 `json:"mean_tokens"`
	MeanReward  map[string]float64 `json:"mean_reward,omitempty"`
	Dropped     map[string]int     `json:"dropped"`      // pairs whose two orders disagreed
	ParseErrors map[string]int     `json:"parse_errors"` // COT outputs without a response part, counted as losses
	// ContextLimited counts responses whose room in the context was less
	// than the token cap.
	ContextLimited map[string]int     `json:"context_limited"`
	Timings        map[string]float64 `json:"timings_s"`
	// BestOf is FSPO's win rate with one sample ("1") and with the best of
	// Config.BestOf by implicit reward (key: that number); BestOfCI95 their
	// intervals.
	BestOf     map[string]float64    `json:"best_of,omitempty"`
	BestOfCI95 map[string][2]float64 `json:"best_of_ci95,omitempty"`
	// BestOfAgreement says how well the implicit reward ranks FSPO's own
	// samples: the share of pairs of one episode's samples it orders as
	// the user's exact reward does (only with an exact reward judge).
	BestOfAgreement *RewardAgreement `json:"best_of_reward_agreement,omitempty"`
	// COTTrueDescription is FSPO-COT's win rate when it states each user's
	// true description instead of its own guess; COTTrueDescriptionCI95 its
	// interval.
	COTTrueDescription     *float64    `json:"cot_true_description,omitempty"`
	COTTrueDescriptionCI95 *[2]float64 `json:"cot_true_description_ci95,omitempty"`
	// Elicitation holds the curves of FSPO with actively and randomly
	// chosen labels (Config.Elicitation).
	Elicitation *Elicitation `json:"elicitation,omitempty"`
	// JudgeUsage counts an LLM judge's calls, tokens and cost.
	JudgeUsage *judge.Usage `json:"judge_usage,omitempty"`
}

// RewardAgreement is the share of sample pairs (with different exact
// rewards) that the implicit reward orders as the exact reward does.
type RewardAgreement struct {
	Fraction float64 `json:"fraction"`
	Pairs    int     `json:"pairs"`
}

// ReportConfig records what was evaluated and how.
type ReportConfig struct {
	Data                   string                      `json:"data"`
	DataFiles              map[string]dataset.FileInfo `json:"data_files"` // the manifest's hashes, verified
	Base                   string                      `json:"base"`
	Tokenizer              string                      `json:"tokenizer"`
	Runs                   map[string]string           `json:"runs"`
	Refs                   map[string]string           `json:"refs,omitempty"`
	Judge                  string                      `json:"judge"`
	Shots                  int                         `json:"shots"`
	Layout                 string                      `json:"layout"`
	Queries                int                         `json:"queries_per_user"`
	OracleK                int                         `json:"oracle_k"`
	Temperature            float64                     `json:"temperature"`
	DescriptionTemperature float64                     `json:"description_temperature"`
	TopP                   float64                     `json:"top_p"`
	MaxTokens              map[string]int              `json:"max_tokens"` // response cap per prompt variant
	Seed                   int64                       `json:"seed"`
	Resamples              int                         `json:"bootstrap_resamples"`
	BaseNote               string                      `json:"base_prompt"`
}

func newReport(c Config, judgeLabel string, d *data, g *generator) *Report {
	r := &Report{
		Winrates: map[string]float64{}, CI95: map[string][2]float64{}, RewardAccuracy: map[string]float64{},
		Absent: map[string]string{}, Models: map[string]string{}, Accuracy: map[string]Accuracy{},
		Timings: map[string]float64{}, Users: map[string]int{},
		Config: ReportConfig{Data: c.Data, DataFiles: d.manifest.Files, Base: c.Base, Tokenizer: c.Tokenizer, Runs: c.Runs, Refs: c.Refs,
			Judge: judgeLabel, Shots: c.Shots, Layout: c.Layout, Queries: c.Queries, OracleK: c.OracleK, Temperature: c.Temperature, DescriptionTemperature: c.DescriptionTemperature,
			TopP: c.TopP, Seed: c.Seed, Resamples: judge.Resamples,
			MaxTokens: map[string]int{"response": g.maxTokens(episode.Plain), "cot": g.maxTokens(episode.COT)},
			BaseNote:  "base and oracle continue the query's story opening directly (BOS + opening), the base model's natural use"},
	}
	if r.Config.Runs == nil {
		r.Config.Runs = map[string]string{}
	}
	for _, k := range d.kinds {
		r.Users[k]++
	}
	r.Queries = len(d.episodes)
	return r
}

// Table is the win-rate part of a report, computed from samples alone.
type Table struct {
	Overall        map[string]judge.Summary
	ByKind         map[string]map[string]judge.Summary
	LC             map[string]judge.LC
	LCErrors       map[string]string
	MeanTokens     map[string]float64
	MeanReward     map[string]float64
	Dropped        map[string]int
	ParseErrors    map[string]int
	ContextLimited map[string]int
}

// Summarize computes each method's win rate against the baseline with its
// bootstrap interval over users (judge.WinRate: dropped pairs left out,
// seeded), overall and per user kind, and the length-controlled win rate.
// Anyone can recompute report.json's numbers from samples.jsonl with it.
func Summarize(samples []Sample, seed int64) Table {
	t := Table{Overall: map[string]judge.Summary{}, ByKind: map[string]map[string]judge.Summary{}, LC: map[string]judge.LC{},
		LCErrors: map[string]string{}, MeanTokens: map[string]float64{}, MeanReward: map[string]float64{},
		Dropped: map[string]int{}, ParseErrors: map[string]int{}, ContextLimited: map[string]int{}}
	type group struct {
		outs  []judge.Outcome
		users []string
	}
	all := map[string]*group{}
	byKind := map[string]map[string]*group{}
	add := func(m map[string]*group, key string, s Sample) {
		g := m[key]
		if g == nil {
			g = &group{}
			m[key] = g
		}
		g.outs = append(g.outs, s.outcome())
		g.users = append(g.users, s.User)
	}
	count := map[string]int{}
	rewarded := map[string]int{}
	for _, s := range samples {
		count[s.Method]++
		t.MeanTokens[s.Method] += float64(s.Tokens)
		if s.Reward != nil {
			t.MeanReward[s.Method] += *s.Reward
			rewarded[s.Method]++
		}
		if s.ParseError != "" {
			t.ParseErrors[s.Method]++
		}
		if s.ContextLimited {
			t.ContextLimited[s.Method]++
		}
		if s.Dropped {
			t.Dropped[s.Method]++
		}
		add(all, s.Method, s)
		if byKind[s.Kind] == nil {
			byKind[s.Kind] = map[string]*group{}
		}
		add(byKind[s.Kind], s.Method, s)
	}
	for m, n := range count {
		t.MeanTokens[m] /= float64(n)
		if rewarded[m] > 0 {
			t.MeanReward[m] /= float64(rewarded[m])
		} else {
			delete(t.MeanReward, m)
		}
	}
	for m, g := range all {
		if w := judge.WinRate(g.outs, g.users, seed); w.N > 0 {
			t.Overall[m] = w
		}
		lc, err := judge.LengthControlled(g.outs)
		if err != nil {
			t.LCErrors[m] = err.Error()
		} else {
			t.LC[m] = lc
		}
	}
	for k, ms := range byKind {
		t.ByKind[k] = map[string]judge.Summary{}
		for m, g := range ms {
			if w := judge.WinRate(g.outs, g.users, seed); w.N > 0 {
				t.ByKind[k][m] = w
			}
		}
	}
	return t
}

func (r *Report) summarize(samples []Sample, c Config) {
	t := Summarize(samples, c.Seed)
	r.Overall, r.ByKind, r.LC, r.LCErrors = t.Overall, t.ByKind, t.LC, t.LCErrors
	r.MeanTokens, r.MeanReward = t.MeanTokens, t.MeanReward
	r.Dropped, r.ParseErrors, r.ContextLimited = t.Dropped, t.ParseErrors, t.ContextLimited
	for m, w := range t.Overall {
		r.Winrates[m] = w.Percent
		r.CI95[m] = [2]float64{w.Low, w.High}
	}
	if best, ok := t.Overall[FSPOBest]; ok {
		one := t.Overall[FSPO]
		k := strconv.Itoa(c.BestOf)
		r.BestOf = map[string]float64{"1": one.Percent, k: best.Percent}
		r.BestOfCI95 = map[string][2]float64{"1": {one.Low, one.High}, k: {best.Low, best.High}}
	}
	given, ok := t.Overall[FSPOCOTGiven]
	if !ok && c.GivenDescription {
		given, ok = t.Overall[FSPOCOT]
	}
	if ok {
		r.COTTrueDescription, r.COTTrueDescriptionCI95 = &given.Percent, &[2]float64{given.Low, given.High}
	}
}

// sortedKinds lists the kinds present, in report order.
func sortedKinds(byKind map[string]map[string]judge.Summary) []string {
	var ks []string
	for _, k := range Kinds {
		if _, ok := byKind[k]; ok {
			ks = append(ks, k)
		}
	}
	var extra []string
	for k := range byKind {
		if !isOneOf(k, Kinds) {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	return append(ks, extra...)
}

func fmtCell(w judge.Summary, ok bool) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.1f [%.1f, %.1f]", w.Percent, w.Low, w.High)
}
