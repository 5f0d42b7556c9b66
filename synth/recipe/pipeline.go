package recipe

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"fspo/judge"
	"fspo/llm"
)

// Config is one run of the pipeline, resolved from flags and files.
type Config struct {
	Recipe *Recipe
	// Client answers every call; the caller wraps it with llm.Cached so a
	// rerun repeats no finished call.
	Client llm.Client
	// Out is the output directory (preferences.jsonl, manifest, reports).
	Out string
	// Users caps the users (0: all the recipe defines); Questions is the
	// questions per user and Responses the candidates per question (0: the
	// recipe's).
	Users, Questions, Responses int
	Seed                        int64
	// Shard and Shards split the users: this run builds users whose index
	// is Shard modulo Shards (Shards 0 or 1: all).
	Shard, Shards int
	// Workers bounds the users labelled at once and the calls each issues (default 8).
	Workers int
	// EmbedQuestions is how many questions' candidates are embedded for the
	// similarity report (default 20; -1: none).
	EmbedQuestions int
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// user is one synthetic user.
type user struct {
	Index       int               `json:"index"`
	ID          string            `json:"id"`
	Traits      map[string]string `json:"traits,omitempty"`
	Description string            `json:"description"`
	HeldOut     bool              `json:"held_out,omitempty"`
	copy        int               // which persona of its combination
	ok          bool              // persona known (its call did not fail)
}

// question is one prompt users are asked about; Trait is "axis=value" for
// trait-specific questions.
type question struct {
	ID, Text, Trait string
}

// candidate is one steered response to a question.
type candidate struct {
	Text   string
	Kind   string // "persona" or "view"
	Steer  string // the persona description or the viewpoint
	Model  string
	Source int // index of the steering user (persona kind), else -1
}

// pipeline holds one run's state. Only the per-question tables (questions,
// views, candidates) and the user list are kept; records stream to disk.
type pipeline struct {
	cfg   Config
	r     *Recipe
	users []*user
	pool  []*user // users whose persona is known, in index order
	qs    []question
	cands map[string][]*candidate // question ID → K candidates (nil entries failed)
	acct  *accounting
	log   io.Writer
	judge *judge.LLM // the alpaca judge, when the recipe labels with it
}

// Run executes the pipeline; rerunning the same configuration resumes it.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	info := newRunInfo(cfg)
	if err := info.claim(cfg.Out); err != nil {
		return nil, err
	}
	p := &pipeline{cfg: cfg, r: cfg.Recipe, acct: newAccounting(), log: cfg.Log, cands: map[string][]*candidate{}}
	if p.r.Label.Judge == "alpaca" {
		// Only its prompt and answer parsing are used; calls go through p.complete.
		p.judge = judge.NewLLM(cfg.Client, judge.LLMOptions{Template: p.r.Label.Prompt, Stage: "label"})
	}
	if err := p.personas(ctx); err != nil {
		return nil, err
	}
	if err := p.questions(ctx); err != nil {
		return nil, err
	}
	if err := p.candidates(ctx); err != nil {
		return nil, err
	}
	rep, err := p.label(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.similarity(ctx, rep); err != nil {
		return nil, err
	}
	rep.Calls = p.acct.snapshot()
	train, test, interp := split(p.r, cfg.Seed, p.users)
	if err := saveManifest(cfg.Out, info, train, test, interp); err != nil {
		return nil, err
	}
	if err := rep.write(cfg.Out); err != nil {
		return nil, err
	}
	return rep, nil
}

func (c *Config) check() error {
	switch {
	case c.Recipe == nil:
		return errors.New("synth: no recipe")
	case c.Client == nil:
		return errors.New("synth: no llm client")
	case c.Out == "":
		return errors.New("synth: no output directory (--out)")
	case c.Users < 0 || c.Questions < 0 || c.Responses < 0:
		return fmt.Errorf("synth: users %d, questions %d, responses %d must be >= 0", c.Users, c.Questions, c.Responses)
	case c.Responses == 1:
		return errors.New("synth: --responses 1: pairs need at least 2 candidates")
	case c.Shards < 0 || (c.Shards > 0 && (c.Shard < 0 || c.Shard >= c.Shards)):
		return fmt.Errorf("synth: shard %d/%d: want 0 <= i < n", c.Shard, c.Shards)
	}
	if c.Shards == 0 {
		c.Shards = 1
	}
	if c.Workers <= 0 {
		c.Workers = 8
	}
	if c.EmbedQuestions == 0 {
		c.EmbedQuestions = 20
	}
	if c.Questions == 0 {
		c.Questions = c.Recipe.Questions.PerUser
	}
	if c.Responses == 0 {
		c.Responses = c.Recipe.Responses.Count
	}
	return nil
}

// mine reports whether user index i belongs to this run's shard.
func (p *pipeline) mine(i int) bool { return i%p.cfg.Shards == p.cfg.Shard }

// seedFor derives a non-negative seed from the run seed and an item's
// identity, so no random draw depends on the order calls complete in.
func seedFor(seed int64, parts ...string) int64 {
	h := sha256.New()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	for _, s := range parts {
		binary.LittleEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	return int64(binary.LittleEndian.Uint64(h.Sum(nil)) >> 1)
}

func (p *pipeline) rng(parts ...string) *rand.Rand {
	s := seedFor(p.cfg.Seed, parts...)
	return rand.New(rand.NewPCG(uint64(s), 0x9e3779b97f4a7c15))
}

// shortID is a 16-hex-digit identity hash.
func shortID(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// call issues one request. ok is false when the call finally failed (the
// failure is recorded and counted); err is set only when the run must stop
// (the context ended, or a template could not be rendered).
func (p *pipeline) call(ctx context.Context, stage, item string, st *Step, data any, seed int64, out any) (llm.Response, bool, error) {
	prompt, err := st.render(data)
	if err != nil {
		return llm.Response{}, false, err
	}
	req := llm.Request{Stage: stage, Temperature: st.Temperature, MaxTokens: st.MaxTokens, Seed: seed}
	if p.r.System != "" {
		req.Messages = append(req.Messages, llm.Message{Role: "system", Content: p.r.System})
	}
	req.Messages = append(req.Messages, llm.Message{Role: "user", Content: prompt})
	if st.Schema != nil {
		req.Schema = &llm.Schema{Name: strings.ReplaceAll(stage, "-", "_"), JSON: st.Schema}
	}
	resp, ok, err := p.complete(ctx, item, req)
	if !ok || err != nil {
		return resp, ok, err
	}
	if out != nil {
		if err := json.Unmarshal([]byte(resp.Text), out); err != nil {
			p.acct.fail(stage, item, "invalid_json", fmt.Errorf("decode %s answer: %w", stage, err))
			return resp, false, nil
		}
	}
	return resp, true, nil
}

// complete sends one request and accounts for it; ok and err as for call.
func (p *pipeline) complete(ctx context.Context, item string, req llm.Request) (llm.Response, bool, error) {
	resp, err := p.cfg.Client.Complete(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return resp, false, ctx.Err()
		}
		p.acct.fail(req.Stage, item, llm.FailureKind(err), err)
		return resp, false, nil
	}
	p.acct.ok(req.Stage, resp)
	return resp, true, nil
}

// each runs f(i) for i in [0, n) with at most p.cfg.Workers at once.
func (p *pipeline) each(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.cfg.Workers)
	for i := 0; i < n; i++ {
		g.Go(func() error { return f(gctx, i) })
	}
	return g.Wait()
}

// personas lists the users: the recipe's fixed users, then generated
// personas for axis combinations taken round-robin (user i has combination
// i mod C), so a --users cap keeps every combination represented.
func (p *pipeline) personas(ctx context.Context) error {
	u := &p.r.Users
	for _, f := range u.Fixed {
		p.users = append(p.users, &user{Index: len(p.users), ID: f.ID, Traits: f.Traits, Description: f.Description, HeldOut: f.HeldOut, ok: true})
	}
	if u.PerCombination > 0 {
		combos := combinations(u.Axes)
		for i := 0; i < len(combos)*u.PerCombination; i++ {
			idx := len(p.users)
			p.users = append(p.users, &user{Index: idx, ID: fmt.Sprintf("%s-%04d", p.r.Name, i), Traits: combos[i%len(combos)], copy: i / len(combos)})
		}
	}
	if p.cfg.Users > 0 && p.cfg.Users < len(p.users) {
		p.users = p.users[:p.cfg.Users]
	}
	fmt.Fprintf(p.log, "synth: %d users\n", len(p.users))
	// Every persona is generated, not only this shard's: candidates are
	// steered by personas drawn from all users.
	return p.each(ctx, len(p.users), func(ctx context.Context, i int) error {
		us := p.users[i]
		if us.ok {
			return nil
		}
		var out struct {
			Description string `json:"description"`
		}
		data := map[string]any{"Traits": us.Traits, "Index": us.copy, "ID": us.ID}
		_, ok, err := p.call(ctx, "persona", us.ID, &u.Generate, data, seedFor(p.cfg.Seed, "persona", us.ID), &out)
		if err != nil || !ok {
			return err
		}
		if strings.TrimSpace(out.Description) == "" {
			p.acct.fail("persona", us.ID, "empty", errors.New("empty description"))
			return nil
		}
		us.Description, us.ok = strings.TrimSpace(out.Description), true
		return nil
	})
}

// combinations enumerates the axes' value combinations in row-major order.
func combinations(axes []Axis) []map[string]string {
	out := []map[string]string{{}}
	for _, a := range axes {
		var next []map[string]string
		for _, c := range out {
			for _, v := range a.Values {
				m := make(map[string]string, len(c)+1)
				for k, x := range c {
					m[k] = x
				}
				m[a.Name] = v
				next = append(next, m)
			}
		}
		out = next
	}
	return out
}

// userQuestions is the deterministic list of questions user u labels: the
// global questions and those of u's traits, shuffled by (seed, user), the
// first cfg.Questions of them.
func (p *pipeline) userQuestions(u *user) []question {
	var elig []question
	for _, q := range p.qs {
		if q.Trait == "" {
			elig = append(elig, q)
			continue
		}
		axis, value, _ := strings.Cut(q.Trait, "=")
		if u.Traits[axis] == value {
			elig = append(elig, q)
		}
	}
	rng := p.rng("questions", u.ID)
	rng.Shuffle(len(elig), func(i, j int) { elig[i], elig[j] = elig[j], elig[i] })
	if len(elig) > p.cfg.Questions {
		elig = elig[:p.cfg.Questions]
	}
	return elig
}

// questions makes the question pool: from topics by template, or by calls
// per topic and per trait value, in a fixed order with duplicates removed.
func (p *pipeline) questions(ctx context.Context) error {
	q := &p.r.Questions
	type batch struct {
		step  *Step
		data  map[string]any
		trait string
		key   string
		out   []string
	}
	var batches []*batch
	if q.Template != "" {
		for _, t := range q.Topics {
			var b strings.Builder
			if err := q.tmpl.Execute(&b, map[string]any{"Topic": t}); err != nil {
				return fmt.Errorf("render questions.template: %w", err)
			}
			batches = append(batches, &batch{out: []string{b.String()}})
		}
	}
	if q.Global.Prompt != "" {
		topics := q.Topics
		if len(topics) == 0 {
			topics = []string{""}
		}
		for _, t := range topics {
			batches = append(batches, &batch{step: &q.Global, key: "global/" + t, data: map[string]any{"Topic": t, "Count": q.Global.Count}})
		}
	}
	if q.PerTrait.Prompt != "" {
		for _, a := range p.r.Users.Axes {
			for _, v := range a.Values {
				batches = append(batches, &batch{step: &q.PerTrait, key: "trait/" + a.Name + "=" + v, trait: a.Name + "=" + v,
					data: map[string]any{"Axis": a.Name, "Value": v, "Count": q.PerTrait.Count}})
			}
		}
	}
	err := p.each(ctx, len(batches), func(ctx context.Context, i int) error {
		b := batches[i]
		if b.step == nil {
			return nil
		}
		var out struct {
			Questions []string `json:"questions"`
		}
		_, ok, err := p.call(ctx, "question", b.key, b.step, b.data, seedFor(p.cfg.Seed, "question", b.key), &out)
		if err != nil || !ok {
			return err
		}
		if len(out.Questions) > b.step.Count {
			out.Questions = out.Questions[:b.step.Count]
		}
		b.out = out.Questions
		return nil
	})
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, b := range batches {
		for _, text := range b.out {
			text = strings.TrimSpace(text)
			if text == "" || seen[text] {
				continue
			}
			seen[text] = true
			p.qs = append(p.qs, question{ID: fmt.Sprintf("q%04d", len(p.qs)), Text: text, Trait: b.trait})
		}
	}
	if len(p.qs) == 0 {
		return fmt.Errorf("synth: no questions (every question call failed: %s)", p.acct.lastError("question"))
	}
	fmt.Fprintf(p.log, "synth: %d questions\n", len(p.qs))
	return nil
}

// partPath names a file of the output directory.
func partPath(dir, name string) string { return filepath.Join(dir, name) }
