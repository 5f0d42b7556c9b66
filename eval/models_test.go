package eval

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"fspo/dataset"
	"fspo/episode"
	"fspo/internal/modeltest"
	"fspo/internal/testenv"
	"fspo/model"
	"fspo/runcard"
	"fspo/tokenizer"
)

func TestReferenceFor(t *testing.T) {
	dir := t.TempDir()
	modelPath := filepath.Join(dir, "m.bin")
	if err := os.WriteFile(modelPath, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	emptyDir := t.TempDir()
	c := Config{Base: "BASE", Runs: map[string]string{PrefFT: "PREFFT"}}
	withRef := c
	withRef.Refs = map[string]string{FSPO: "REF"}
	tests := []struct {
		name       string
		method     string
		meta       map[string]string
		cfg        Config
		path, src  string // src: a prefix of the source
		errContain string
	}{
		{"configured wins", FSPO, map[string]string{"init": modelPath}, withRef, "REF", "configured", ""},
		{"meta init file", FSPO, map[string]string{"init": modelPath}, c, modelPath, "run meta init", ""},
		{"fspo default prefft", FSPO, nil, c, "PREFFT", "default: the prefft run", ""},
		{"fspo no prefft", FSPO, nil, Config{Base: "BASE"}, "", "", "no prefft run"},
		{"ipo default base", IPO, nil, c, "BASE", "default: the base model", ""},
		{"ipo init folder without model", IPO, map[string]string{"init": emptyDir}, c, "BASE", "default: the base model (the run's meta init", ""},
		{"fspo init folder without model", FSPO, map[string]string{"init": emptyDir}, c, "", "", "give the reference explicitly"},
		{"cot has no default", FSPOCOT, nil, c, "", "", "records no init"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, src, err := referenceFor(tc.method, &loaded{path: "RUN", card: legacyCard(t, tc.meta)}, tc.cfg)
			if tc.errContain != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errContain) {
					t.Fatalf("error %v, want one containing %q", err, tc.errContain)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if path != tc.path || !strings.HasPrefix(src, tc.src) {
				t.Errorf("got %q (%s), want %q (%s…)", path, src, tc.path, tc.src)
			}
		})
	}
}

// legacyCard reads a checkpoint meta of the string-map form fspo train
// wrote before the run card.
func legacyCard(t *testing.T, meta map[string]string) *runcard.Card {
	t.Helper()
	c, _, err := runcard.FromMeta(meta)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// oneRun is a model cache holding one run file with the card.
func oneRun(t *testing.T, card *runcard.Card) (models, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.fspo")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return models{byPath: map[string]*loaded{path: {path: path, card: card}}}, path
}

// TestResolvePrompt checks the prompt eval takes from the runs' cards
// (legacy meta here; runcard's tests cover the typed card): unset shots and
// layout come from the card, set ones and the method's variant must match.
func TestResolvePrompt(t *testing.T) {
	tests := []struct {
		method     string
		meta       map[string]string
		shots      int
		layout     string
		wantShots  int
		wantLayout string
		wantErr    string
	}{
		{FSPO, map[string]string{"variant": "plain", "layout": "compact", "shots": "4"}, 4, "compact", 4, "compact", ""},
		{FSPO, map[string]string{"variant": "plain", "layout": "paper", "shots": "8"}, 0, "", 8, "paper", ""},
		{FSPO, nil, 0, "", DefaultShots, DefaultLayout, ""}, // nothing recorded: the defaults
		{IPO, map[string]string{"variant": "zero-shot", "layout": "compact", "shots": "0"}, 4, "compact", 4, "compact", ""},
		{FSPO, map[string]string{"variant": "cot"}, 4, "compact", 0, "", "variant cot, given variant plain"},
		{FSPOCOT, map[string]string{"variant": "cot", "layout": "paper"}, 4, "compact", 0, "", "layout paper, given layout compact"},
		{PrefFT, map[string]string{"variant": "plain", "shots": "8"}, 4, "", 0, "", "shots 8, given shots 4"},
	}
	for _, tc := range tests {
		ms, run := oneRun(t, legacyCard(t, tc.meta))
		c := Config{Runs: map[string]string{tc.method: run}, Shots: tc.shots, Layout: tc.layout}
		got, err := resolvePrompt(c, &ms)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s %v: error %v, want one containing %q", tc.method, tc.meta, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %v: %v", tc.method, tc.meta, err)
			continue
		}
		if got.Shots != tc.wantShots || got.Layout != tc.wantLayout {
			t.Errorf("%s %v: shots %d layout %q, want %d %q", tc.method, tc.meta, got.Shots, got.Layout, tc.wantShots, tc.wantLayout)
		}
	}
}

// TestResolvePromptForce checks that --force-prompt turns a contradiction
// into a warning that names both values, and the given value wins.
func TestResolvePromptForce(t *testing.T) {
	ms, run := oneRun(t, legacyCard(t, map[string]string{"variant": "plain", "layout": "compact", "shots": "8"}))
	var warn strings.Builder
	c := Config{Runs: map[string]string{FSPO: run}, Shots: 4, ForcePrompt: true, Progress: &warn}
	got, err := resolvePrompt(c, &ms)
	if err != nil {
		t.Fatal(err)
	}
	if got.Shots != 4 || got.Layout != "compact" {
		t.Errorf("shots %d layout %q, want 4 compact", got.Shots, got.Layout)
	}
	if w := warn.String(); !strings.Contains(w, "warning") || !strings.Contains(w, "shots 8, using 4") {
		t.Errorf("warning %q, want one naming shots 8 and 4", w)
	}
}

func TestModelFileUnfinishedRun(t *testing.T) {
	run := t.TempDir()
	if err := os.WriteFile(filepath.Join(run, "checkpoint.fspo"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := modelFile(run)
	if err == nil || !strings.Contains(err.Error(), "has not finished") {
		t.Errorf("error %v, want one saying the training has not finished", err)
	}
	if _, err := modelFile(filepath.Join(run, "nope")); err == nil {
		t.Error("missing path: no error")
	}
}

func TestConfigValidate(t *testing.T) {
	good := Defaults()
	good.Data, good.Base, good.Tokenizer, good.Out = "d", "b", "t", "o"
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults with paths: %v", err)
	}
	bad := good
	bad.Shots, bad.TopP, bad.Runs, bad.Kinds = 0, 1.5, map[string]string{"oracle": "x"}, map[string]string{"u": "weird"}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"shots", "top-p", `"oracle" is not a trained method`, `user "u" has kind "weird"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestGenerateCOTTwoParts checks the COT generation of Run on the real
// stories260K model, with a "separator" taken from its own greedy output
// (the base model never writes the COT headers): the description is
// decoded greedily up to and including the separator, then the response is
// sampled; with a greedy response the two parts equal one greedy pass.
func TestGenerateCOTTwoParts(t *testing.T) {
	paths := testenv.Model(t)
	m, err := model.Load(paths.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(paths.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	prompts := [][]int{tok.Encode("Once upon a time,", true, false), tok.Encode("One day, a cat", true, false)}
	ctx := context.Background()
	single, err := m.GenerateBatch(ctx, prompts, model.GenOptions{MaxTokens: 40, StopAtBOS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sep := single[0].Tokens[6:8] // written greedily by the first prompt; maybe not by the second
	descEnd := func(toks []int) int {
		for i := 0; i+len(sep) <= len(toks); i++ {
			if slices.Equal(toks[i:i+len(sep)], sep) {
				return i + len(sep)
			}
		}
		return -1
	}
	g := &generator{cfg: Config{DescriptionTemperature: 0}, caps: caps{response: 20, description: 10}}
	greedy, err := g.generateCOT(ctx, m, descEnd, prompts, model.GenOptions{MaxTokens: 40, StopAtBOS: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, got := range greedy {
		n := min(len(got.Tokens), len(single[i].Tokens))
		if !slices.Equal(got.Tokens[:n], single[i].Tokens[:n]) {
			t.Errorf("prompt %d: two greedy parts %v differ from one greedy pass %v", i, got.Tokens, single[i].Tokens)
		}
	}
	// The first output: 8 description tokens ending in sep, then a
	// response capped at caps.response.
	if got := len(greedy[0].Tokens); got != 8+20 {
		t.Errorf("first output has %d tokens, want 8 (description and separator) + 20 (response cap)", got)
	}
	sampled := make([][]int, 3)
	for s := range sampled {
		out, err := g.generateCOT(ctx, m, descEnd, prompts[:1], model.GenOptions{MaxTokens: 40, Temperature: 1, TopP: 1, Seed: uint64(10 + s), StopAtBOS: true})
		if err != nil {
			t.Fatal(err)
		}
		sampled[s] = out[0].Tokens
		if !slices.Equal(out[0].Tokens[:8], single[0].Tokens[:8]) {
			t.Errorf("seed %d: description part %v is not the greedy one %v", s, out[0].Tokens[:8], single[0].Tokens[:8])
		}
	}
	if slices.Equal(sampled[0][8:], sampled[1][8:]) && slices.Equal(sampled[1][8:], sampled[2][8:]) {
		t.Errorf("three seeds sampled the same response %v", sampled[0][8:])
	}
}

// TestGenerateGivenDescription: with the description given, the output is
// the description part the model would have stated (text, separator) and
// then a response generated after it, greedy as one pass over the same
// tokens; the outputs parse back to the given descriptions.
func TestGenerateGivenDescription(t *testing.T) {
	m, c := storiesCodec(t, episode.COT)
	prompts := [][]int{c.Tok.Encode("Once upon a time,", true), c.Tok.Encode("One day, a cat", true)}
	descs := []string{"Likes dogs.", "Likes short stories about cats."}
	g := &generator{caps: caps{response: 12, description: 10}}
	ctx := context.Background()
	out, err := g.generateGiven(ctx, m, c, prompts, func(q int) string { return descs[q] }, model.GenOptions{MaxTokens: 40, StopAtBOS: true})
	if err != nil {
		t.Fatal(err)
	}
	for q, o := range out {
		part := c.DescriptionPart(descs[q])
		if !slices.Equal(o.Tokens[:len(part)], part) {
			t.Fatalf("prompt %d: output %v does not start with the description part %v", q, o.Tokens, part)
		}
		one, err := m.GenerateBatch(ctx, [][]int{append(slices.Clone(prompts[q]), part...)}, model.GenOptions{MaxTokens: 12, StopAtBOS: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(o.Tokens[len(part):], one[0].Tokens) {
			t.Errorf("prompt %d: response %v, one greedy pass after the description gives %v", q, o.Tokens[len(part):], one[0].Tokens)
		}
		if d, _, _ := c.Parse(o.Tokens); d != descs[q] {
			t.Errorf("prompt %d: parses to description %q, want %q", q, d, descs[q])
		}
	}
}

// TestPickByImplicitReward: of each episode's samples the one kept has the
// highest log πθ − log πref over what the sample holds, each scored alone
// here (per token for ipo_norm; the first on ties, so a policy equal to
// its reference keeps the first): header, text and end token for a sample
// that stopped, no end token for one cut at the cap.
func TestPickByImplicitReward(t *testing.T) {
	ref, c := storiesCodec(t, episode.Plain)
	pol := modeltest.Perturbed(ref, 9, 0.3)
	ep := episode.Episode{User: "u", Shots: []dataset.Record{{Prompt: "Once upon a time", Chosen: "a dog ran.", Rejected: "a cat sat."}},
		Query: dataset.Record{Prompt: "One day, Tom"}}
	texts := []string{"went home.", "saw a big red ball in the park.", "was sad.", "ran to the tree and back."}
	var rs []response
	for s, text := range texts {
		rs = append(rs, response{Text: text, Finish: [...]string{"stop", "length"}[s%2]})
	}
	reward := func(r response, perToken bool) float64 {
		p, _ := c.Prompt(ep.Shots, ep.Query.Prompt, "")
		comp := c.Completion(r.Text, "")
		if r.Finish == "length" {
			comp = comp[:len(comp)-1]
		}
		sum := func(m *model.Model) float64 {
			pass, err := m.Score([]model.Example{{Prompt: p, Completions: [][]int{comp}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return pass.Sum(0, 0)
		}
		v := sum(pol) - sum(ref)
		if perToken {
			v /= float64(len(comp))
		}
		return v
	}
	for _, perToken := range []bool{false, true} {
		got, rewards, err := pickByImplicitReward(context.Background(), c, []episode.Episode{ep}, [][]response{rs}, pol, ref, perToken)
		if err != nil {
			t.Fatal(err)
		}
		best := 0
		for s, r := range rs {
			if reward(r, perToken) > reward(rs[best], perToken)+1e-9 {
				best = s
			}
			if want := reward(r, false); math.Abs(rewards[0][s]-want) > 1e-4*max(1, math.Abs(want)) {
				t.Errorf("sample %d (%s): reward %g, scored alone %g", s, r.Finish, rewards[0][s], want)
			}
		}
		if got[0].Text != texts[best] {
			t.Errorf("per token %v: kept %q, the highest reward is %q", perToken, got[0].Text, texts[best])
		}
	}
	same, _, err := pickByImplicitReward(context.Background(), c, []episode.Episode{ep}, [][]response{rs}, ref, ref, false)
	if err != nil || same[0].Text != texts[0] {
		t.Errorf("policy = reference: kept %q, %v; want the first", same[0].Text, err)
	}
}

// TestPickByImplicitRewardNearTheContextEnd: samples that together do not
// fit after a long prompt are each scored on the tokens that fit, as
// generation stopped there, instead of left unranked; a prompt that fills
// the context is an error naming the episode.
func TestPickByImplicitRewardNearTheContextEnd(t *testing.T) {
	ref, c := storiesCodec(t, episode.Plain)
	pol := modeltest.Perturbed(ref, 9, 0.3)
	long := strings.Repeat("The dog ran to the park and played with a ball. ", 40)
	rs := []response{{Text: "went home to see his mother and father.", Finish: "length"}, {Text: "was sad.", Finish: "stop"}}
	// the longest opening whose prompt leaves room for fewer tokens than the first sample holds
	words := strings.Fields(long)
	var p []int
	var ep episode.Episode
	room := 0
	for k := len(words); k > 0; k-- {
		q, err := c.Prompt(nil, strings.Join(words[:k], " "), "")
		if err != nil {
			t.Fatal(err)
		}
		if r := ref.Positions() - len(q) + 1; r >= 2 && r < len(c.Completion(rs[0].Text, ""))-1 {
			p, room = q, r
			ep = episode.Episode{User: "u", Query: dataset.Record{Prompt: strings.Join(words[:k], " ")}}
			break
		}
	}
	if p == nil {
		t.Fatal("test set-up: no opening leaves the room wanted")
	}
	_, rewards, err := pickByImplicitReward(context.Background(), c, []episode.Episode{ep}, [][]response{rs}, pol, ref, false)
	if err != nil {
		t.Fatal(err)
	}
	for s, r := range rs {
		comp := samplePart(c, r, room)
		if len(comp) > room {
			t.Fatalf("sample %d: %d tokens scored, %d fit", s, len(comp), room)
		}
		var sums [2]float64
		for k, m := range []*model.Model{pol, ref} {
			pass, err := m.Score([]model.Example{{Prompt: p, Completions: [][]int{comp}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			sums[k] = pass.Sum(0, 0)
		}
		if want := sums[0] - sums[1]; math.Abs(rewards[0][s]-want) > 1e-4*max(1, math.Abs(want)) {
			t.Errorf("sample %d: reward %g, its %d fitting tokens scored alone %g", s, rewards[0][s], len(comp), want)
		}
	}
	full := episode.Episode{User: "v", Query: dataset.Record{Prompt: long + long}}
	if _, _, err := pickByImplicitReward(context.Background(), c, []episode.Episode{ep, full}, [][]response{rs, rs}, pol, ref, false); err == nil || !strings.Contains(err.Error(), "episode 1 (user v)") {
		t.Errorf("a prompt filling the context: %v, want an error naming episode 1 (user v)", err)
	}
}

// TestRewardAgreement: pairs with equal exact rewards are left out; the
// share counts the pairs ordered alike.
func TestRewardAgreement(t *testing.T) {
	eps := []episode.Episode{{User: "u"}, {User: "nobody"}}
	out := [][]response{{{Text: "a"}, {Text: "bb"}, {Text: "ccc"}, {Text: "dd"}}, {{Text: "a"}, {Text: "b"}}}
	// exact reward: the length (bb and dd tie: left out); implicit: a 2, bb 1, ccc 3, dd 0
	rewards := [][]float64{{2, 1, 3, 0}, {0, 1}}
	exact := map[string]Rewarder{"u": lengthReward{}}
	got, n := rewardAgreement(eps, out, rewards, exact)
	// pairs with different lengths: (a,bb) disagree, (a,ccc) agree, (a,dd) disagree, (bb,ccc) agree, (ccc,dd) agree
	if n != 5 || math.Abs(got-3.0/5) > 1e-12 {
		t.Errorf("agreement %g over %d pairs, want 0.6 over 5", got, n)
	}
}

// lengthReward rewards a text by its length.
type lengthReward struct{}

func (lengthReward) Reward(text string) float64 { return float64(len(text)) }
