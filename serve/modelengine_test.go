package serve_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"fspo/episode"
	"fspo/fewshot"
	"fspo/internal/testenv"
	"fspo/model"
	"fspo/modelpath"
	"fspo/serve"
	"fspo/tokenizer"
)

// storiesEngine loads the built-in stories260K.
func storiesEngine(t testing.TB, v episode.Variant) (*serve.ModelEngine, modelpath.Paths) {
	t.Helper()
	p := testenv.Model(t)
	m, err := model.Load(p.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(p.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	return &serve.ModelEngine{Label: "stories260K", Model: m, RawBase: true,
		Codec: fewshot.Codec{Tok: tokenizer.Llama2C(tok), Variant: v, Layout: episode.Compact}}, p
}

// TestModelEngineGreedyMatchesReference: the raw base answer, greedy, is
// llama2.c's reference continuation (reference-greedy-cat-n100.txt, 100
// positions counting BOS and the prompt); streamed pieces add up to it.
func TestModelEngineGreedyMatchesReference(t *testing.T) {
	e, _ := storiesEngine(t, episode.Plain)
	ref := testenv.Reference(t, "reference-greedy-cat-n100.txt")
	const prompt = "Once upon a time, there was a cat"
	n := len(e.Codec.Tok.Encode(prompt, true))
	var streamed strings.Builder
	a, err := e.Answer(context.Background(), serve.AnswerRequest{Question: prompt, MaxTokens: 100 - n + 1, Temperature: 0, TopP: 1,
		Stream: func(s string) error { streamed.WriteString(s); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(strings.TrimPrefix(string(ref), prompt))
	if got := strings.TrimSpace(a.Text); got != want {
		t.Errorf("greedy answer\n got %q\nwant %q", got, want)
	}
	if streamed.String() != a.Text {
		t.Errorf("streamed %q, answer %q", streamed.String(), a.Text)
	}
	if a.PromptTokens != n || a.CompletionTokens != 100-n+1 || a.FinishReason != "length" {
		t.Errorf("answer accounting = %d prompt, %d completion, %q; want %d, %d, length", a.PromptTokens, a.CompletionTokens, a.FinishReason, n, 100-n+1)
	}
}

func TestModelEngineShotsPairAndLimits(t *testing.T) {
	e, _ := storiesEngine(t, episode.Plain)
	ctx := context.Background()
	long := strings.Repeat("The cat sat on the mat and looked at the big red ball. ", 6)
	var shots []serve.Shot
	for range 8 {
		shots = append(shots, serve.Shot{Prompt: "Once upon a time,", Chosen: long, Rejected: long + " The end."})
	}
	a, err := e.Answer(ctx, serve.AnswerRequest{Question: "One day,", Shots: shots, Personalize: true, MaxTokens: 40, Temperature: 0.8, TopP: 0.9, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if a.PromptTokens+40 > e.Model.Positions() || a.PromptTokens < e.Model.Positions()/3 {
		t.Errorf("prompt of %d tokens: want the shots cut to fit %d positions with 40 to spare", a.PromptTokens, e.Model.Positions())
	}
	if a.CompletionTokens == 0 || a.CompletionTokens > 40 {
		t.Errorf("completion of %d tokens, want 1..40", a.CompletionTokens)
	}

	x, y, err := e.Pair(ctx, "Once upon a time, there was a dog", 11)
	if err != nil || x == y || x == "" {
		t.Errorf("Pair = %q, %q, %v; want two different answers", x, y, err)
	}
	x2, y2, _ := e.Pair(ctx, "Once upon a time, there was a dog", 11)
	if x2 != x || y2 != y {
		t.Errorf("Pair with the same seed differs: %q/%q vs %q/%q", x, y, x2, y2)
	}

	_, err = e.Answer(ctx, serve.AnswerRequest{Question: strings.Repeat("cat ", 600), MaxTokens: 10})
	if !errors.Is(err, serve.ErrInvalid) {
		t.Errorf("over-long question: error %v, want ErrInvalid", err)
	}
	if d, err := e.Describe(ctx, shots); d != "" || err != nil {
		t.Errorf("Describe on a plain model = %q, %v; want empty", d, err)
	}
}

// TestModelEngineServesChat runs the real model behind the HTTP API.
func TestModelEngineServesChat(t *testing.T) {
	me, _ := storiesEngine(t, episode.Plain)
	e := newEnv(t, func(c *serve.Config) { c.Engine = me })
	_, tok := e.user("alice")
	e.pref(tok, "Once upon a time,", "there was a happy dog named Max.", "there was a sad cat.")
	code, body, _ := e.do("POST", "/v1/chat/completions", tok, map[string]any{"model": "stories260K", "max_tokens": 30, "seed": 1,
		"messages": []map[string]string{{"role": "user", "content": "One day,"}}})
	r := decode[chatResp](t, body)
	if code != 200 || r.FSPO.Shots != 1 || r.Usage.CompletionTokens == 0 || r.Usage.CompletionTokens > 30 {
		t.Errorf("chat with the real model: %d %s", code, body)
	}
}
