package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// fastBackend starts an OpenAI-compatible chat server on loopback that
// answers at once (min(max_tokens, 16) words, streamed a word per event
// when asked), so that a load test measures fspo and not a model. It
// returns its base URL and how to stop it.
func fastBackend() (string, func() error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("fspo bench-serve: fake backend: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(fastBackendAnswer), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	stop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		// a connection a client opened but never used counts as busy for
		// 5 s; the load is over, so close what is left
		return srv.Close()
	}
	return "http://" + ln.Addr().String() + "/v1", stop, nil
}

func fastBackendAnswer(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model     string `json:"model"`
		MaxTokens int    `json:"max_tokens"`
		Stream    bool   `json:"stream"`
	}
	if r.URL.Path != "/v1/chat/completions" || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, `{"error": {"message": "want a chat completion"}}`, http.StatusBadRequest)
		return
	}
	n := 16
	if req.MaxTokens > 0 {
		n = min(n, req.MaxTokens)
	}
	words := strings.Fields(strings.Repeat("a quick answer from the fake backend ", 3))[:n]
	usage := map[string]int{"prompt_tokens": 100, "completion_tokens": n, "total_tokens": 100 + n}
	finish := "length"
	if n < req.MaxTokens {
		finish = "stop"
	}
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": "fake", "object": "chat.completion", "created": 1, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "message": map[string]string{"role": "assistant", "content": strings.Join(words, " ")}, "finish_reason": finish}},
			"usage":   usage})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	send := func(choices []any, extra map[string]any) {
		ev := map[string]any{"id": "fake", "object": "chat.completion.chunk", "created": 1, "model": req.Model, "choices": choices}
		for k, v := range extra {
			ev[k] = v
		}
		b, _ := json.Marshal(ev)
		fmt.Fprintf(w, "data: %s\n\n", b)
	}
	for i, word := range words {
		if i > 0 {
			word = " " + word
		}
		send([]any{map[string]any{"index": 0, "delta": map[string]string{"content": word}, "finish_reason": nil}}, nil)
	}
	send([]any{map[string]any{"index": 0, "delta": map[string]string{}, "finish_reason": finish}}, nil)
	send([]any{}, map[string]any{"usage": usage})
	fmt.Fprint(w, "data: [DONE]\n\n")
}
