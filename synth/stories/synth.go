package stories

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"fspo/dataset"
	"fspo/episode"
	"fspo/model"
	"fspo/tokenizer"

	"fspo/atomicfile"
)

// Output names inside the data directory.
const (
	PreferencesName = dataset.FileName
	ConfigName      = "config.json"
)

// Options controls Synthesize. Every field but Out and Log is part of the
// run's configuration (config.json): a rerun into the same directory must
// use the same values, and then resumes.
type Options struct {
	Out   string    `json:"-"` // data directory
	Log   io.Writer `json:"-"` // progress lines; nil for none
	Model string    `json:"model"`
	// Users is the number of users: two thirds train, the rest split
	// between heldout, interpolated and unseen users.
	Users int `json:"users"`
	// TestUsers is how many of them are held out (split evenly between
	// heldout, interpolated and unseen); 0: a third.
	TestUsers int `json:"test_users,omitempty"`
	// BestChosen makes one side of every pair a best candidate of its
	// opening for the user (the other drawn at random), instead of two
	// random candidates: the preferred responses then show what the user
	// wants, and few shots say more about the user.
	BestChosen bool `json:"best_chosen,omitempty"`
	// Descriptions is the phrasing of user and persona descriptions:
	// Varied ("" is Varied) or Canonical.
	Descriptions string `json:"descriptions,omitempty"`
	Seed         int64  `json:"seed"`
	// Prompts and HeldOutPrompts are how many of TrainPrompts and
	// HeldOutPrompts to use.
	Prompts        int `json:"prompts"`
	HeldOutPrompts int `json:"held_out_prompts"`
	// PoolSize is the number of candidates per opening.
	PoolSize int `json:"pool_size"`
	// Unsteered makes every Unsteered-th candidate of an opening the base
	// model's own continuation, without persona steering (0: none): the
	// responses a personalized model must beat.
	Unsteered    int `json:"unsteered"`
	PairsPerUser int `json:"pairs_per_user"`
	// MinMargin is the least reward difference for a pair to be labelled;
	// closer pairs are ties and dropped. Half a mention of a weight-0.5 value
	// is 0.25.
	MinMargin float64 `json:"min_margin"`
	// Noise is the Bradley–Terry temperature of the labels, in reward units
	// (0: labels follow the reward exactly). At 0.1 a pair of margin 0.25 is
	// flipped with probability σ(−2.5) ≈ 8%, one of margin 0.5 with 0.7%.
	Noise       float64 `json:"noise"`
	Temperature float64 `json:"temperature"`
	TopP        float64 `json:"top_p"`
	// ShortTokens and LongTokens cap a response's tokens (steering text
	// included) for short and long personas. Long responses of 40 tokens
	// keep a 4-shot episode inside stories260K's 512 positions.
	ShortTokens int `json:"short_tokens"`
	LongTokens  int `json:"long_tokens"`
	// Batch is how many candidates are generated per batched call; it fixes
	// the random streams, so it is part of the configuration.
	Batch int `json:"batch"`
}

// DefaultOptions is the default run: 72 users (48 train, 24 held out), 40
// training and 12 held-out openings, 16 candidates each, 24 pairs per user.
func DefaultOptions() Options {
	return Options{
		Model: "stories260K", Users: 72, Seed: 1, Prompts: 40, HeldOutPrompts: 12, PoolSize: 16, Unsteered: 4,
		PairsPerUser: 24, MinMargin: 0.25, Noise: 0.1, Temperature: 0.9, TopP: 0.95,
		ShortTokens: 28, LongTokens: 40, Batch: 96,
	}
}

// QuickOptions is a run of a few seconds for smoke tests: 12 users, 8 + 4
// openings, 6 candidates each.
func QuickOptions() Options {
	o := DefaultOptions()
	o.Users, o.Prompts, o.HeldOutPrompts, o.PoolSize, o.PairsPerUser, o.Batch = 12, 8, 4, 6, 10, 72
	return o
}

// Check reports the first invalid option.
func (o *Options) Check() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("stories options: %s = %v: %s", field, v, want)
	}
	switch {
	case strings.TrimSpace(o.Out) == "":
		return errors.New("stories options: no output directory")
	case o.Users < 4:
		return bad("users", o.Users, "need at least 4")
	case o.Prompts < 1 || o.Prompts > len(trainPrompts):
		return bad("prompts", o.Prompts, fmt.Sprintf("must be in 1..%d", len(trainPrompts)))
	case o.HeldOutPrompts < 1 || o.HeldOutPrompts > len(heldOutPrompts):
		return bad("held_out_prompts", o.HeldOutPrompts, fmt.Sprintf("must be in 1..%d", len(heldOutPrompts)))
	case o.PoolSize < 2 || o.PoolSize > 100:
		return bad("pool_size", o.PoolSize, "must be in 2..100")
	case o.Unsteered < 0 || o.Unsteered == 1:
		return bad("unsteered", o.Unsteered, "must be 0 (none) or at least 2 (every k-th candidate)")
	case o.PairsPerUser < 1:
		return bad("pairs_per_user", o.PairsPerUser, "must be at least 1")
	case !(o.MinMargin > 0) || math.IsInf(o.MinMargin, 0):
		return bad("min_margin", o.MinMargin, "must be positive (a zero margin would label ties)")
	case !(o.Noise >= 0) || math.IsInf(o.Noise, 0):
		return bad("noise", o.Noise, "must be ≥ 0")
	case !(o.Temperature > 0) || o.Temperature > 2:
		return bad("temperature", o.Temperature, "must be in (0, 2]")
	case !(o.TopP > 0) || o.TopP > 1:
		return bad("top_p", o.TopP, "must be in (0, 1]")
	case o.ShortTokens < 8 || o.LongTokens < o.ShortTokens || o.LongTokens > 120:
		return bad("short_tokens/long_tokens", fmt.Sprint(o.ShortTokens, "/", o.LongTokens), "need 8 ≤ short ≤ long ≤ 120")
	case o.Batch < 1:
		return bad("batch", o.Batch, "must be at least 1")
	case o.Descriptions != "" && o.Descriptions != Varied && o.Descriptions != Canonical:
		return bad("descriptions", o.Descriptions, "must be varied or canonical")
	}
	return nil
}

// runConfig is config.json: the options and the creation time, kept so a
// resumed run writes the same manifest.
type runConfig struct {
	Created string  `json:"created"`
	Options Options `json:"options"`
}

// startRun writes config.json, or checks that an existing one holds the
// same options and returns its creation time.
func startRun(opt *Options) (string, error) {
	path := filepath.Join(opt.Out, ConfigName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		created := time.Now().UTC().Format(time.RFC3339)
		return created, writeJSON(path, runConfig{Created: created, Options: *opt})
	}
	if err != nil {
		return "", fmt.Errorf("resume: %w", err)
	}
	var old runConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&old); err != nil {
		return "", fmt.Errorf("resume %s: %w", path, err)
	}
	if _, err := time.Parse(time.RFC3339, old.Created); err != nil {
		return "", fmt.Errorf("resume %s: created: %w", path, err)
	}
	a, _ := json.Marshal(old.Options)
	b, _ := json.Marshal(*opt)
	if !bytes.Equal(a, b) {
		var am, bm map[string]any
		json.Unmarshal(a, &am)
		json.Unmarshal(b, &bm)
		var diffs []string
		for k, v := range bm {
			if fmt.Sprint(am[k]) != fmt.Sprint(v) {
				diffs = append(diffs, fmt.Sprintf("%s was %v, now %v", k, am[k], v))
			}
		}
		sort.Strings(diffs)
		return "", fmt.Errorf("resume %s: the directory holds a run with other settings (%s); rerun with the same flags or use another --out",
			path, strings.Join(diffs, "; "))
	}
	return old.Created, nil
}

// Synthesize makes the stories data set in opt.Out, or finishes an
// interrupted run there (same options): users.json, candidates.jsonl,
// preferences.jsonl, report.json, report.md, disagreement.json,
// disagreement.png and manifest.json (written last). The result is
// deterministic for the options.
func Synthesize(ctx context.Context, m *model.Model, tok tokenizer.Codec, opt Options) (*Report, error) {
	start := time.Now()
	if err := opt.Check(); err != nil {
		return nil, err
	}
	logf := func(format string, a ...any) {
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, "synth stories: "+format+"\n", a...)
		}
	}
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return nil, fmt.Errorf("synth stories: %w", err)
	}
	created, err := startRun(&opt)
	if err != nil {
		return nil, err
	}
	uf, err := drawUsers(opt.Users, opt.TestUsers, opt.Seed, opt.Descriptions)
	if err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(opt.Out, UsersName), uf); err != nil {
		return nil, err
	}
	prompts := append(TrainPrompts()[:opt.Prompts], HeldOutPrompts()[:opt.HeldOutPrompts]...)
	slots := planPool(&opt, tok, prompts, opt.Prompts)
	for _, s := range slots {
		if len(s.input)+s.budget >= m.Positions() {
			return nil, fmt.Errorf("synth stories: candidate %s needs %d positions, the model has %d", s.c.ID, len(s.input)+s.budget, m.Positions())
		}
	}
	cands, err := generatePool(ctx, m, tok, &opt, slots, filepath.Join(opt.Out, CandidatesName), logf)
	if err != nil {
		return nil, fmt.Errorf("synth stories: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	groups := byPrompt(cands)
	rewards := make([][]float64, len(uf.Users))
	for u := range uf.Users {
		rewards[u] = make([]float64, len(cands))
		for c := range cands {
			rewards[u][c] = uf.Users[u].Reward(cands[c].Response)
		}
	}
	rep := &Report{Domain: "stories", Seed: opt.Seed, Users: len(uf.Users), Kinds: map[Kind]int{},
		Prompts: opt.Prompts, HeldOutPrompts: opt.HeldOutPrompts, Candidates: len(cands), ShortUsers: []string{}}
	prefPath := filepath.Join(opt.Out, PreferencesName)
	all, err := writePreferences(ctx, prefPath, &uf, cands, rewards, groups, &opt, rep)
	if err != nil {
		return nil, err
	}
	rep.Records = len(all)
	logf("labelled %d pairs for %d users", len(all), len(uf.Users))

	if err := fillReport(rep, &uf, cands, rewards, groups, all, &opt, tok); err != nil {
		return nil, err
	}
	if err := writeSummary(prefPath, created, &uf, rewards, groups, &opt, rep); err != nil {
		return nil, err
	}
	rep.Elapsed = time.Since(start)
	logf("done in %v: %s", rep.Elapsed.Round(time.Millisecond), opt.Out)
	return rep, nil
}

// fillReport computes the pool and label statistics of the report.
func fillReport(rep *Report, uf *UsersFile, cands []Candidate, rewards [][]float64, groups map[int][]int, all []dataset.Record, opt *Options, tok tokenizer.Codec) error {
	texts := make([]string, len(cands))
	var toks, words []int
	for i, c := range cands {
		texts[i] = c.Response
		toks = append(toks, c.Tokens)
		words = append(words, WordCount(c.Response))
	}
	rep.Distinct1, rep.Distinct2 = distinctN(texts, 1), distinctN(texts, 2)
	rep.SelfSimilarity = selfSimilarity(texts, groups)
	rep.ResponseTokens, rep.ResponseWords = summarize(toks), summarize(words)
	rep.Mentions = map[string]float64{}
	for _, v := range vocabulary {
		n := 0
		for _, t := range texts {
			if Mentions(v, t) > 0 {
				n++
			}
		}
		rep.Mentions[v.key()] = float64(n) / float64(len(texts))
	}
	sum, n := map[Kind][2]float64{}, map[Kind]float64{}
	for u := range uf.Users {
		best, steered, ok := headroom(&uf.Users[u], cands, rewards[u], groups)
		if ok {
			k := uf.Users[u].Kind
			sum[k] = [2]float64{sum[k][0] + best, sum[k][1] + steered}
			n[k]++
		}
	}
	if len(n) > 0 {
		rep.BestVsBase, rep.SteeredVsBase = map[Kind]float64{}, map[Kind]float64{}
		for k, c := range n {
			rep.BestVsBase[k], rep.SteeredVsBase[k] = sum[k][0]/c, sum[k][1]/c
		}
	}
	for _, c := range cands {
		if c.Steer == "" && len(sentenceEnds(c.Response)) == 0 {
			rep.Unfinished++
		}
	}
	var ent, und float64
	for _, s := range rep.PerUser {
		ent += s.LabelEntropy
		und += s.Undecided
	}
	rep.MeanLabelEntropy = ent / float64(len(rep.PerUser))
	rep.MeanUndecided = und / float64(len(rep.PerUser))
	var err error
	rep.EpisodeTokens, err = episodeTokens(all, opt.Seed, tok)
	return err
}

// episodeTokens measures the 4-shot episodes of package episode (one
// evaluation pass over every user's records) in the compact layout (plain
// and COT variants) and the paper layout (plain): tokens of the prompt and
// the longer completion, with BOS and EOS, to compare with the model's
// positions. A COT rejected completion without a rejected_description is
// measured with the longest user description.
func episodeTokens(recs []dataset.Record, seed int64, tok tokenizer.Codec) (map[string]Summary, error) {
	eps := episode.Build(dataset.GroupByUser(recs), 4, episode.EvalPasses, seed)
	if len(eps) == 0 {
		return nil, nil
	}
	count := func(s string) int { return len(tok.Encode(s, true)) + 1 } // and the end token
	// A COT rejected completion carries another user's description: measured
	// with the longest one, an upper bound.
	longest, most := "", 0
	for _, r := range recs {
		if n := count(r.Description); n > most {
			longest, most = r.Description, n
		}
	}
	out := map[string]Summary{}
	for _, c := range []struct {
		v episode.Variant
		l episode.Layout
	}{{episode.Plain, episode.Compact}, {episode.COT, episode.Compact}, {episode.Plain, episode.Paper}} {
		st, err := episode.Measure(eps, c.v, c.l, count, episode.OtherDescription(longest))
		if err != nil {
			return nil, fmt.Errorf("measure episodes: %w", err)
		}
		out[c.l.Name+"/"+string(c.v)] = Summary{Mean: st.Mean, P95: st.P95, Min: st.Min, Max: st.Max}
	}
	return out, nil
}

// writePreferences labels every user's pairs and appends those not yet in
// prefPath (a resumed run adds only what is missing), counting them in rep.
func writePreferences(ctx context.Context, prefPath string, uf *UsersFile, cands []Candidate, rewards [][]float64, groups map[int][]int, opt *Options, rep *Report) ([]dataset.Record, error) {
	w, err := dataset.Append(prefPath)
	if err != nil {
		return nil, fmt.Errorf("synth stories: %w", err)
	}
	var all []dataset.Record
	for u := range uf.Users {
		p := &uf.Users[u]
		rep.Kinds[p.Kind]++
		recs, st := labelUser(p, cands, rewards[u], groups, opt)
		if len(recs) == 0 {
			w.Close()
			return nil, fmt.Errorf("synth stories: user %s: no pair of candidates clears the margin %v; lower --margin or raise the pool", p.ID, opt.MinMargin)
		}
		rep.PerUser = append(rep.PerUser, st)
		if st.Short {
			rep.ShortUsers = append(rep.ShortUsers, p.ID)
		}
		var todo []dataset.Record
		for _, r := range recs {
			if !w.Has(r.ID) {
				todo = append(todo, r)
			}
		}
		if len(todo) > 0 {
			if err := ctx.Err(); err != nil {
				w.Close()
				return nil, err
			}
			if err := w.WriteBatch(todo); err != nil {
				w.Close()
				return nil, fmt.Errorf("synth stories: %w", err)
			}
		}
		all = append(all, recs...)
		if p.Kind == Train {
			rep.TrainRecords += len(recs)
		} else {
			rep.TestRecords += len(recs)
		}
	}
	if n := w.Len(); n != len(all) {
		w.Close()
		return nil, fmt.Errorf("synth stories: %s holds %d records, this run made %d; it was written by another run, use another --out", prefPath, n, len(all))
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("synth stories: %w", err)
	}
	return all, nil
}

// writeSummary writes the users' disagreement (JSON and heat map), the
// report and the manifest.
func writeSummary(prefPath, created string, uf *UsersFile, rewards [][]float64, groups map[int][]int, opt *Options, rep *Report) error {
	train, test := uf.Split()
	dis := DisagreementFile{Rate: disagreement(rewards, groups, opt.MinMargin)}
	for _, u := range uf.Users {
		dis.Users = append(dis.Users, u.ID)
		dis.Kinds = append(dis.Kinds, u.Kind)
	}
	mean, minV, at := offDiagonal(dis.Rate)
	rep.MeanDisagreement, rep.MinDisagreement = mean, minV
	rep.ClosestUsers = [2]string{dis.Users[at[0]], dis.Users[at[1]]}
	for _, f := range []func() error{
		func() error { return writeJSON(filepath.Join(opt.Out, DisagreementJSON), dis) },
		func() error { return writePNG(filepath.Join(opt.Out, DisagreementPNG), dis.Rate, dis.Users) },
		func() error { return writeJSON(filepath.Join(opt.Out, ReportJSONName), rep) },
		func() error {
			return atomicfile.WriteBytes(filepath.Join(opt.Out, ReportMDName), []byte(rep.markdown()))
		},
	} {
		if err := f(); err != nil {
			return fmt.Errorf("synth stories: %w", err)
		}
	}
	fi, err := dataset.Describe(prefPath)
	if err != nil {
		return fmt.Errorf("synth stories: %w", err)
	}
	cfg, _ := json.Marshal(*opt)
	man := dataset.Manifest{
		Version: dataset.ManifestVersion, Domain: "stories", Seed: opt.Seed, Created: created,
		TrainUsers: train, TestUsers: test, Interpolated: uf.OfKind(Interpolated),
		Files:  map[string]dataset.FileInfo{PreferencesName: fi},
		Config: cfg,
		Notes: map[string]string{
			"unseen":           strings.Join(uf.OfKind(Unseen), ","),
			"heldout":          strings.Join(uf.OfKind(HeldOut), ","),
			"users":            UsersName + ": each user's hidden profile and kind (stories.LoadUsers)",
			"candidates":       CandidatesName + ": the shared pool of persona-steered responses",
			"held_out_prompts": "held-out users' pairs use only the held-out openings (stories.HeldOutPrompts)",
		},
	}
	if err := dataset.WriteManifest(opt.Out, man); err != nil {
		return fmt.Errorf("synth stories: %w", err)
	}
	return nil
}
