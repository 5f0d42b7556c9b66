package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"fspo/episode"
	"fspo/serve"
)

var (
	loadDuration = flag.Duration("serve.load", 0, "run TestLoad for this long (default: 1s, or 300ms with -short)")
	loadModel    = flag.Bool("serve.model", false, "TestLoad with stories260K (batched, 64-token answers) instead of the fake engine")
)

// loadStats is what a load run reports.
type loadStats struct {
	Requests, Errors int
	Elapsed          time.Duration
	P50, P99         time.Duration
}

func (s loadStats) String() string {
	return fmt.Sprintf("%d requests in %v: %.0f req/s, p50 %v, p99 %v, %d errors", s.Requests, s.Elapsed.Round(time.Millisecond),
		float64(s.Requests)/s.Elapsed.Seconds(), s.P50, s.P99, s.Errors)
}

// runLoad has clients concurrent clients send requests for d: four chat
// completions (every other one streamed) for each preference write.
func runLoad(base string, tokens []string, clients int, d time.Duration) loadStats {
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			tok := tokens[c%len(tokens)]
			for i := 0; time.Now().Before(deadline); i++ {
				var path string
				var body any
				if i%5 == 4 {
					path, body = "/api/preferences", map[string]string{"prompt": fmt.Sprintf("q%d-%d", c, i), "chosen": "a", "rejected": "b"}
				} else {
					path, body = "/v1/chat/completions", map[string]any{"stream": i%2 == 1,
						"messages": []map[string]string{{"role": "user", "content": "tell me a story"}}}
				}
				js, _ := json.Marshal(body)
				req, _ := http.NewRequest("POST", base+path, bytes.NewReader(js))
				req.Header.Set("Authorization", "Bearer "+tok)
				t0 := time.Now()
				resp, err := hc.Do(req)
				ok := err == nil && resp.StatusCode/100 == 2
				if err == nil {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					ok = ok && rerr == nil && (!strings.HasPrefix(string(b), "data:") || strings.HasSuffix(string(b), "data: [DONE]\n\n"))
				}
				el := time.Since(t0)
				mu.Lock()
				lat = append(lat, el)
				if !ok {
					errs++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	st := loadStats{Requests: len(lat), Errors: errs, Elapsed: time.Since(start)}
	if len(lat) > 0 {
		st.P50, st.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return st
}

// TestLoad: 50 concurrent clients on loopback against the fake engine and
// SQLite. Longer runs: go test ./serve -run TestLoad -serve.load=30s -v.
func TestLoad(t *testing.T) {
	d := *loadDuration
	if d == 0 {
		d = time.Second
		if testing.Short() {
			d = 300 * time.Millisecond
		}
	}
	configure := func(c *serve.Config) { c.RateLimit = rate.Inf }
	engine := "fake engine"
	if *loadModel {
		me, _ := storiesEngine(t, episode.Plain)
		me.RawBase = true
		me.Batcher = startBatcher(t, me.Model, 32)
		configure = func(c *serve.Config) { c.RateLimit, c.Engine, c.MaxTokens = rate.Inf, me, 64 }
		engine = "stories260K, batched"
	}
	e := newEnv(t, configure)
	var tokens []string
	for i := range 10 {
		_, tok := e.user(fmt.Sprint("load", i))
		e.pref(tok, "q", "a", "b")
		tokens = append(tokens, tok)
	}
	st := runLoad(e.srv.URL, tokens, 50, d)
	t.Logf("load, 50 clients, %s, SQLite: %v", engine, st)
	if st.Errors > 0 || st.Requests < 50 {
		t.Errorf("load run: %v; want no errors", st)
	}
}

// BenchmarkChatCompletion measures one personalized completion round trip
// (fake engine, SQLite shots lookup) with parallel clients.
func BenchmarkChatCompletion(b *testing.B) {
	e := newEnv(b, func(c *serve.Config) { c.RateLimit = rate.Inf })
	_, tok := e.user("bench")
	for i := range 8 {
		e.pref(tok, fmt.Sprint("q", i), "a", "b")
	}
	js, _ := json.Marshal(map[string]any{"messages": []map[string]string{{"role": "user", "content": "tell me a story"}}})
	b.SetParallelism(25) // 50 clients on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/chat/completions", bytes.NewReader(js))
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
			}
		}
	})
}

// TestGracefulShutdown cancels the server while a stream is running: the
// stream must finish ([DONE]) and Serve return without error.
func TestGracefulShutdown(t *testing.T) {
	e := newEnv(t, nil)
	_, tok := e.user("alice")
	started := make(chan struct{})
	e.eng.AnswerFunc = func(ctx context.Context, req serve.AnswerRequest) (serve.Answer, error) {
		for i := range 10 {
			if err := req.Stream(fmt.Sprint("piece", i, " ")); err != nil {
				return serve.Answer{}, err
			}
			if i == 0 {
				close(started)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return serve.Answer{Text: "done", FinishReason: "stop"}, nil
	}
	s, err := serve.New(serve.Config{Store: e.store, Engine: e.eng, AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, 5*time.Second) }()

	js, _ := json.Marshal(map[string]any{"stream": true, "messages": []map[string]string{{"role": "user", "content": "x"}}})
	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/v1/chat/completions", bytes.NewReader(js))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.HasSuffix(string(body), "data: [DONE]\n\n") || strings.Count(string(body), "piece") != 10 {
		t.Errorf("stream cut by shutdown: %v\n%s", err, body)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v, want nil after a graceful shutdown", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Errorf("the server still accepts connections after shutdown")
	}
}
