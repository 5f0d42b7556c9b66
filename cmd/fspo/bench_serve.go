package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	Instances  int            `json:"instances"`
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
	fs := newFlags(env, "bench-serve", "[--model M | --backend fake|URL] [--instances N] [--clients 50] [--duration 60s] [--json] [flags]")
	var o benchServeOptions
	fs.StringVar(&o.model, "model", "", "checkpoint file, model folder or name (default stories260K)")
	clients := fs.Int("clients", 50, "concurrent clients, each sending one request after another")
	duration := fs.Duration("duration", 60*time.Second, "how long the clients send requests")
	users := fs.Int("users", 10, "users created (clients share them round-robin)")
	prefs := fs.Int("prefs", 8, "preferences stored per user: the shots of each personalized request")
	maxTokens := fs.Int("max-tokens", 64, "max_tokens of each completion")
	streamEvery := fs.Int("stream-every", 2, "every k-th request of a client is streamed (SSE); 0: none")
	fs.IntVar(&o.batch, "batch", 16, "generations batched per forward pass, as fspo serve --batch (0: each alone)")
	fs.StringVar(&o.db, "db", "", "store (sqlite:PATH or postgres://…); default: SQLite in a temporary directory")
	fs.IntVar(&o.instances, "instances", 1, "servers over the one store, clients spread over them round-robin (as behind a load balancer); more than 1 needs --db postgres://…")
	fs.StringVar(&o.backend, "backend", "", `generate on an OpenAI-compatible server (as fspo serve --backend): its URL, or "fake" for a fast one started here`)
	fs.StringVar(&o.backendModel, "backend-model", "fake", "the backend's model name")
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
	case *prefs < 0 || *maxTokens < 1 || *streamEvery < 0 || o.batch < 0:
		return fmt.Errorf("%w: fspo bench-serve: --prefs, --stream-every and --batch must be >= 0 and --max-tokens >= 1", errUsage)
	case o.instances < 1 || o.instances > 1 && !strings.HasPrefix(o.db, "postgres"):
		return fmt.Errorf("%w: fspo bench-serve: --instances %d: at least 1, and more than 1 share a --db postgres://…", errUsage, o.instances)
	}
	o.maxTokens = *maxTokens
	b, err := startBenchServers(ctx, env, o)
	if err != nil {
		return err
	}
	defer b.stop()

	tr := &http.Transport{MaxIdleConnsPerHost: *clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	tokens, err := benchUsers(ctx, hc, b.bases[0], b.admin, *users, *prefs)
	if err != nil {
		return err
	}
	res := benchServeResult{Model: b.what, Store: strings.SplitN(b.dbURL, ":", 2)[0], Instances: o.instances, Clients: *clients, Users: *users,
		Prefs: *prefs, MaxTokens: *maxTokens, Batch: o.batch, LoadBefore: loadAverage()}
	fmt.Fprintf(env.Stderr, "bench-serve: %d clients for %v against %d server(s) %v (%s)\n", *clients, *duration, o.instances, b.bases, res.Model)
	lr := hammer(ctx, hc, b.bases, tokens, loadOptions{Clients: *clients, Duration: *duration, MaxTokens: *maxTokens, StreamEvery: *streamEvery})
	res.LoadAfter = loadAverage()
	if err := b.stop(); err != nil {
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

// benchServeOptions are the servers bench-serve starts.
type benchServeOptions struct {
	model, db, backend, backendModel string
	batch, instances, maxTokens      int
}

// benchServers are the running servers of a load test.
type benchServers struct {
	bases       []string // one base URL per instance
	admin       string
	dbURL, what string
	stops       []func() error
}

// stop stops everything started, once; it returns the first error.
func (b *benchServers) stop() error {
	var first error
	for i := len(b.stops) - 1; i >= 0; i-- {
		if err := b.stops[i](); err != nil && first == nil {
			first = err
		}
	}
	b.stops = nil
	return first
}

// startBenchServers opens the store and starts o.instances servers on
// loopback, each with its own engine: the model's (with its batcher) or
// the backend's (a fast fake one started here for "fake").
func startBenchServers(ctx context.Context, env *Env, o benchServeOptions) (*benchServers, error) {
	b := &benchServers{admin: randomHex(16)}
	fail := func(err error) (*benchServers, error) { b.stop(); return nil, err }
	var newEngine func() (serve.Engine, error)
	if o.backend != "" {
		url := o.backend
		if url == "fake" {
			fakeURL, stopFake, err := fastBackend()
			if err != nil {
				return fail(err)
			}
			b.stops = append(b.stops, stopFake)
			url = fakeURL
		}
		b.what = fmt.Sprintf("backend %s (model %s)", url, o.backendModel)
		newEngine = func() (serve.Engine, error) {
			return serve.NewBackend(serve.BackendConfig{Label: "fspo", BaseURL: url, Model: o.backendModel})
		}
	} else {
		m, tok, paths, err := loadModelPaths(env, o.model)
		if err != nil {
			return fail(err)
		}
		b.what = fmt.Sprintf("%s (%d parameters)", paths.Checkpoint, m.Config.NumParams())
		newEngine = func() (serve.Engine, error) {
			eng, stopBatcher := benchEngine(m, tok, o.batch)
			b.stops = append(b.stops, func() error { stopBatcher(); return nil })
			return eng, nil
		}
	}
	dbURL, cleanup, err := benchStoreURL(o.db)
	if err != nil {
		return fail(err)
	}
	b.dbURL = dbURL
	b.stops = append(b.stops, func() error { cleanup(); return nil })
	for range o.instances {
		st, err := openStore(ctx, dbURL)
		if err != nil {
			return fail(err)
		}
		b.stops = append(b.stops, st.Close)
		eng, err := newEngine()
		if err != nil {
			return fail(fmt.Errorf("fspo bench-serve: %w", err))
		}
		s, err := serve.New(serve.Config{Store: st, Engine: eng, AdminToken: b.admin, RateLimit: rate.Inf, MaxTokens: o.maxTokens,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return fail(fmt.Errorf("fspo bench-serve: %w", err))
		}
		base, stopServer, err := serveLoopback(ctx, s)
		if err != nil {
			return fail(err)
		}
		b.bases = append(b.bases, base)
		b.stops = append(b.stops, stopServer)
	}
	return b, nil
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
	fmt.Fprintf(w, "%d clients, %d server(s), %d users with %d preferences each, max_tokens %d, batch %d, store %s; load average %.2f -> %.2f\n",
		res.Clients, res.Instances, res.Users, res.Prefs, res.MaxTokens, res.Batch, res.Store, res.LoadBefore, res.LoadAfter)
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
