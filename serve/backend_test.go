package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fspo/dataset"
	"fspo/episode"
	"fspo/serve"
)

// fakeBackend is an OpenAI-compatible chat server on loopback. It answers
// "## Preferred Response\n" + the answer (as a model trained on the paper's
// template writes it), whole or streamed in small pieces, and records each
// request. mode changes its behaviour: "error" (500 with a message),
// "busy" (429), "malformed" (not JSON), "slow" (answers after 2 s),
// "cut" (a stream that stops without a finish reason).
type fakeBackend struct {
	*httptest.Server
	mu       sync.Mutex
	mode     string
	requests []map[string]any
	auth     []string
}

func newFakeBackend(t *testing.T) *fakeBackend {
	f := &fakeBackend{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeBackend) setMode(m string) { f.mu.Lock(); f.mode = m; f.mu.Unlock() }

func (f *fakeBackend) last() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

func (f *fakeBackend) serve(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	mode := f.mode
	f.mu.Unlock()
	if r.URL.Path != "/v1/chat/completions" {
		http.NotFound(w, r)
		return
	}
	switch mode {
	case "error":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(500)
		io.WriteString(w, `{"error": {"message": "model exploded", "type": "server_error"}}`)
		return
	case "busy":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(429)
		io.WriteString(w, `{"error": {"message": "too many requests", "type": "rate_limit"}}`)
		return
	case "malformed":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"choices": [`)
		return
	case "slow":
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
			return
		}
	}
	msgs, _ := req["messages"].([]any)
	user := ""
	if len(msgs) > 0 {
		user, _ = msgs[len(msgs)-1].(map[string]any)["content"].(string)
	}
	seed, _ := req["seed"].(float64)
	answer := fmt.Sprintf("Answer %d to %d characters.", int64(seed)%7, len(user))
	full := "## Preferred Response\n" + answer
	if stream, _ := req["stream"].(bool); !stream {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": "x", "object": "chat.completion", "created": 1, "model": req["model"],
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": full}, "finish_reason": "stop"}},
			"usage":   map[string]any{"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		w.(http.Flusher).Flush()
	}
	chunk := func(content string, finish any) map[string]any {
		return map[string]any{"id": "x", "object": "chat.completion.chunk", "created": 1, "model": req["model"],
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": content}, "finish_reason": finish}}}
	}
	for i := 0; i < len(full); i += 3 { // pieces that split the header too
		send(chunk(full[i:min(i+3, len(full))], nil))
	}
	if mode == "cut" {
		return
	}
	send(chunk("", "stop"))
	send(map[string]any{"id": "x", "object": "chat.completion.chunk", "created": 1, "model": req["model"], "choices": []any{},
		"usage": map[string]any{"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})
	io.WriteString(w, "data: [DONE]\n\n")
}

func backendEnv(t *testing.T, url string, timeout time.Duration) *env {
	t.Helper()
	eng, err := serve.NewBackend(serve.BackendConfig{Label: "fspo", BaseURL: url, Model: "served-model", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return newEnv(t, func(c *serve.Config) { c.Engine = eng; c.Shots = 4 })
}

// TestBackendServesPersonalizedPrompts: through the real server, a
// personalized chat completion reaches the backend as one user message, the
// paper's plain template over the user's stored preferences (oldest first,
// question last) and nothing else of the user; the answer comes back
// without the template's header, whole and streamed; a plain request is
// forwarded as its question alone.
func TestBackendServesPersonalizedPrompts(t *testing.T) {
	fb := newFakeBackend(t)
	e := backendEnv(t, fb.URL+"/v1", 10*time.Second)
	_, tok := e.user("alice")
	shots := []dataset.Record{{Prompt: "q1", Chosen: "short and kind", Rejected: "long and rude"}, {Prompt: "q2", Chosen: "yes", Rejected: "no"}}
	for _, s := range shots {
		e.pref(tok, s.Prompt, s.Chosen, s.Rejected)
	}
	question := "What should I read?"
	wantPrompt := episode.PromptFor(episode.Plain, episode.Paper, shots, question, "")
	want := fmt.Sprintf("Answer 5 to %d characters.", len(wantPrompt))

	code, body, _ := e.do("POST", "/v1/chat/completions", tok, chatBody(question, map[string]any{"model": "fspo", "seed": 5, "max_tokens": 30}))
	out := decode[map[string]any](t, body)
	if code != 200 {
		t.Fatalf("chat completion: %d %s", code, body)
	}
	choice := out["choices"].([]any)[0].(map[string]any)
	if got := choice["message"].(map[string]any)["content"]; got != want || out["fspo"].(map[string]any)["shots"] != 2.0 || out["usage"].(map[string]any)["prompt_tokens"] != 11.0 {
		t.Errorf("answer %q (want %q), fspo %v, usage %v", got, want, out["fspo"], out["usage"])
	}
	sent := fb.last()
	msgs := sent["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["role"] != "user" || msgs[0].(map[string]any)["content"] != wantPrompt {
		t.Errorf("the backend got messages %v, want one user message:\n%s", msgs, wantPrompt)
	}
	allowed := []string{"model", "messages", "max_tokens", "temperature", "top_p", "seed", "stop", "stream", "stream_options"}
	for k := range sent {
		if !slices.Contains(allowed, k) {
			t.Errorf("the backend got field %q: only the rendered prompt and sampling settings may leave", k)
		}
	}
	if sent["model"] != "served-model" || sent["max_tokens"] != 30.0 || sent["seed"] != 5.0 {
		t.Errorf("the backend got model %v, max_tokens %v, seed %v", sent["model"], sent["max_tokens"], sent["seed"])
	}

	// streamed: the pieces make the same answer; the header never shows
	req, _ := http.NewRequest("POST", e.base+"/v1/chat/completions", strings.NewReader(mustJSON(chatBody(question, map[string]any{"model": "fspo", "seed": 5, "stream": true}))))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	finish := ""
	for _, ev := range sseEvents(t, resp) {
		var c struct {
			Choices []struct {
				Delta        struct{ Content string }
				FinishReason *string `json:"finish_reason"`
			}
		}
		if ev == "[DONE]" || json.Unmarshal([]byte(ev), &c) != nil || len(c.Choices) == 0 {
			continue
		}
		text.WriteString(c.Choices[0].Delta.Content)
		if c.Choices[0].FinishReason != nil {
			finish = *c.Choices[0].FinishReason
		}
	}
	resp.Body.Close()
	if text.String() != want || finish != "stop" {
		t.Errorf("streamed %q (finish %q), want %q", text.String(), finish, want)
	}

	code, body, _ = e.do("POST", "/v1/chat/completions", tok, chatBody(question, map[string]any{"model": "fspo", "personalize": false}))
	if code != 200 || fb.last()["messages"].([]any)[0].(map[string]any)["content"] != question {
		t.Errorf("plain request: %d %s; the backend got %v, want the question alone", code, body, fb.last()["messages"])
	}
}

// TestBackendFailures: a backend that fails, is busy, answers malformed
// data, is too slow, breaks off its stream or is down gives the client a
// clear 502/503/504 (or an error event on a started stream) with the
// backend's message, and the user's stored preferences stay as they were.
func TestBackendFailures(t *testing.T) {
	fb := newFakeBackend(t)
	e := backendEnv(t, fb.URL+"/v1", 500*time.Millisecond)
	_, tok := e.user("alice")
	e.pref(tok, "q", "a", "b")
	for _, tc := range []struct {
		mode string
		code int
		want string
	}{
		{"error", 502, "answered 500: model exploded"},
		{"busy", 503, "answered 429: too many requests"},
		{"malformed", 502, "backend fspo"},
		{"slow", 504, "no answer within 500ms"},
	} {
		fb.setMode(tc.mode)
		code, body, _ := e.do("POST", "/v1/chat/completions", tok, chatBody("hi", map[string]any{"model": "fspo"}))
		if code != tc.code || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %d %s, want %d mentioning %q", tc.mode, code, body, tc.code, tc.want)
		}
	}
	fb.setMode("cut")
	req, _ := http.NewRequest("POST", e.base+"/v1/chat/completions", strings.NewReader(mustJSON(chatBody("hi", map[string]any{"model": "fspo", "stream": true}))))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	events := sseEvents(t, resp)
	resp.Body.Close()
	if len(events) == 0 || !strings.Contains(events[len(events)-1], "without a finish reason") {
		t.Errorf("a stream broken off by the backend ends with %q, want an error event", events)
	}

	down := backendEnv(t, "http://127.0.0.1:1/v1", time.Second) // nothing listens on port 1
	_, tok2 := down.user("bob")
	if code, body, _ := down.do("POST", "/v1/chat/completions", tok2, chatBody("hi", map[string]any{"model": "fspo"})); code != 503 || !strings.Contains(string(body), "unreachable") {
		t.Errorf("backend down: %d %s, want 503", code, body)
	}
	code, body, _ := e.do("GET", "/api/preferences", tok, nil)
	if prefs := decode[map[string]any](t, body)["data"].([]any); code != 200 || len(prefs) != 1 {
		t.Errorf("after the failures alice has %d preferences (%d), want her 1", len(prefs), code)
	}
}

// TestBackendPair: labelling pairs are two plain samples with different
// seeds (and different texts).
func TestBackendPair(t *testing.T) {
	fb := newFakeBackend(t)
	eng, err := serve.NewBackend(serve.BackendConfig{BaseURL: fb.URL + "/v1", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	a, b, err := eng.Pair(context.Background(), "Which dog?", 3)
	if err != nil || a == b || !strings.HasPrefix(a, "## Preferred") && !strings.HasPrefix(a, "Answer") {
		t.Errorf("pair %q / %q, %v: want two different plain answers", a, b, err)
	}
	if _, err := serve.NewBackend(serve.BackendConfig{BaseURL: "ftp://x", Model: "m"}); err == nil {
		t.Error("a non-HTTP backend URL: no error")
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
