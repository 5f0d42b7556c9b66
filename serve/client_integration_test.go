package serve_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"golang.org/x/time/rate"

	"fspo/episode"
	"fspo/judge"
	"fspo/llm"
	"fspo/serve"
	"fspo/serve/servetest"
)

// The project's own LLM client (package llm, the one synthesis and the LLM
// judge use) against the project's own OpenAI-compatible server, over
// loopback with a SQLite store: issue 4's "run the client against the
// project's own server".

// projectClient is an llm.Ensemble pointed at e's /v1 with the user token.
func projectClient(t *testing.T, e *env, model, token string, embed bool) *llm.Ensemble {
	t.Helper()
	ep := llm.Endpoint{BaseURL: e.base + "/v1", Model: model, APIKeyEnv: "FSPO_USER_TOKEN"}
	if embed {
		ep.EmbeddingModel = model
	}
	c, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{ep}, Retries: -1, Timeout: llm.Duration(30 * time.Second),
		Getenv: func(k string) string {
			if k == "FSPO_USER_TOKEN" {
				return token
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// callKind is the failure kind of a finally failed call, or "" when err is
// not an *llm.CallError.
func callKind(err error) string {
	var ce *llm.CallError
	if errors.As(err, &ce) {
		return ce.Kind
	}
	return ""
}

// TestProjectClientAgainstServer drives the real stories260K engine (batched)
// through the server with llm.Ensemble: greedy completions equal the engine's
// own answer with the same stored shots; the server's limits and missing
// features come back as classified, non-silent errors.
func TestProjectClientAgainstServer(t *testing.T) {
	me, _ := storiesEngine(t, episode.Plain)
	me.Batcher = startBatcher(t, me.Model, 8)
	e := newEnv(t, func(c *serve.Config) { c.Engine, c.RateLimit, c.MaxTokens = me, rate.Inf, 64 })
	_, tok := e.user("client")
	shot := serve.Shot{Prompt: "Once upon a time, there was a dog", Chosen: "The dog ran to the park.", Rejected: "The dog slept."}
	e.pref(tok, shot.Prompt, shot.Chosen, shot.Rejected)
	client := projectClient(t, e, me.Name(), tok, false)
	ctx := t.Context()
	const question = "Once upon a time, there was a cat"

	t.Run("greedy completion equals the engine's answer", func(t *testing.T) {
		checkGreedyMatchesEngine(t, ctx, client, me, shot, question)
	})
	checkClassifiedFailures(t, ctx, client, question)

	t.Run("unknown model and wrong token", func(t *testing.T) {
		_, err := projectClient(t, e, "gpt-4o", tok, false).Complete(ctx, llm.Request{Messages: []llm.Message{{Role: "user", Content: "hi"}}})
		if callKind(err) != llm.KindClient || !strings.Contains(apiMessage(err), `unknown model "gpt-4o"`) {
			t.Errorf("unknown model: %v", err)
		}
		_, err = projectClient(t, e, me.Name(), "not-a-token", false).Complete(ctx, llm.Request{Messages: []llm.Message{{Role: "user", Content: "hi"}}})
		if callKind(err) != llm.KindClient || !strings.Contains(err.Error(), "401") {
			t.Errorf("wrong token: %v", err)
		}
	})

	t.Run("log-probs are absent, not invented", func(t *testing.T) {
		got, err := client.Complete(ctx, llm.Request{Stage: "judge", Messages: []llm.Message{{Role: "user", Content: question}},
			MaxTokens: 4, TopLogprobs: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Logprobs) != 0 {
			t.Errorf("server without log-probs: client returned %d token log-probs", len(got.Logprobs))
		}
	})

	t.Run("no embeddings endpoint", func(t *testing.T) {
		_, err := projectClient(t, e, me.Name(), tok, true).Embed(ctx, []string{"a cat"})
		if callKind(err) != llm.KindClient || !strings.Contains(err.Error(), "404") {
			t.Errorf("embeddings: %v; want a client error with 404", err)
		}
	})
	t.Run("llm judge with the story model", func(t *testing.T) {
		checkStoryModelAsJudge(t, ctx, client)
	})
}

// checkGreedyMatchesEngine checks that the client's greedy completions of
// question (whatever the seed) equal the engine's own answer with the
// stored shot, usage and model included, and that the client counts them.
func checkGreedyMatchesEngine(t *testing.T, ctx context.Context, client *llm.Ensemble, me *serve.ModelEngine, shot serve.Shot, question string) {
	t.Helper()
	want, err := me.Answer(ctx, serve.AnswerRequest{Question: question, Shots: []serve.Shot{shot}, Personalize: true,
		MaxTokens: 32, Temperature: 0, TopP: 1})
	if err != nil {
		t.Fatal(err)
	}
	for try := range 2 {
		got, err := client.Complete(ctx, llm.Request{Stage: "plain", Messages: []llm.Message{{Role: "user", Content: question}},
			MaxTokens: 32, Seed: int64(try + 1)})
		if err != nil {
			t.Fatal(err)
		}
		if got.Text != want.Text {
			t.Errorf("try %d: text\n got %q\nwant %q", try, got.Text, want.Text)
		}
		if got.PromptTokens != want.PromptTokens || got.CompletionTokens != want.CompletionTokens {
			t.Errorf("try %d: usage %d+%d tokens, want %d+%d", try, got.PromptTokens, got.CompletionTokens, want.PromptTokens, want.CompletionTokens)
		}
		if got.Model != me.Name() || got.Cached || got.Latency <= 0 {
			t.Errorf("try %d: response model %q cached %v latency %v", try, got.Model, got.Cached, got.Latency)
		}
	}
	if st := client.Stats(); st.Calls < 2 || st.FailureCount() != 0 {
		t.Errorf("accounting: %+v; want 2 calls and no failures", st)
	}
}

// checkClassifiedFailures runs a subtest for each failure the client must
// classify, each after one attempt (Retries -1): a text that fails the
// schema, max tokens above the server's limit, a question longer than the
// context.
func checkClassifiedFailures(t *testing.T, ctx context.Context, client *llm.Ensemble, question string) {
	t.Helper()
	cases := []struct {
		name    string
		req     llm.Request
		wantErr string // in the message
		kind    string
	}{
		// The server ignores response_format; the client validates the text
		// against the schema itself, and a story is not JSON.
		{"json schema", llm.Request{Stage: "persona", Messages: []llm.Message{{Role: "user", Content: question}}, MaxTokens: 16,
			Schema: &llm.Schema{Name: "persona", JSON: map[string]any{"type": "object", "required": []any{"name"},
				"properties": map[string]any{"name": map[string]any{"type": "string"}}}}}, "", llm.KindSchema},
		{"max tokens above the server's limit", llm.Request{Stage: "plain", Messages: []llm.Message{{Role: "user", Content: question}},
			MaxTokens: 65}, "max_tokens 65 is outside 1..64", llm.KindClient},
		{"question longer than the context", llm.Request{Stage: "plain", Messages: []llm.Message{{Role: "user",
			Content: strings.Repeat("the cat sat on the mat. ", 150)}}, MaxTokens: 8}, "does not fit the model's 512 positions", llm.KindClient},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Complete(ctx, tc.req)
			if got := callKind(err); got != tc.kind || !strings.Contains(apiMessage(err), tc.wantErr) {
				t.Errorf("error %v (kind %q); want kind %q containing %q", err, got, tc.kind, tc.wantErr)
			}
		})
	}
}

// checkStoryModelAsJudge checks that the LLM judge over the story model
// fails visibly as unparsable, and that the failure is counted.
func checkStoryModelAsJudge(t *testing.T, ctx context.Context, client *llm.Ensemble) {
	t.Helper()
	// The judge prompt (AlpacaEval's, about 1,500 characters, fits the
	// 512 positions); greedy stories260K continues it with story text, not
	// a letter, and the server has no log-probs: the comparison fails
	// visibly as unparsable and is counted.
	j := judge.NewLLM(client, judge.LLMOptions{})
	_, err := j.Compare(ctx, "This user likes cats.", "Tell me a story.", "The cat purred.", "The dog barked.")
	if !errors.Is(err, judge.ErrUnparsable) {
		t.Fatalf("stories260K as a judge: error %v; want ErrUnparsable", err)
	}
	if u := j.Usage(); u.Calls != 1 || u.Unparsable != 1 || u.FromLogprobs != 0 || u.FromText != 0 {
		t.Errorf("judge usage %+v; want 1 call, unparsable, none from log-probs or text", u)
	}
	t.Logf("stories260K as judge: %v", err)
}

// apiMessage is the server's error message carried by a call's error: the
// openai-go error keeps it in Message (its Error() prints only the status).
func apiMessage(err error) string {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		return apiErr.Message
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestLLMJudgeThroughServer: the LLM judge over the server's wire, with a
// scripted engine answering the judge prompt with a letter. The server has
// no log-probs, so every verdict is read from the answer text, and both
// orders agree on the output that mentions a cat.
func TestLLMJudgeThroughServer(t *testing.T) {
	eng := servetest.New("judge")
	eng.AnswerFunc = func(ctx context.Context, req serve.AnswerRequest) (serve.Answer, error) {
		// The template shows output m before output M: answer the letter of
		// the output that mentions the cat.
		cat, dog := strings.Index(req.Question, "The cat purred."), strings.Index(req.Question, "The dog barked.")
		if cat < 0 || dog < 0 || len(req.Shots) != 0 {
			return serve.Answer{}, fmt.Errorf("unexpected judge request (%d shots): %q", len(req.Shots), req.Question)
		}
		letter := "M"
		if cat < dog {
			letter = "m"
		}
		return serve.Answer{Text: letter, CompletionTokens: 1, FinishReason: "stop"}, nil
	}
	e := newEnv(t, func(c *serve.Config) { c.Engine, c.RateLimit = eng, rate.Inf })
	_, tok := e.user("judge")
	client := projectClient(t, e, "judge", tok, false)
	j := judge.NewLLM(client, judge.LLMOptions{})
	o, err := judge.BothOrders(t.Context(), j, "This user likes cats.", "Tell me a story.", "The cat purred.", "The dog barked.")
	if err != nil {
		t.Fatal(err)
	}
	if o.Score != 1 || o.Dropped || o.Forward != 1 || o.Backward != 0 {
		t.Errorf("outcome %+v; want a consistent win (forward 1, backward 0)", o)
	}
	if u := j.Usage(); u.Calls != 2 || u.FromText != 2 || u.FromLogprobs != 0 {
		t.Errorf("usage %+v; want 2 calls, both read from text", u)
	}
}
