package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"fspo/dataset"
	"fspo/episode"
	"fspo/internal/modeltest"
	"fspo/model"
	"fspo/serve"
)

// rankingEngine is stories260K as a "trained" policy (its weights nudged at
// random) over the untouched model as the reference, β 0.1.
func rankingEngine(t *testing.T) *serve.ModelEngine {
	t.Helper()
	eng, _ := storiesEngine(t, episode.Plain)
	eng.RawBase = false
	ref := eng.Model
	pol := modeltest.Perturbed(ref, 5, 0.2)
	eng.Model, eng.Ref, eng.Beta = pol, ref, 0.1
	return eng
}

// decodeLogProb sums log p(completion | prompt) by decoding one token at a
// time (the KV-cache path, not the batched scoring Rewards uses).
func decodeLogProb(t *testing.T, m *model.Model, prompt, completion []int) float64 {
	t.Helper()
	cache := m.NewCacheFor(len(prompt) + len(completion))
	logits := make([]float32, m.Config.Vocab)
	seq := append(append([]int{}, prompt...), completion...)
	sum := 0.0
	for i, tok := range seq[:len(seq)-1] {
		if err := m.Forward([]model.Step{{Cache: cache, Tokens: []int{tok}, Logits: logits}}); err != nil {
			t.Fatal(err)
		}
		if i+1 >= len(prompt) {
			mx := math.Inf(-1)
			for _, v := range logits {
				mx = math.Max(mx, float64(v))
			}
			z := 0.0
			for _, v := range logits {
				z += math.Exp(float64(v) - mx)
			}
			sum += float64(logits[seq[i+1]]) - mx - math.Log(z)
		}
	}
	return sum
}

// TestRewardsAreImplicitRewards: the engine's reward of each candidate is
// β·(log πθ(y|x) − log πref(y|x)) over the completion's tokens (header, text,
// end) after the user's few-shot prompt, as decoding computes it; the
// policy against itself gives 0.
func TestRewardsAreImplicitRewards(t *testing.T) {
	eng := rankingEngine(t)
	shots := []serve.Shot{{Prompt: "Once upon a time", Chosen: "a happy dog ran.", Rejected: "a sad cat sat."}}
	question := "One day, Tom"
	cands := []string{"went to the park.", "saw a big red ball and a dog.", "was sad."}
	rewards, kept, err := eng.Rewards(context.Background(), shots, question, cands)
	if err != nil || kept != 1 || len(rewards) != 3 {
		t.Fatalf("rewards %v, kept %d, %v", rewards, kept, err)
	}
	c := eng.Codec
	prompt, err := c.Prompt([]dataset.Record{{Prompt: shots[0].Prompt, Chosen: shots[0].Chosen, Rejected: shots[0].Rejected}}, question, "")
	if err != nil {
		t.Fatal(err)
	}
	for j, y := range cands {
		comp := c.Completion(y, "")
		want := eng.Beta * (decodeLogProb(t, eng.Model, prompt, comp) - decodeLogProb(t, eng.Ref, prompt, comp))
		if math.Abs(rewards[j]-want) > 1e-4*math.Max(1, math.Abs(want)) {
			t.Errorf("candidate %d: reward %v, decoding gives %v", j, rewards[j], want)
		}
	}
	same := *eng
	same.Ref = eng.Model
	zero, _, err := same.Rewards(context.Background(), shots, question, cands)
	if err != nil || zero[0] != 0 || zero[1] != 0 || zero[2] != 0 {
		t.Errorf("the policy against itself: %v, %v; want zeros", zero, err)
	}
	none := *eng
	none.Ref = nil
	if _, _, err := none.Rewards(context.Background(), shots, question, cands); !errors.Is(err, serve.ErrNoRanking) || none.CanRank() {
		t.Errorf("no reference: %v", err)
	}
}

// TestRankAndBestOfOverHTTP: /api/rank sorts the candidates by the caller's
// implicit reward; "fspo": {"best_of": 3} returns the answer its rewards
// rank first, with all three rewards and the tokens of all three; bad
// requests are 400s.
func TestRankAndBestOfOverHTTP(t *testing.T) {
	eng := rankingEngine(t)
	e := newEnv(t, func(c *serve.Config) { c.Engine = eng; c.MaxTokens = 40 })
	_, tok := e.user("alice")
	e.pref(tok, "Once upon a time", "a happy dog ran.", "a sad cat sat.")
	cands := []string{"went to the park.", "saw a big red ball and a dog.", "was sad."}
	code, body, _ := e.do("POST", "/api/rank", tok, map[string]any{"prompt": "One day, Tom", "candidates": cands})
	if code != 200 {
		t.Fatalf("rank: %d %s", code, body)
	}
	var out struct {
		Data []struct {
			Index  int
			Text   string
			Reward float64
		}
		FSPO struct{ Shots int } `json:"fspo"`
	}
	if err := json.Unmarshal(body, &out); err != nil || len(out.Data) != 3 || out.FSPO.Shots != 1 {
		t.Fatalf("rank: %s (%v)", body, err)
	}
	want, _, _ := eng.Rewards(context.Background(), []serve.Shot{{Prompt: "Once upon a time", Chosen: "a happy dog ran.", Rejected: "a sad cat sat."}}, "One day, Tom", cands)
	for k, d := range out.Data {
		if d.Text != cands[d.Index] || d.Reward != want[d.Index] || k > 0 && d.Reward > out.Data[k-1].Reward {
			t.Errorf("rank entry %d: %+v (rewards %v): want sorted, best first", k, d, want)
		}
	}

	code, body, _ = e.do("POST", "/v1/chat/completions", tok, chatBody("One day, Tom", map[string]any{"model": "stories260K", "seed": 7, "max_tokens": 20, "fspo": map[string]int{"best_of": 3}}))
	if code != 200 {
		t.Fatalf("best_of: %d %s", code, body)
	}
	res := decode[map[string]any](t, body)
	info := res["fspo"].(map[string]any)
	rewards, _ := info["rewards"].([]any)
	text := res["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"].(string)
	if info["best_of"] != 3.0 || len(rewards) != 3 {
		t.Fatalf("best_of: fspo %v", info)
	}
	best := 0
	for k := range rewards {
		if rewards[k].(float64) > rewards[best].(float64) {
			best = k
		}
	}
	// the answer with the best reward is the one sampled with seed 7+best
	_, single, _ := e.do("POST", "/v1/chat/completions", tok, chatBody("One day, Tom", map[string]any{"model": "stories260K", "seed": 7 + best, "max_tokens": 20}))
	if got := decode[map[string]any](t, single)["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"]; got != text {
		t.Errorf("best_of answered %q; the best reward (%v) is seed %d's answer %q", text, rewards, 7+best, got)
	}

	for _, bad := range []struct {
		path string
		body any
		want string
	}{
		{"/api/rank", map[string]any{"prompt": "q", "candidates": []string{}}, "candidates: give 1 to 16"},
		{"/api/rank", map[string]any{"prompt": "q", "candidates": []string{"a\x00b"}}, "candidates[0]"},
		{"/v1/chat/completions", chatBody("q", map[string]any{"model": "stories260K", "stream": true, "fspo": map[string]int{"best_of": 2}}), "cannot stream"},
		{"/v1/chat/completions", chatBody("q", map[string]any{"model": "stories260K", "personalize": false, "fspo": map[string]int{"best_of": 2}}), "personalized request"},
		{"/v1/chat/completions", chatBody("q", map[string]any{"model": "stories260K", "fspo": map[string]int{"best_of": 17}}), "outside 1..16"},
	} {
		if code, body, _ := e.do("POST", bad.path, tok, bad.body); code != 400 || !strings.Contains(string(body), bad.want) {
			t.Errorf("%s %v: %d %s, want 400 mentioning %q", bad.path, bad.body, code, body, bad.want)
		}
	}
	plain := newEnv(t, nil) // the fake engine does not rank
	_, tok2 := plain.user("bob")
	if code, body, _ := plain.do("POST", "/api/rank", tok2, map[string]any{"prompt": "q", "candidates": []string{"a"}}); code != 400 || !strings.Contains(string(body), "no reference model") {
		t.Errorf("rank on an engine without a reference: %d %s", code, body)
	}
}
