package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fspo/internal/testenv"
)

// TestBenchServeShort is the short version of the load test
// (`fspo bench-serve --clients 50 --duration 60s` is the full one): 4
// clients for 2 s against stories260K on loopback, with zero errors.
func TestBenchServeShort(t *testing.T) {
	sharedModel(t)
	var stdout, stderr bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: os.Getenv}
	err := Run(t.Context(), env, []string{"bench-serve", "--clients", "4", "--duration", "2s", "--users", "2", "--prefs", "3",
		"--max-tokens", "16", "--json"})
	if err != nil {
		t.Fatalf("bench-serve: %v\n%s", err, stderr.String())
	}
	var res benchServeResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("bench-serve --json: %v\n%s", err, stdout.String())
	}
	t.Logf("%+v", res)
	if res.Errors != 0 || res.Requests < 4 || res.Streamed == 0 || res.Streamed == res.Requests {
		t.Errorf("requests %d (%d streamed), errors %d %v; want several, some streamed, no errors", res.Requests, res.Streamed, res.Errors, res.ErrorKinds)
	}
	if res.ElapsedS < 2 || res.ReqPerS <= 0 || !(res.P50Ms > 0 && res.P50Ms <= res.P90Ms && res.P90Ms <= res.P99Ms && res.P99Ms <= res.MaxMs) {
		t.Errorf("timing: %.2fs, %.1f req/s, p50 %v p90 %v p99 %v max %v", res.ElapsedS, res.ReqPerS, res.P50Ms, res.P90Ms, res.P99Ms, res.MaxMs)
	}
	// Each answer stops at end of sequence or after 16 tokens.
	if res.CompletionTokens < res.Requests || res.CompletionTokens > 16*res.Requests {
		t.Errorf("completion tokens %d for %d requests of at most 16", res.CompletionTokens, res.Requests)
	}
	if res.Clients != 4 || res.Users != 2 || res.Prefs != 3 || res.Store != "sqlite" {
		t.Errorf("settings echoed: %+v", res)
	}
}

// TestBenchServeBackendInstances: 3 servers over one PostgreSQL store
// behind a round-robin spread, generating on the fast fake backend, 2 s of
// 6 clients without errors (the full figure: --instances 3 --clients 30
// --duration 60s --backend fake --db postgres://…).
func TestBenchServeBackendInstances(t *testing.T) {
	db := testenv.Postgres(t)
	var stdout, stderr bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: os.Getenv}
	err := Run(t.Context(), env, []string{"bench-serve", "--backend", "fake", "--instances", "3", "--db", db, "--clients", "6",
		"--duration", "2s", "--users", "3", "--prefs", "2", "--max-tokens", "8", "--json"})
	if err != nil {
		t.Fatalf("bench-serve: %v\n%s", err, stderr.String())
	}
	var res benchServeResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("bench-serve --json: %v\n%s", err, stdout.String())
	}
	t.Logf("%+v", res)
	if res.Errors != 0 || res.Requests < 6 || res.Instances != 3 || res.Store != "postgres" || res.CompletionTokens != 8*res.Requests {
		t.Errorf("requests %d, errors %d %v, instances %d, store %s, completion tokens %d: want no errors, 8 tokens each",
			res.Requests, res.Errors, res.ErrorKinds, res.Instances, res.Store, res.CompletionTokens)
	}
	if n := strings.Count(stderr.String(), "http://127.0.0.1:"); n < 4 {
		t.Errorf("stderr names %d addresses, want the 3 servers and the backend: %s", n, stderr.String())
	}
}

func TestBenchServeUsage(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--clients", "0"}, "--clients 0 must be >= 1"},
		{[]string{"--duration", "0s"}, "--duration 0s must be > 0"},
		{[]string{"--users", "0"}, "--users 0 must be >= 1"},
		{[]string{"--max-tokens", "0"}, "--max-tokens >= 1"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--instances", "2"}, "more than 1 share a --db postgres"},
	}
	for _, tc := range cases {
		_, _, err := runCLI(t, append([]string{"bench-serve"}, tc.args...)...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench-serve %v: error %v; want a usage error with %q", tc.args, err, tc.want)
		}
	}
}

// TestHammerCountsErrors runs the load generator against a scripted server:
// the requests of one of two tokens fail (500, or a stream without [DONE]),
// and every one of them is counted as an error; the others are counted as
// successes with the usage the server reported.
func TestHammerCountsErrors(t *testing.T) {
	var good, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Stream bool }
		json.NewDecoder(r.Body).Decode(&body)
		ok := r.Header.Get("Authorization") == "Bearer good"
		if ok {
			good.Add(1)
		} else {
			bad.Add(1)
		}
		switch {
		case !ok && !body.Stream:
			http.Error(w, `{"error":{"message":"boom"}}`, http.StatusInternalServerError)
		case body.Stream:
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n")
			fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"completion_tokens\":3}}\n\n")
			if ok {
				fmt.Fprint(w, "data: [DONE]\n\n")
			}
		default:
			fmt.Fprint(w, `{"choices":[{"message":{"content":"hi"}}],"usage":{"completion_tokens":5}}`)
		}
		time.Sleep(time.Millisecond)
	}))
	defer srv.Close()
	r := hammer(context.Background(), srv.Client(), []string{srv.URL}, []string{"good", "bad"},
		loadOptions{Clients: 4, Duration: 200 * time.Millisecond, MaxTokens: 8, StreamEvery: 2})
	var res benchServeResult
	r.fill(&res)
	if int64(res.Errors) != bad.Load() || int64(res.Requests-res.Errors) != good.Load() {
		t.Errorf("errors %d, successes %d; the server saw %d bad and %d good", res.Errors, res.Requests-res.Errors, bad.Load(), good.Load())
	}
	if res.ErrorKinds["status 500"] == 0 || res.ErrorKinds["stream cut"] == 0 || len(res.ErrorKinds) != 2 {
		t.Errorf("error kinds %v; want status 500 and stream cut", res.ErrorKinds)
	}
	// Good clients alternate plain (5 tokens) and streamed (3 tokens) requests.
	plain := res.Requests - res.Errors - res.Streamed
	if want := 5*plain + 3*res.Streamed; res.CompletionTokens != want {
		t.Errorf("completion tokens %d, want %d (%d plain, %d streamed)", res.CompletionTokens, want, plain, res.Streamed)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	cases := []struct {
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{ms(hundred...), 0.99, 99 * time.Millisecond},
		{ms(hundred...), 0.50, 50 * time.Millisecond},
		{ms(hundred...), 1, 100 * time.Millisecond},
	}
	for _, tc := range cases {
		if got := percentile(tc.sorted, tc.q); got != tc.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(tc.sorted), tc.q, got, tc.want)
		}
	}
}
