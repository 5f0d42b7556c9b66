package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fspo/dataset"
	"fspo/episode"
	"fspo/tokenizer/chat"
)

const testAdmin = "serve-cli-admin-token-0123"

func serveEnv(stdout io.Writer) *Env {
	return &Env{Stdout: stdout, Stderr: io.Discard, Stdin: strings.NewReader(""), Getenv: func(k string) string {
		if k == "FSPO_ADMIN_TOKEN" {
			return testAdmin
		}
		return os.Getenv(k)
	}}
}

func TestServeUsageErrors(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "x.db")
	for _, tc := range []struct {
		args []string
		env  *Env
		want string
	}{
		{[]string{"serve", "--db", db}, &Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "short" }}, "FSPO_ADMIN_TOKEN"},
		{[]string{"serve"}, serveEnv(io.Discard), "--db is required"},
		{[]string{"serve", "--db", "mysql://x"}, serveEnv(io.Discard), "want sqlite:PATH or postgres://"},
		{[]string{"serve", "--db", db, "--variant", "oracle"}, serveEnv(io.Discard), "--variant"},
		{[]string{"serve", "--db", db, "--engine", "nope"}, serveEnv(io.Discard), "NAME=PATH"},
		{[]string{"serve", "--db", db, "--strategy", "best"}, serveEnv(io.Discard), `unknown shot strategy "best"`},
	} {
		err := Run(context.Background(), tc.env, tc.args)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("fspo %v: error %v, want a usage error mentioning %q", tc.args, err, tc.want)
		}
	}
}

// startServe runs `fspo serve` on a free loopback port with a fresh SQLite
// store and the given flags; it returns the base URL, a caller of its API
// and how to stop it (which checks that it stopped cleanly).
func startServe(t *testing.T, flags ...string) (call func(method, path, token, body string) (int, map[string]any), stop func()) {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(t.TempDir(), "s.db")}, flags...)
	go func() {
		done <- Run(ctx, serveEnv(pw), args)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		cancel()
		t.Fatalf("no output from fspo serve: %v", <-done)
	}
	go io.Copy(io.Discard, pr)
	_, rest, ok := strings.Cut(sc.Text(), "listening on ")
	if !ok {
		cancel()
		t.Fatalf("first line %q does not say where it listens", sc.Text())
	}
	base := strings.Fields(rest)[0]
	call = func(method, path, token, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("fspo serve after shutdown: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("fspo serve did not stop after cancellation")
		}
	}
	return call, stop
}

// newServeUser creates a user through the admin API and stores prefs (each
// {prompt, chosen, rejected}) for it; it returns the user's token.
func newServeUser(t *testing.T, call func(method, path, token, body string) (int, map[string]any), prefs ...[3]string) string {
	t.Helper()
	code, u := call("POST", "/api/users", testAdmin, `{"name":"cli"}`)
	if code != 201 {
		t.Fatalf("create user: %d %v", code, u)
	}
	tok := u["token"].(string)
	for _, p := range prefs {
		body, _ := json.Marshal(map[string]string{"prompt": p[0], "chosen": p[1], "rejected": p[2]})
		if code, out := call("POST", "/api/preferences", tok, string(body)); code != 201 {
			t.Fatalf("add preference: %d %v", code, out)
		}
	}
	return tok
}

// TestServeCommand starts `fspo serve` on a free port with stories260K and
// SQLite, makes a user, a preference and a completion, then stops it.
func TestServeCommand(t *testing.T) {
	sharedModel(t)
	call, stop := startServe(t, "--raw-base")
	defer stop()
	tok := newServeUser(t, call, [3]string{"Once upon a time,", "a happy dog", "a sad cat"})
	code, out := call("POST", "/v1/completions", tok, `{"prompt":"One day,","max_tokens":20,"seed":5}`)
	if code != 200 || out["fspo"].(map[string]any)["shots"] != 1.0 {
		t.Errorf("completion: %d %v", code, out)
	}
}

// TestServeChatModel serves chat models (tiny random ones with Qwen3's real
// tokenizer and template, and with SmolLM2's tokenizer pipeline and ChatML
// template) over HTTP: a personalized chat completion's prompt is the
// few-shot text rendered as the user turn by the model's own template, then
// the assistant turn's opening (Qwen3: an empty think block) and the
// layout's preferred-response mark (its token count is checked against
// rendering and tokenizing those texts here); the answer is an assistant
// message that stops at the end of turn or max_tokens; the plain request
// renders the question alone. The SmolLM2-shaped model is served again with
// its KV caches in halves (--kv-cache f16).
func TestServeChatModel(t *testing.T) {
	for _, tc := range []struct{ name, kind, opening, kv string }{
		{"qwen3", "qwen3", "<think>\n\n</think>\n\n", "f32"},
		{"smollm2_shape", "smollm2_shape", "", "f32"},
		{"smollm2_shape_kv_f16", "smollm2_shape", "", "f16"},
	} {
		t.Run(tc.name, func(t *testing.T) { serveChatModel(t, tc.kind, tc.opening, tc.kv) })
	}
}

func serveChatModel(t *testing.T, kind, opening, kv string) {
	dir := chatFolder(t, kind)
	call, stop := startServe(t, "--model", dir, "--dtype", "f32", "--kv-cache", kv)
	defer stop()
	shot := [3]string{"Tell me about animal a.", "I love cats!", "Nothing to say."}
	tok := newServeUser(t, call, shot)
	question := "Tell me about animal z."

	lm, err := loadLM(&Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: os.Getenv}, dir)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := loadChatTemplate(dir)
	if err != nil {
		t.Fatal(err)
	}
	promptTokens := func(text string) int {
		s, err := tpl.Render([]chat.Message{{Role: "user", Content: text}}, chat.Options{AddGenerationPrompt: true})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(s, "<|im_start|>user\n"+text) || !strings.HasSuffix(s, "<|im_start|>assistant\n") {
			t.Fatalf("the template rendered %q", s)
		}
		n := 0
		for _, part := range []string{s, opening, episode.Compact.Preferred} {
			n += len(lm.Tok.Encode(part, false))
		}
		return n
	}
	shots := []dataset.Record{{Prompt: shot[0], Chosen: shot[1], Rejected: shot[2]}}
	for _, tc := range []struct {
		personalize bool
		text        string
	}{
		{true, episode.PromptFor(episode.Plain, episode.Compact, shots, question, "")},
		{false, episode.PromptFor(episode.ZeroShot, episode.Compact, nil, question, "")},
	} {
		body := fmt.Sprintf(`{"messages":[{"role":"user","content":%q}],"max_tokens":6,"temperature":0,"personalize":%v}`, question, tc.personalize)
		code, out := call("POST", "/v1/chat/completions", tok, body)
		if code != 200 {
			t.Fatalf("chat completion (personalize %v): %d %v", tc.personalize, code, out)
		}
		choice := out["choices"].([]any)[0].(map[string]any)
		msg := choice["message"].(map[string]any)
		usage := out["usage"].(map[string]any)
		info := out["fspo"].(map[string]any)
		wantShots := map[bool]float64{true: 1, false: 0}[tc.personalize]
		if msg["role"] != "assistant" || info["shots"] != wantShots || info["personalized"] != tc.personalize {
			t.Errorf("personalize %v: message %v, fspo %v", tc.personalize, msg, info)
		}
		if got, want := usage["prompt_tokens"], float64(promptTokens(tc.text)); got != want {
			t.Errorf("personalize %v: prompt_tokens %v, want %v (the template's rendering of the few-shot text)", tc.personalize, got, want)
		}
		n := usage["completion_tokens"].(float64)
		if finish := choice["finish_reason"]; n < 1 || n > 6 || (finish == "length") != (n == 6) {
			t.Errorf("personalize %v: %v completion tokens, finish_reason %v", tc.personalize, n, finish)
		}
	}
}

// TestServeBackend runs `fspo serve --backend` against a minimal
// OpenAI-compatible server on loopback: the completion comes from the
// backend, with the key from --backend-key-env; bad backend flags are usage
// errors.
func TestServeBackend(t *testing.T) {
	var mu sync.Mutex
	var got []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model    string
			Messages []struct{ Content string }
		}
		json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		got = append(got, r.Header.Get("Authorization")+" "+req.Model)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"x","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"## Preferred Response\nfrom the backend"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}}`, req.Model)
	}))
	defer backend.Close()
	t.Setenv("FSPO_TEST_BACKEND_KEY", "sk-test-key")
	call, stop := startServe(t, "--backend", backend.URL+"/v1", "--backend-model", "big-model", "--backend-key-env", "FSPO_TEST_BACKEND_KEY")
	tok := newServeUser(t, call, [3]string{"q", "liked", "disliked"})
	code, out := call("POST", "/v1/chat/completions", tok, `{"model":"fspo","messages":[{"role":"user","content":"hello?"}]}`)
	stop()
	if code != 200 || out["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"] != "from the backend" || out["fspo"].(map[string]any)["shots"] != 1.0 {
		t.Errorf("completion through the backend: %d %v", code, out)
	}
	if len(got) != 1 || got[0] != "Bearer sk-test-key big-model" {
		t.Errorf("the backend saw %q, want one call with the key and the backend's model name", got)
	}
	db := "sqlite:" + filepath.Join(t.TempDir(), "x.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--backend", backend.URL}, "a base URL and a model name are required"},
		{[]string{"--backend", "ftp://x", "--backend-model", "m"}, "want http:// or https://"},
		{[]string{"--backend", backend.URL, "--backend-model", "m", "--backend-key-env", "FSPO_TEST_UNSET_KEY"}, "FSPO_TEST_UNSET_KEY"},
		{[]string{"--backend", backend.URL, "--backend-model", "m", "--variant", "cot"}, "plain and preferred-only"},
	} {
		err := Run(context.Background(), serveEnv(io.Discard), append([]string{"serve", "--db", db}, tc.args...))
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("fspo serve %v: %v, want a usage error mentioning %q", tc.args, err, tc.want)
		}
	}
}

// --elicit-from names what is wrong with the data: a missing folder, a
// malformed line, users without enough labelled pairs.
func TestServeElicitFromErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	few := filepath.Join(dir, "few.jsonl")
	if err := os.WriteFile(bad, []byte(`{"user":"a","prompt":"p"`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(few, []byte(`{"user":"a","prompt":"p","chosen":"x","rejected":"y"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := "sqlite:" + filepath.Join(dir, "x.db")
	for arg, want := range map[string]string{
		filepath.Join(dir, "missing"): "missing",
		bad:                           "bad.jsonl:1",
		few:                           "no user has 5 labelled pairs",
	} {
		err := Run(context.Background(), serveEnv(io.Discard), []string{"serve", "--db", db, "--shots", "4", "--elicit-from", arg})
		if err == nil || !strings.Contains(err.Error(), "--elicit-from") || !strings.Contains(err.Error(), want) {
			t.Errorf("--elicit-from %s: %v, want an error naming %q", arg, err, want)
		}
	}
}
