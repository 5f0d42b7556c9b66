package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

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
// after another until the duration has passed — client c to bases[c mod
// len(bases)] — counting failed requests by kind (status code, transport
// error, stream error, bad body).
func hammer(ctx context.Context, hc *http.Client, bases []string, tokens []string, o loadOptions) loadResult {
	var mu sync.Mutex
	res := loadResult{errors: map[string]int{}}
	start := time.Now()
	deadline := start.Add(o.Duration)
	var wg sync.WaitGroup
	for c := range o.Clients {
		wg.Go(func() {
			tok, base := tokens[c%len(tokens)], bases[c%len(bases)]
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
