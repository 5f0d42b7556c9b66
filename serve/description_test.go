package serve_test

import (
	"context"
	"strings"
	"testing"

	"fspo/episode"
	"fspo/serve"
)

// TestOwnDescriptionConditionsCOT: given the user's own description, a COT
// engine states it (as it states its own guess) and answers from it: the
// answer reports it and the prompt holds its tokens; without one the
// engine writes its own guess.
func TestOwnDescriptionConditionsCOT(t *testing.T) {
	eng, _ := storiesEngine(t, episode.COT)
	eng.RawBase = false
	req := serve.AnswerRequest{Question: "One day, Tom", Personalize: true, MaxTokens: 12, Temperature: 0,
		Shots: []serve.Shot{{Prompt: "Once upon a time", Chosen: "a happy dog ran.", Rejected: "a sad cat sat."}}}
	guess, err := eng.Answer(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	own := "Likes dogs and short happy stories."
	req.Description = own
	given, err := eng.Answer(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	part := len(eng.Codec.DescriptionPart(own))
	if given.Description != own {
		t.Errorf("own description: the answer states %q", given.Description)
	}
	// the prompt: the few-shot prompt and header, then the description part
	base := guess.PromptTokens // a COT answer's prompt holds no description: generated ones count as completion
	if given.PromptTokens != base+part {
		t.Errorf("prompt tokens %d with the user's description, %d without: want %d more (the description part)", given.PromptTokens, base, part)
	}
	if guess.Description == own {
		t.Errorf("without a description the engine should write its own guess, got the user's")
	}
}

// TestDescriptionAPIAndPage: PUT /api/me/description stores the user's
// own description (GET then reports it, "source": "user"), which the COT
// engine answers from ("fspo.user_description"); "" gives the model's guess
// back; the Ask page shows it in an edit box that saves it.
func TestDescriptionAPIAndPage(t *testing.T) {
	eng, _ := storiesEngine(t, episode.COT)
	eng.RawBase = false
	e := newEnv(t, func(c *serve.Config) { c.Engine = eng; c.MaxTokens = 16 })
	_, tok := e.user("alice")
	e.pref(tok, "Once upon a time", "a happy dog ran.", "a sad cat sat.")
	own := "Likes dogs and short happy stories."
	if code, body, _ := e.do("PUT", "/api/me/description", tok, map[string]string{"description": "  " + own + " "}); code != 200 || !strings.Contains(string(body), `"source":"user"`) {
		t.Fatalf("PUT description: %d %s", code, body)
	}
	code, body, _ := e.do("GET", "/api/me/description", tok, nil)
	got := decode[map[string]any](t, body)
	if code != 200 || got["description"] != own || got["source"] != "user" {
		t.Errorf("GET description: %d %s", code, body)
	}
	code, body, _ = e.do("POST", "/v1/chat/completions", tok, chatBody("One day, Tom", map[string]any{"model": "stories260K", "temperature": 0, "max_tokens": 8}))
	if info := decode[map[string]any](t, body)["fspo"].(map[string]any); code != 200 || info["user_description"] != own {
		t.Errorf("completion with the user's description: %d %s", code, body)
	}
	if code, body, _ := e.do("PUT", "/api/me/description", tok, map[string]string{"description": ""}); code != 200 || !strings.Contains(string(body), `"source":"model"`) {
		t.Errorf("PUT empty description: %d %s", code, body)
	}
	code, body, _ = e.do("GET", "/api/me/description", tok, nil)
	if got := decode[map[string]any](t, body); code != 200 || got["source"] != "model" || got["description"] == own {
		t.Errorf("GET after removing: %d %s", code, body)
	}
	for _, bad := range []any{map[string]string{"description": "nul\x00"}, map[string]int{"other": 1}, map[string]any{}} {
		if code, body, _ := e.do("PUT", "/api/me/description", tok, bad); code != 400 {
			t.Errorf("PUT %v: %d %s, want 400", bad, code, body)
		}
	}

	b := newBrowser(t, e)
	b.signin(tok)
	code, page := b.get("/ask")
	if code != 200 || strings.Contains(page, `id="description-edit"`) {
		t.Fatalf("the Ask page before any description: %d (an edit box already?)", code)
	}
	form := hidden(page)
	form.Set("description", "Likes cats.")
	if code, page := b.post("/description", form); code != 200 || !strings.Contains(page, "Saved your description") || !strings.Contains(page, ">Likes cats.</textarea>") {
		t.Errorf("saving the description from the page: %d\n%s", code, page)
	}
	if d, err := e.store.Description(context.Background(), decodeUserID(t, e, tok)); err != nil || d != "Likes cats." {
		t.Errorf("stored description %q, %v", d, err)
	}
}
