package serve_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"fspo/serve"
	"fspo/serve/servetest"
)

func chatBody(question string, extra map[string]any) map[string]any {
	b := map[string]any{"model": "fake", "messages": []map[string]any{
		{"role": "system", "content": "be nice"}, {"role": "user", "content": question}}}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

type chatResp struct {
	Object  string
	Choices []struct {
		Message      struct{ Role, Content string }
		Text         string
		FinishReason string `json:"finish_reason"`
	}
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
	FSPO struct {
		UserDescription string `json:"user_description"`
		Shots           int
		Personalized    bool
		Strategy        string `json:"shot_strategy"`
	} `json:"fspo"`
}

// TestChatShotSelection checks which stored preferences become the shots.
func TestChatShotSelection(t *testing.T) {
	e := newEnv(t, func(c *serve.Config) { c.Shots = 3; c.ShotBudget = 25 })
	_, tok := e.user("alice")
	for _, c := range []string{"c1", "c2", "c3", "c4", "c5"} {
		e.pref(tok, "q", c+"-chosen", "r") // 1 + 9 + 1 = 11 bytes each
	}
	for _, tc := range []struct {
		name      string
		extra     map[string]any
		wantText  string
		wantShots int
		wantDesc  string
	}{
		{"recent default", nil, "personalized with 3 shots (last: c5-chosen)", 3, "likes: c5-chosen"},
		{"shots 1", map[string]any{"shots": 1}, "personalized with 1 shots (last: c5-chosen)", 1, "likes: c5-chosen"},
		{"shots 0", map[string]any{"shots": 0}, "personalized with 0 shots", 0, ""},
		{"all-fit budget 25 bytes", map[string]any{"shot_strategy": "all-fit"}, "personalized with 2 shots (last: c5-chosen)", 2, "likes: c5-chosen"},
		{"random", map[string]any{"shot_strategy": "random", "shots": 4, "seed": 7}, "personalized with 4 shots", 4, "likes: "},
		{"not personalized", map[string]any{"personalize": false}, "[fake] base answer to hello", 0, ""},
	} {
		code, body, _ := e.do("POST", "/v1/chat/completions", tok, chatBody("hello", tc.extra))
		r := decode[chatResp](t, body)
		if code != 200 || len(r.Choices) != 1 {
			t.Errorf("%s: %d %s", tc.name, code, body)
			continue
		}
		if got := r.Choices[0].Message.Content; !strings.Contains(got, tc.wantText) || r.Choices[0].Message.Role != "assistant" {
			t.Errorf("%s: content %q, want it to contain %q", tc.name, got, tc.wantText)
		}
		if r.FSPO.Shots != tc.wantShots || !strings.HasPrefix(r.FSPO.UserDescription, tc.wantDesc) || (tc.wantDesc == "" && r.FSPO.UserDescription != "") {
			t.Errorf("%s: fspo = %+v, want %d shots, description %q", tc.name, r.FSPO, tc.wantShots, tc.wantDesc)
		}
		if r.Object != "chat.completion" || r.Choices[0].FinishReason != "stop" || r.Usage.TotalTokens != r.Usage.PromptTokens+r.Usage.CompletionTokens {
			t.Errorf("%s: envelope %+v", tc.name, r)
		}
	}
}

func TestCompletionsEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	_, tok := e.user("alice")
	e.pref(tok, "q", "liked", "disliked")
	code, body, _ := e.do("POST", "/v1/completions", tok, map[string]any{"prompt": []string{"tell me"}, "max_tokens": 3})
	r := decode[chatResp](t, body)
	if code != 200 || r.Object != "text_completion" || r.Choices[0].Text != "[fake] personalized with " ||
		r.Choices[0].FinishReason != "length" || r.Usage.CompletionTokens != 3 || r.FSPO.Shots != 1 {
		t.Errorf("POST /v1/completions = %d %s", code, body)
	}
}

// sseEvents reads a server-sent event stream into its data payloads.
func sseEvents(t *testing.T, resp *http.Response) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("stream line %q is not a data line", line)
		}
		out = append(out, data)
	}
	return out
}

func TestStreamingWireFormat(t *testing.T) {
	e := newEnv(t, nil)
	_, tok := e.user("alice")
	e.pref(tok, "q", "liked", "disliked")
	body, _ := json.Marshal(chatBody("a b", map[string]any{"stream": true, "stream_options": map[string]bool{"include_usage": true}}))
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/chat/completions", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("stream response %d %q", resp.StatusCode, ct)
	}
	events := sseEvents(t, resp)
	if len(events) < 4 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("events %q: want content chunks, a final chunk, usage and [DONE]", events)
	}
	var text strings.Builder
	var final, usage map[string]any
	for i, ev := range events[:len(events)-1] {
		var c struct {
			Object  string
			Choices []struct {
				Delta        struct{ Role, Content string }
				FinishReason *string `json:"finish_reason"`
			}
			FSPO  map[string]any `json:"fspo"`
			Usage map[string]any
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil || c.Object != "chat.completion.chunk" {
			t.Fatalf("event %d %q: %v", i, ev, err)
		}
		if i == 0 && c.Choices[0].Delta.Role != "assistant" {
			t.Errorf("first chunk has no assistant role: %s", ev)
		}
		if len(c.Choices) == 0 {
			usage = c.Usage
			continue
		}
		text.WriteString(c.Choices[0].Delta.Content)
		if c.Choices[0].FinishReason != nil {
			final = c.FSPO
		}
	}
	if want := "[fake] personalized with 1 shots (last: liked): answer to a b"; text.String() != want {
		t.Errorf("streamed text %q, want %q", text.String(), want)
	}
	if final == nil || final["user_description"] != "likes: liked" || final["shots"] != 1.0 {
		t.Errorf("final chunk fspo = %v", final)
	}
	if usage == nil || usage["completion_tokens"] != 11.0 {
		t.Errorf("usage chunk = %v, want 11 completion tokens (one per word)", usage)
	}
}

// TestOpenAIClient talks to the server with the official openai-go client,
// plain and streaming, and reads the fspo extension field.
func TestOpenAIClient(t *testing.T) {
	e := newEnv(t, func(c *serve.Config) { c.Engines = map[string]serve.Engine{"other": servetest.New("other")} })
	_, tok := e.user("alice")
	e.pref(tok, "q", "dragons", "cats")
	client := openai.NewClient(option.WithBaseURL(e.srv.URL+"/v1/"), option.WithAPIKey(tok), option.WithMaxRetries(0))
	params := openai.ChatCompletionNewParams{Model: "fake", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("a story")}}

	resp, err := client.Chat.Completions.New(t.Context(), params)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "[fake] personalized with 1 shots (last: dragons): answer to a story" {
		t.Errorf("content = %q", got)
	}
	if raw := resp.JSON.ExtraFields["fspo"].Raw(); !strings.Contains(raw, `"user_description":"likes: dragons"`) {
		t.Errorf("fspo field = %s", raw)
	}

	base, err := client.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "other",
		Messages: params.Messages}, option.WithJSONSet("personalize", false))
	if err != nil {
		t.Fatal(err)
	}
	if got := base.Choices[0].Message.Content; got != "[other] base answer to a story" {
		t.Errorf("personalize false on engine other: %q", got)
	}

	stream := client.Chat.Completions.NewStreaming(t.Context(), params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != resp.Choices[0].Message.Content {
		t.Errorf("streamed %q, want %q", got, resp.Choices[0].Message.Content)
	}

	bad := openai.NewClient(option.WithBaseURL(e.srv.URL+"/v1/"), option.WithAPIKey("wrong"), option.WithMaxRetries(0))
	_, err = bad.Chat.Completions.New(t.Context(), params)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Errorf("wrong key: error %v, want a 401 API error", err)
	}
}
