package onpolicy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/internal/testenv"
	"fspo/model"
	"fspo/tokenizer"
)

// stories is stories260K with the plain variant's codec.
func stories(t *testing.T) (*model.Model, fewshot.Codec) {
	t.Helper()
	paths := testenv.Model(t)
	m, err := model.Load(paths.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(paths.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	return m, fewshot.Codec{Tok: tokenizer.Llama2C(tok), Variant: episode.Plain, Layout: episode.Compact}
}

// users are three users with six records each; u2 has too few for 4 shots.
func users() map[string][]dataset.Record {
	out := map[string][]dataset.Record{}
	for u, n := range map[string]int{"u0": 6, "u1": 6, "u2": 3} {
		for i := range n {
			out[u] = append(out[u], dataset.Record{User: u, Prompt: fmt.Sprintf("Once upon a time %d,", i),
				Chosen: "Tom saw a big dog.", Rejected: "Lily ran to the park.", Description: "Likes " + u, ID: fmt.Sprintf("%s-%d", u, i)})
		}
	}
	return out
}

// counter rewards the number of letters e in an answer and remembers every
// answer it scored.
type counter struct {
	mu   sync.Mutex
	seen []string
}

func (c *counter) Reward(text string) float64 {
	c.mu.Lock()
	c.seen = append(c.seen, text)
	c.mu.Unlock()
	return es(text)
}

func es(text string) float64 { return float64(strings.Count(text, "e")) }

func options() Options {
	return Options{Shots: 4, Samples: 3, Passes: 2, MinMargin: 1, Temperature: 1, TopP: 0.9, MaxTokens: 12, Seed: 5}
}

// Each kept pair is the best and the worst of its question's answers, by a
// margin of at least MinMargin, labelled with their rewards; a question
// whose answers are closer counts as a tie.
func TestPairsAreBestAndWorst(t *testing.T) {
	m, codec := stories(t)
	train := users()
	rw := map[string]*counter{"u0": {}, "u1": {}, "u2": {}}
	rewards := map[string]Rewarder{}
	for u, c := range rw {
		rewards[u] = c
	}
	opt := options()
	pairs, st, err := Pairs(context.Background(), m, codec, train, rewards, opt)
	if err != nil {
		t.Fatal(err)
	}
	// u0 and u1: 6 records, windows of 5, one episode per pass; u2 none
	if st.Users != 2 || st.Episodes != 4 || st.Samples != 12 || st.Pairs+st.Ties != 4 || len(pairs) != st.Pairs {
		t.Fatalf("stats %+v with %d pairs; want 2 users, 4 episodes, 12 answers", st, len(pairs))
	}
	if len(rw["u2"].seen) != 0 {
		t.Errorf("u2 (too few records) was sampled")
	}
	if st.Pairs == 0 {
		t.Fatal("no pair cleared the margin; the test needs some")
	}
	for _, p := range pairs {
		c := rw[p.User]
		group := groupOf(t, c.seen, p.Chosen, opt.Samples)
		best, worst := -1.0, 1e9
		for _, s := range group {
			best, worst = max(best, es(s)), min(worst, es(s))
		}
		cs, rs := es(p.Chosen), es(p.Rejected)
		if cs != best || rs != worst || *p.ChosenScore != cs || *p.RejectedScore != rs || cs-rs < opt.MinMargin {
			t.Errorf("pair %s: chosen %v rejected %v (scores %v, %v); the question's answers range %v..%v", p.ID, cs, rs, *p.ChosenScore, *p.RejectedScore, worst, best)
		}
		if p.Source != Source || !strings.HasPrefix(p.ID, Source+"-"+p.User+"-") || p.Description != "Likes "+p.User || !strings.HasPrefix(p.Prompt, "Once upon a time") {
			t.Errorf("pair %+v: provenance", p)
		}
		if err := p.Check(); err != nil {
			t.Errorf("pair %s: %v", p.ID, err)
		}
	}
}

// groupOf finds the answers scored together with text (the Samples
// answers of one question, scored in a row).
func groupOf(t *testing.T, seen []string, text string, k int) []string {
	t.Helper()
	for i, s := range seen {
		if s == text {
			g := i / k * k
			return seen[g : g+k]
		}
	}
	t.Fatalf("answer %q was never scored", text)
	return nil
}

// A run that resumes after some users gives the pairs an uninterrupted run
// gives the others, and Emit sees each user's pairs once.
func TestPairsResume(t *testing.T) {
	m, codec := stories(t)
	rewards := map[string]Rewarder{"u0": &counter{}, "u1": &counter{}, "u2": &counter{}}
	opt := options()
	opt.MinMargin = 0
	all, _, err := Pairs(context.Background(), m, codec, users(), rewards, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Done = map[string]bool{"u0": true}
	emitted := map[string]int{}
	opt.Emit = func(u string, p []dataset.Record) error { emitted[u] += len(p); return nil }
	rest, st, err := Pairs(context.Background(), m, codec, users(), rewards, opt)
	if err != nil {
		t.Fatal(err)
	}
	var want []dataset.Record
	for _, p := range all {
		if p.User != "u0" {
			want = append(want, p)
		}
	}
	if len(want) == 0 || len(rest) != len(want) || st.Users != 1 || emitted["u0"] != 0 || emitted["u1"] != len(want) {
		t.Fatalf("resumed: %d pairs (stats %+v, emitted %v), want %d of u1", len(rest), st, emitted, len(want))
	}
	for i := range want {
		if rest[i].ID != want[i].ID || rest[i].Chosen != want[i].Chosen || rest[i].Rejected != want[i].Rejected {
			t.Errorf("pair %d: resumed %s, uninterrupted %s", i, rest[i].ID, want[i].ID)
		}
	}
}

func TestPairsRefuses(t *testing.T) {
	m, codec := stories(t)
	rewards := map[string]Rewarder{"u0": &counter{}, "u1": &counter{}, "u2": &counter{}}
	cot := codec
	cot.Variant = episode.COT
	for _, c := range []struct {
		name  string
		set   func(*Options)
		codec fewshot.Codec
		rw    map[string]Rewarder
		want  string
	}{
		{"one answer", func(o *Options) { o.Samples = 1 }, codec, rewards, "at least 2 answers"},
		{"greedy", func(o *Options) { o.Temperature = 0 }, codec, rewards, "positive temperature"},
		{"no passes", func(o *Options) { o.Passes = 0 }, codec, rewards, "passes 0"},
		{"cot without descriptions", func(*Options) {}, cot, rewards, "has none"},
		{"no reward", func(*Options) {}, codec, map[string]Rewarder{"u0": &counter{}}, `user "u1" has no exact reward`},
		{"cap past the context", func(o *Options) { o.MaxTokens = 10_000 }, codec, rewards, "answer cap"},
	} {
		opt := options()
		c.set(&opt)
		train := users()
		if c.codec.Variant == episode.COT {
			for i := range train["u1"] {
				train["u1"][i].Description = ""
			}
		}
		_, _, err := Pairs(context.Background(), m, c.codec, train, c.rw, opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
}

// A COT policy answers after the user's true description: the scored
// answers are those generated from the prompt, the header and the
// description part, and both sides of a pair carry that description.
func TestCOTPairsAnswerAfterTheDescription(t *testing.T) {
	m, codec := stories(t)
	codec.Variant = episode.COT
	train := map[string][]dataset.Record{"u0": users()["u0"]}
	c := &counter{}
	opt := options()
	opt.MinMargin = 0
	pairs, st, err := Pairs(context.Background(), m, codec, train, map[string]Rewarder{"u0": c}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pairs == 0 {
		t.Fatal("no pair; the test needs some")
	}
	for _, p := range pairs {
		if p.Description != "Likes u0" || p.RejectedDescription != p.Description {
			t.Errorf("pair %s: descriptions %q / %q, want the user's on both sides", p.ID, p.Description, p.RejectedDescription)
		}
	}
	// the same answers, generated here from the episodes' prompts
	var prompts [][]int
	for _, ep := range episode.Build(train, opt.Shots, opt.Passes, opt.Seed) {
		p, err := codec.Prompt(ep.Shots, ep.Query.Prompt, "")
		if err != nil {
			t.Fatal(err)
		}
		p = append(append(p, codec.Header()...), codec.DescriptionPart(ep.Query.Description)...)
		for range opt.Samples {
			prompts = append(prompts, p)
		}
	}
	outs, err := m.GenerateBatch(context.Background(), prompts, model.GenOptions{MaxTokens: opt.MaxTokens,
		Temperature: float32(opt.Temperature), TopP: float32(opt.TopP), Stop: codec.Stop(true), Seed: uint64(opt.Seed)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != len(c.seen) {
		t.Fatalf("%d answers scored, %d generated here", len(c.seen), len(outs))
	}
	for i, o := range outs {
		if got := codec.Text(o.Tokens); got != c.seen[i] {
			t.Errorf("answer %d: scored %q, generated after the description %q", i, c.seen[i], got)
		}
	}
}

// A question whose prompt leaves fewer positions than the answer cap is
// skipped and counted; the others are answered as before.
func TestPairsSkipQuestionsTooLong(t *testing.T) {
	m, codec := stories(t)
	train := users()
	for i := range train["u1"] {
		train["u1"][i].Prompt = strings.Repeat("Once upon a time there was a dog. ", 20)
	}
	rewards := map[string]Rewarder{"u0": &counter{}, "u1": &counter{}, "u2": &counter{}}
	opt := options()
	opt.MinMargin = 0
	pairs, st, err := Pairs(context.Background(), m, codec, train, rewards, opt)
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped != 2 || st.Episodes != 2 || len(pairs) == 0 {
		t.Fatalf("stats %+v with %d pairs; want u1's 2 questions skipped, u0's 2 answered", st, len(pairs))
	}
	want, _, err := Pairs(context.Background(), m, codec, map[string][]dataset.Record{"u0": train["u0"]}, rewards, opt)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pairs {
		if p.User != "u0" || i >= len(want) || p.ID != want[i].ID {
			t.Errorf("pair %d: %s, want u0's own pairs", i, p.ID)
		}
	}
}
