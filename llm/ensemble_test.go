package llm

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fspo/llm/llmtest"
)

// testConfig points one endpoint at srv with fast backoff.
func testConfig(srv *llmtest.Server) Config {
	return Config{
		Endpoints:      []Endpoint{{Name: "a", BaseURL: srv.BaseURL, Model: "model-a", PriceIn: 1, PriceOut: 2}},
		Concurrency:    4,
		Timeout:        Duration(200 * time.Millisecond),
		Retries:        3,
		InitialBackoff: time.Millisecond,
		MaxBackoff:     5 * time.Millisecond,
	}
}

func mustNew(t testing.TB, cfg Config) *Ensemble {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func userReq(stage, text string) Request {
	return Request{Stage: stage, Messages: []Message{{Role: "user", Content: text}}}
}

var answerSchema = &Schema{Name: "answer", JSON: map[string]any{
	"type":     "object",
	"required": []any{"answer", "score"},
	"properties": map[string]any{
		"answer": map[string]any{"type": "string"},
		"score":  map[string]any{"type": "integer"},
	},
}}

func TestFaultsRetriedThenAnswered(t *testing.T) {
	faults := []llmtest.Fault{llmtest.RateLimit, llmtest.ServerError, llmtest.Hang,
		llmtest.Truncated, llmtest.InvalidJSON, llmtest.EmptyChoices}
	for _, f := range faults {
		t.Run(f.String(), func(t *testing.T) {
			srv := llmtest.New(llmtest.FailFirst(2, f, 10*time.Millisecond, llmtest.Echo))
			defer srv.Close()
			e := mustNew(t, testConfig(srv))
			resp, err := e.Complete(context.Background(), userReq("test", "hello there"))
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if resp.Text != "hello there" {
				t.Errorf("text = %q, want %q", resp.Text, "hello there")
			}
			st := e.Stats()
			if st.Calls != 1 || st.Retries != 2 || st.FailureCount() != 0 {
				t.Errorf("stats calls=%d retries=%d failures=%v, want 1, 2, none", st.Calls, st.Retries, st.Failures)
			}
			if got := len(srv.Requests()); got != 3 {
				t.Errorf("server saw %d requests, want 3", got)
			}
		})
	}
}

func TestFaultsExhaustRetries(t *testing.T) {
	tests := []struct {
		fault    llmtest.Fault
		kind     string
		attempts int
		message  string // the server's error message, as llmtest sends it
	}{
		{llmtest.RateLimit, KindRateLimit, 4, ""},
		{llmtest.ServerError, KindServer, 4, "internal error"},
		{llmtest.Hang, KindTimeout, 4, ""},
		{llmtest.Truncated, KindTruncated, 4, ""},
		{llmtest.InvalidJSON, KindInvalidJSON, 4, ""},
		{llmtest.EmptyChoices, KindEmpty, 4, ""},
		{llmtest.BadRequest, KindClient, 1, "bad request"}, // not retried
	}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			srv := llmtest.New(llmtest.FailFirst(100, tt.fault, 5*time.Millisecond, llmtest.Echo))
			defer srv.Close()
			e := mustNew(t, testConfig(srv))
			_, err := e.Complete(context.Background(), userReq("test", "x"))
			var ce *CallError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *CallError", err)
			}
			if ce.Kind != tt.kind || ce.Attempts != tt.attempts {
				t.Errorf("kind=%s attempts=%d, want %s, %d (err %v)", ce.Kind, ce.Attempts, tt.kind, tt.attempts, err)
			}
			if tt.message != "" && (ce.Message != tt.message || !strings.Contains(err.Error(), tt.message)) {
				t.Errorf("message %q in %q, want the server's %q", ce.Message, err, tt.message)
			}
			if got := len(srv.Requests()); got != tt.attempts {
				t.Errorf("server saw %d requests, want %d", got, tt.attempts)
			}
			if st := e.Stats(); st.Failures[tt.kind] != 1 || st.Calls != 0 || st.Stages["test"].Failures != 1 {
				t.Errorf("stats failures=%v calls=%d, want {%s:1}, 0", st.Failures, st.Calls, tt.kind)
			}
		})
	}
}

func TestSchemaViolationRetriedThenRecorded(t *testing.T) {
	bad := `{"answer": "yes"}` // score missing
	good := `{"answer": "yes", "score": 3}`
	for _, tt := range []struct {
		name      string
		badFirst  int
		wantErr   bool
		wantCalls int
	}{
		{"recovers", 2, false, 3},
		{"gives up", 100, true, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := llmtest.New(func(r llmtest.ChatRequest) llmtest.Reply {
				if r.Attempt <= tt.badFirst {
					return llmtest.Reply{Text: bad}
				}
				return llmtest.Reply{Text: good}
			})
			defer srv.Close()
			e := mustNew(t, testConfig(srv))
			req := userReq("label", "judge this")
			req.Schema = answerSchema
			resp, err := e.Complete(context.Background(), req)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				if k := FailureKind(err); k != KindSchema {
					t.Errorf("kind = %s, want %s", k, KindSchema)
				}
			} else if resp.Text != good {
				t.Errorf("text = %q, want %q", resp.Text, good)
			}
			if got := len(srv.Requests()); got != tt.wantCalls {
				t.Errorf("server saw %d requests, want %d", got, tt.wantCalls)
			}
			// Every answer was paid for, rejected or not: 2 prompt words, 2 or 4 completion words each.
			wantOut := 4*tt.wantCalls - 2*min(tt.badFirst, tt.wantCalls)
			if st := e.Stats(); st.PromptTokens != 2*tt.wantCalls || st.CompletionTokens != wantOut {
				t.Errorf("tokens %d in, %d out; want %d, %d", st.PromptTokens, st.CompletionTokens, 2*tt.wantCalls, wantOut)
			}
			rf := srv.Requests()[0].ResponseFormat
			if rf == nil || rf.Type != "json_schema" || rf.JSONSchema == nil || rf.JSONSchema.Name != "answer" {
				t.Errorf("response_format not sent as json_schema: %+v", rf)
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	const wait = 300 * time.Millisecond
	srv := llmtest.New(llmtest.FailFirst(1, llmtest.RateLimit, wait, llmtest.Echo))
	defer srv.Close()
	e := mustNew(t, testConfig(srv))
	if _, err := e.Complete(context.Background(), userReq("test", "x")); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("server saw %d requests, want 2", len(reqs))
	}
	if gap := reqs[1].Received.Sub(reqs[0].Received); gap < wait {
		t.Errorf("retry came %v after the 429, want >= Retry-After %v", gap, wait)
	}
}

func TestRequestParams(t *testing.T) {
	srv := llmtest.New(nil)
	defer srv.Close()
	cfg := testConfig(srv)
	temp := 0.9
	cfg.Stages = map[string]StageDefaults{"view": {Temperature: &temp, MaxTokens: 77}}
	cfg.Endpoints[0].APIKeyEnv = "TEST_KEY"
	cfg.Getenv = func(k string) string {
		if k == "TEST_KEY" {
			return "sk-test-123"
		}
		return ""
	}
	e := mustNew(t, cfg)
	req := Request{Stage: "view", Seed: 42, TopLogprobs: 3,
		Messages: []Message{{"system", "be brief"}, {"user", "hi"}}}
	if _, err := e.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	req2 := req
	req2.Temperature, req2.MaxTokens = 0.2, 5
	if _, err := e.Complete(context.Background(), req2); err != nil {
		t.Fatal(err)
	}
	got := srv.Requests()
	for i, want := range []struct {
		temp float64
		max  int
	}{{0.9, 77}, {0.2, 5}} {
		r := got[i]
		if r.Temperature == nil || *r.Temperature != want.temp || r.MaxTokens != want.max {
			t.Errorf("request %d: temperature %v max_tokens %d, want %v %d", i, r.Temperature, r.MaxTokens, want.temp, want.max)
		}
		if r.Seed == nil || *r.Seed != 42 || !r.Logprobs || r.TopLogprobs != 3 || r.Model != "model-a" {
			t.Errorf("request %d: seed %v logprobs %v top %d model %q", i, r.Seed, r.Logprobs, r.TopLogprobs, r.Model)
		}
		if len(r.Messages) != 2 || r.Messages[0].Role != "system" || r.Messages[1].Content != "hi" {
			t.Errorf("request %d: messages %+v", i, r.Messages)
		}
		if a := r.Header.Get("Authorization"); a != "Bearer sk-test-123" {
			t.Errorf("request %d: Authorization %q", i, a)
		}
	}
}

func TestMissingAPIKeyIsAnError(t *testing.T) {
	cfg := Config{Endpoints: []Endpoint{{BaseURL: "http://127.0.0.1:1/v1", Model: "m", APIKeyEnv: "NO_SUCH_KEY"}},
		Getenv: func(string) string { return "" }}
	_, err := New(cfg)
	if err == nil || !strings.Contains(err.Error(), "NO_SUCH_KEY") {
		t.Fatalf("err = %v, want one naming NO_SUCH_KEY", err)
	}
}

func TestLogprobsAndAccounting(t *testing.T) {
	srv := llmtest.New(func(r llmtest.ChatRequest) llmtest.Reply {
		return llmtest.Reply{Text: "m", PromptTokens: 1000, CompletionTokens: 500, Logprobs: []llmtest.Token{
			{Token: "m", Logprob: math.Log(0.7), Top: map[string]float64{"m": math.Log(0.7), "M": math.Log(0.2)}},
		}}
	})
	defer srv.Close()
	e := mustNew(t, testConfig(srv)) // prices 1 and 2 per million
	req := userReq("judge", "which?")
	req.TopLogprobs = 2
	resp, err := e.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Logprobs) != 1 || resp.Logprobs[0].Token != "m" {
		t.Fatalf("logprobs = %+v", resp.Logprobs)
	}
	if got, want := resp.Logprobs[0].Top["M"], math.Log(0.2); math.Abs(got-want) > 1e-12 {
		t.Errorf("top[M] = %v, want %v", got, want)
	}
	wantCost := (1000*1.0 + 500*2.0) / 1e6
	if math.Abs(resp.Cost-wantCost) > 1e-15 || resp.PromptTokens != 1000 || resp.CompletionTokens != 500 {
		t.Errorf("cost %v tokens %d/%d, want %v 1000/500", resp.Cost, resp.PromptTokens, resp.CompletionTokens, wantCost)
	}
	if resp.Endpoint != "a" || resp.Model != "model-a" || resp.Latency <= 0 {
		t.Errorf("endpoint %q model %q latency %v", resp.Endpoint, resp.Model, resp.Latency)
	}
	st := e.Stats()
	if st.Calls != 1 || st.PromptTokens != 1000 || st.CompletionTokens != 500 || math.Abs(st.Cost-wantCost) > 1e-15 || st.LatencyP50 <= 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestConcurrencyLimit: the first calls wait until three are in flight
// together (so the limit allows three, however slowly the goroutines start),
// and no call ever sees a fourth (the limit holds).
func TestConcurrencyLimit(t *testing.T) {
	var inFlight, peak atomic.Int64
	full := make(chan struct{})
	var fullOnce sync.Once
	srv := llmtest.New(func(r llmtest.ChatRequest) llmtest.Reply {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if n >= 3 {
			fullOnce.Do(func() { close(full) })
		}
		select {
		case <-full:
		case <-time.After(10 * time.Second): // the limit never let three calls run together
		}
		time.Sleep(5 * time.Millisecond) // keep later calls overlapping, so a fourth would show
		inFlight.Add(-1)
		return llmtest.Echo(r)
	})
	defer srv.Close()
	cfg := testConfig(srv)
	cfg.Concurrency = 3
	cfg.Timeout = Duration(30 * time.Second) // a slow start must not turn into retries
	e := mustNew(t, cfg)
	runParallel(t, e, 12, func(i int) Request { return userReq("t", strings.Repeat("x", i+1)) })
	if p := peak.Load(); p != 3 {
		t.Errorf("peak in-flight = %d, want 3", p)
	}
}

func runParallel(t testing.TB, c Client, n int, mk func(i int) Request) []Response {
	t.Helper()
	out := make([]Response, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			r, err := c.Complete(context.Background(), mk(i))
			out[i] = r
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestRateLimits(t *testing.T) {
	tests := []struct {
		name    string
		rps     float64
		tps     float64
		n       int
		maxTok  int
		minTime time.Duration
	}{
		// burst 1: n requests need (n-1)/rps.
		{"requests", 20, 0, 11, 0, 500 * time.Millisecond},
		// each request estimates 496 + 1 + 4 = 501 tokens; 4 of them with a
		// burst of 1000 need (2004-1000)/1000 s.
		{"tokens", 0, 1000, 4, 496, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := llmtest.New(nil)
			defer srv.Close()
			cfg := testConfig(srv)
			cfg.RequestsPerS, cfg.TokensPerS = tt.rps, tt.tps
			e := mustNew(t, cfg)
			start := time.Now()
			runParallel(t, e, tt.n, func(i int) Request {
				r := userReq("t", string(rune('a'+i)))
				r.MaxTokens = tt.maxTok
				return r
			})
			if el := time.Since(start); el < tt.minTime-20*time.Millisecond || el > tt.minTime+700*time.Millisecond {
				t.Errorf("%d calls took %v, want about %v", tt.n, el, tt.minTime)
			}
		})
	}
}

func TestEnsembleRouting(t *testing.T) {
	a, b := llmtest.New(nil), llmtest.New(nil)
	defer a.Close()
	defer b.Close()
	cfg := Config{Endpoints: []Endpoint{
		{Name: "a", BaseURL: a.BaseURL, Model: "ma", Weight: 1},
		{Name: "b", BaseURL: b.BaseURL, Model: "mb", Weight: 3},
	}, Concurrency: 8}
	e := mustNew(t, cfg)
	const n = 400
	counts := map[string]int{}
	for i := range n {
		req := userReq("t", "same question")
		req.Seed = int64(i)
		_, ep, _ := e.Route(req)
		if _, ep2, _ := e.Route(req); ep2 != ep {
			t.Fatalf("seed %d routed to %s then %s", i, ep, ep2)
		}
		counts[ep]++
	}
	// Binomial(400, 0.75): sd ~ 8.7; allow 4 sd.
	if got := counts["b"]; got < 265 || got > 335 {
		t.Errorf("member b drawn %d of %d times, want about 300", got, n)
	}
	resps := runParallel(t, e, 20, func(i int) Request { r := userReq("t", "q"); r.Seed = int64(i); return r })
	for i, r := range resps {
		req := userReq("t", "q")
		req.Seed = int64(i)
		if _, ep, model := e.Route(req); r.Endpoint != ep || r.Model != model {
			t.Errorf("seed %d answered by %s/%s, routed to %s/%s", i, r.Endpoint, r.Model, ep, model)
		}
	}
	if got := len(a.Requests()) + len(b.Requests()); got != 20 {
		t.Errorf("servers saw %d requests, want 20", got)
	}
}

func TestCanceledContext(t *testing.T) {
	srv := llmtest.New(func(r llmtest.ChatRequest) llmtest.Reply { return llmtest.Reply{Fault: llmtest.Hang} })
	defer srv.Close()
	cfg := testConfig(srv)
	cfg.Timeout = Duration(10 * time.Second)
	e := mustNew(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.Complete(ctx, userReq("t", "x"))
	if k := FailureKind(err); k != KindCanceled {
		t.Errorf("kind = %s (err %v), want %s", k, err, KindCanceled)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("server saw %d requests, want 1 (no retry after the caller gave up)", n)
	}
}

func TestEmbed(t *testing.T) {
	srv := llmtest.New(nil)
	defer srv.Close()
	cfg := testConfig(srv)
	e := mustNew(t, cfg)
	if _, err := e.Embed(context.Background(), []string{"a"}); !errors.Is(err, ErrNoEmbeddings) {
		t.Fatalf("err = %v, want ErrNoEmbeddings", err)
	}
	cfg.Endpoints[0].EmbeddingModel = "emb"
	e = mustNew(t, cfg)
	got, err := e.Embed(context.Background(), []string{"a", "b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := llmtest.HashEmbed([]string{"a", "b", "a"})
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("vector %d[%d] = %v, want %v", i, j, got[i][j], want[i][j])
			}
		}
	}
}
