package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"fspo/episode"
	"fspo/fewshot"
	"fspo/model"
	"fspo/serve"
	"fspo/tokenizer"
)

func init() {
	register(&command{name: "bench-serve", summary: "load test: concurrent clients against an in-process server (req/s, p50/p99, errors)", run: runBenchServe})
}

// benchServeResult is what bench-serve reports (--json prints it).
// Latencies are of successful requests, whole responses (streams to [DONE]).
type benchServeResult struct {
	Model      string         `json:"model"`
	Store      string         `json:"store"`
	Clients    int            `json:"clients"`
	Users      int            `json:"users"`
	Prefs      int            `json:"prefs_per_user"`
	MaxTokens  int            `json:"max_tokens"`
	Batch      int            `json:"batch"`
	Requests   int            `json:"requests"`
	Streamed   int            `json:"streamed"`
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	ElapsedS   float64        `json:"elapsed_s"`
	ReqPerS    float64        `json:"requests_per_s"`
	// CompletionTokens sums the usage the server reported for successful requests.
	CompletionTokens int     `json:"completion_tokens"`
	TokensPerS       float64 `json:"completion_tokens_per_s"`
	P50Ms            float64 `json:"p50_ms"`
	P90Ms            float64 `json:"p90_ms"`
	P99Ms            float64 `json:"p99_ms"`
	MaxMs            float64 `json:"max_ms"`
	// LoadBefore and LoadAfter are the machine's 1-minute load averages
	// (/proc/loadavg; -1 where unavailable): the machine may be shared.
	LoadBefore float64 `json:"loadavg_before"`
	LoadAfter  float64 `json:"loadavg_after"`
}

func runBenchServe(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench-serve", "[--model M] [--clients 50] [--duration 60s] [--json] [flags]")
	modelFlag := fs.String("model", "", "checkpoint file, model folder or name (default stories260K)")
	clients := fs.Int("clients", 50, "concurrent clients, each sending one request after another")
	duration := fs.Duration("duration", 60*time.Second, "how long the clients send requests")
	users := fs.Int("users", 10, "users created (clients share them round-robin)")
	prefs := fs.Int("prefs", 8, "preferences stored per user: the shots of each personalized request")
	maxTokens := fs.Int("max-tokens", 64, "max_tokens of each completion")
	streamEvery := fs.Int("stream-every", 2, "every k-th request of a client is streamed (SSE); 0: none")
	batch := fs.Int("batch", 16, "generations batched per forward pass, as fspo serve --batch (0: each alone)")
	db := fs.String("db", "", "store (sqlite:PATH or postgres://…); default: SQLite in a temporary directory")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *clients < 1:
		return fmt.Errorf("%w: fspo bench-serve: --clients %d must be >= 1", errUsage, *clients)
	case *duration <= 0:
		return fmt.Errorf("%w: fspo bench-serve: --duration %v must be > 0", errUsage, *duration)
	case *users < 1:
		return fmt.Errorf("%w: fspo bench-serve: --users %d must be >= 1", errUsage, *users)
	case *prefs < 0 || *maxTokens < 1 || *streamEvery < 0 || *batch < 0:
		return fmt.Errorf("%w: fspo bench-serve: --prefs, --stream-every and --batch must be >= 0 and --max-tokens >= 1", errUsage)
	}
	m, tok, paths, err := loadModelPaths(env, *modelFlag)
	if err != nil {
		return err
	}
	eng, stopBatcher := benchEngine(m, tok, *batch)
	defer stopBatcher()
	dbURL, cleanup, err := benchStoreURL(*db)
	if err != nil {
		return err
	}
	defer cleanup()
	st, err := openStore(ctx, dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	admin := randomHex(16)
	s, err := serve.New(serve.Config{Store: st, Engine: eng, AdminToken: admin, RateLimit: rate.Inf, MaxTokens: *maxTokens,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("fspo bench-serve: %w", err)
	}
	base, stopServer, err := serveLoopback(ctx, s)
	if err != nil {
		return err
	}

	tr := &http.Transport{MaxIdleConnsPerHost: *clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	tokens, err := benchUsers(ctx, hc, base, admin, *users, *prefs)
	if err != nil {
		stopServer()
		return err
	}
	res := benchServeResult{Model: fmt.Sprintf("%s (%d parameters)", paths.Checkpoint, m.Config.NumParams()), Store: strings.SplitN(dbURL, ":", 2)[0], Clients: *clients, Users: *users,
		Prefs: *prefs, MaxTokens: *maxTokens, Batch: *batch, LoadBefore: loadAverage()}
	fmt.Fprintf(env.Stderr, "bench-serve: %d clients for %v against %s (%s)\n", *clients, *duration, base, res.Model)
	lr := hammer(ctx, hc, base, tokens, loadOptions{Clients: *clients, Duration: *duration, MaxTokens: *maxTokens, StreamEvery: *streamEvery})
	res.LoadAfter = loadAverage()
	if err := stopServer(); err != nil {
		return fmt.Errorf("fspo bench-serve: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	lr.fill(&res)
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.print(env.Stdout)
	return nil
}

// print writes the result as three lines of text.
func (res *benchServeResult) print(w io.Writer) {
	fmt.Fprintf(w, "%d requests (%d streamed) in %.1fs: %.1f requests/s, %.0f completion tokens/s\n",
		res.Requests, res.Streamed, res.ElapsedS, res.ReqPerS, res.TokensPerS)
	kinds := ""
	if res.Errors > 0 {
		kinds = fmt.Sprintf(" %v", res.ErrorKinds)
	}
	fmt.Fprintf(w, "latency p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms; %d errors%s\n",
		res.P50Ms, res.P90Ms, res.P99Ms, res.MaxMs, res.Errors, kinds)
	fmt.Fprintf(w, "%d clients, %d users with %d preferences each, max_tokens %d, batch %d, store %s; load average %.2f -> %.2f\n",
		res.Clients, res.Users, res.Prefs, res.MaxTokens, res.Batch, res.Store, res.LoadBefore, res.LoadAfter)
}

// benchEngine is the model engine fspo serve would use, with a batcher of
// batch generations (none for 0) running until stop.
func benchEngine(m *model.Model, tok *tokenizer.Tokenizer, batch int) (eng *serve.ModelEngine, stop func()) {
	eng = &serve.ModelEngine{Label: "fspo", Model: m, Codec: fewshot.Codec{Tok: tokenizer.Llama2C(tok), Variant: episode.Plain, Layout: episode.Compact}}
	bctx, stop := context.WithCancel(context.Background())
	if batch > 0 {
		eng.Batcher = serve.NewBatcher(m, batch)
		go eng.Batcher.Run(bctx)
	}
	return eng, stop
}

// serveLoopback serves s on a free loopback port until stop, which returns
// what Serve returned.
func serveLoopback(ctx context.Context, s *serve.Server) (base string, stop func() error, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("fspo bench-serve: listen on loopback: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- s.Serve(sctx, ln, 10*time.Second) }()
	return "http://" + ln.Addr().String(), func() error { cancel(); return <-served }, nil
}

// benchStoreURL is db, or by default a SQLite store in a temporary folder
// that cleanup removes.
func benchStoreURL(db string) (url string, cleanup func(), err error) {
	if db != "" {
		return db, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "fspo-bench-serve-")
	if err != nil {
		return "", nil, fmt.Errorf("fspo bench-serve: %w", err)
	}
	return "sqlite:" + filepath.Join(dir, "bench.db"), func() { os.RemoveAll(dir) }, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// loadAverage reads the 1-minute load average from /proc/loadavg, or -1.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var v float64
	if _, err := fmt.Sscan(string(data), &v); err != nil {
		return -1
	}
	return v
}

// benchQuestions are the story openings clients ask about, in turn.
var benchQuestions = []string{
	"Once upon a time, there was a cat",
	"One day, Tom went to the park.",
	"Lily found a big red ball.",
	"It was a sunny day at the beach.",
	"The little dog was sad.",
	"Sam and Mia built a tall tower.",
}

// benchUsers creates n users through the API, each with prefs preferences,
// and returns their tokens.
func benchUsers(ctx context.Context, hc *http.Client, base, admin string, n, prefs int) ([]string, error) {
	tokens := make([]string, n)
	for i := range n {
		var u struct{ Token string }
		if err := postJSON(ctx, hc, base+"/api/users", admin, map[string]string{"name": fmt.Sprintf("bench%d", i)}, http.StatusCreated, &u); err != nil {
			return nil, fmt.Errorf("fspo bench-serve: create user %d: %w", i, err)
		}
		tokens[i] = u.Token
		for k := range prefs {
			q := benchQuestions[(i+k)%len(benchQuestions)]
			p := map[string]string{"prompt": q, "chosen": fmt.Sprintf("The story of user %d was happy and short, number %d.", i, k),
				"rejected": fmt.Sprintf("The story of user %d was sad and long, number %d.", i, k)}
			if err := postJSON(ctx, hc, base+"/api/preferences", u.Token, p, http.StatusCreated, nil); err != nil {
				return nil, fmt.Errorf("fspo bench-serve: preference %d of user %d: %w", k, i, err)
			}
		}
	}
	return tokens, nil
}

// postJSON posts body with a bearer token and decodes the answer into out
// (when not nil); a status other than want is an error quoting the body.
func postJSON(ctx context.Context, hc *http.Client, url, token string, body any, want int, out any) error {
	js, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(js))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: status %d: %s", url, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// loadOptions shape the load: Clients loop for Duration, client c using
// token c mod len(tokens); every StreamEvery-th request is streamed.
type loadOptions struct {
	Clients     int
	Duration    time.Duration
	MaxTokens   int
	StreamEvery int
}

// loadResult is the raw outcome of hammer.
type loadResult struct {
	latencies  []time.Duration // successful requests
	errors     map[string]int  // kind → count
	streamed   int
	completion int
	elapsed    time.Duration
}

// hammer runs the clients: each sends personalized chat completions one
// after another until the duration has passed, counting failed requests by
// kind (status code, transport error, stream error, bad body).
func hammer(ctx context.Context, hc *http.Client, base string, tokens []string, o loadOptions) loadResult {
	var mu sync.Mutex
	res := loadResult{errors: map[string]int{}}
	start := time.Now()
	deadline := start.Add(o.Duration)
	var wg sync.WaitGroup
	for c := range o.Clients {
		wg.Go(func() {
			tok := tokens[c%len(tokens)]
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				stream := o.StreamEvery > 0 && i%o.StreamEvery == o.StreamEvery-1
				body := map[string]any{"max_tokens": o.MaxTokens, "stream": stream, "seed": c*1_000_000 + i,
					"messages": []map[string]string{{"role": "user", "content": benchQuestions[(c+i)%len(benchQuestions)]}}}
				if stream {
					body["stream_options"] = map[string]bool{"include_usage": true}
				}
				t0 := time.Now()
				tokensOut, kind := completeOnce(ctx, hc, base, tok, body, stream)
				lat := time.Since(t0)
				mu.Lock()
				if kind != "" {
					res.errors[kind]++
				} else {
					res.latencies = append(res.latencies, lat)
					res.completion += tokensOut
					if stream {
						res.streamed++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// completeOnce sends one chat completion and returns the completion tokens
// the server reported, or the kind of failure.
func completeOnce(ctx context.Context, hc *http.Client, base, token string, body map[string]any, stream bool) (int, string) {
	js, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/chat/completions", bytes.NewReader(js))
	if err != nil {
		return 0, "request"
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, "timeout"
		}
		return 0, "transport"
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return 0, fmt.Sprintf("status %d", resp.StatusCode)
	}
	type usageBody struct {
		Usage *struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
		Error *struct{ Message string } `json:"error"`
	}
	if !stream {
		var u usageBody
		if err := json.NewDecoder(resp.Body).Decode(&u); err != nil || u.Usage == nil {
			return 0, "bad body"
		}
		return u.Usage.CompletionTokens, ""
	}
	// Server-sent events: "data: {...}" lines ending with "data: [DONE]".
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n, done := 0, false
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			done = true
			break
		}
		var u usageBody
		if err := json.Unmarshal([]byte(line), &u); err != nil {
			return 0, "bad body"
		}
		if u.Error != nil {
			return 0, "stream error"
		}
		if u.Usage != nil {
			n = u.Usage.CompletionTokens
		}
	}
	if sc.Err() != nil || !done {
		return 0, "stream cut"
	}
	return n, ""
}

// fill writes the statistics of r into res.
func (r loadResult) fill(res *benchServeResult) {
	lat := slices.Clone(r.latencies)
	slices.Sort(lat)
	res.Requests, res.Streamed, res.CompletionTokens = len(lat), r.streamed, r.completion
	for _, n := range r.errors {
		res.Errors += n
	}
	res.Requests += res.Errors
	if len(r.errors) > 0 {
		res.ErrorKinds = r.errors
	}
	res.ElapsedS = r.elapsed.Seconds()
	if res.ElapsedS > 0 {
		res.ReqPerS = float64(res.Requests) / res.ElapsedS
		res.TokensPerS = float64(res.CompletionTokens) / res.ElapsedS
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res.P50Ms, res.P90Ms, res.P99Ms = ms(percentile(lat, 0.50)), ms(percentile(lat, 0.90)), ms(percentile(lat, 0.99))
	if len(lat) > 0 {
		res.MaxMs = ms(lat[len(lat)-1])
	}
}

// percentile is the nearest-rank percentile of sorted values (the smallest
// value with at least q of the values at or below it); 0 for none.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
