package serve_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fspo/serve"
	"fspo/serve/servetest"
	"fspo/store/sqlite"
)

// served is a server started with Serve (the production path: its
// http.Server settings and shutdown) on a loopback port.
type served struct {
	addr string
	stop context.CancelFunc
	done chan error
	env  *env
}

func startServed(t *testing.T, configure func(*serve.Config)) *served {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "serve.db"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := serve.Config{Store: st, Engine: servetest.New("fake"), AdminToken: adminToken}
	if configure != nil {
		configure(&cfg)
	}
	s, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sv := &served{addr: ln.Addr().String(), stop: cancel, done: make(chan error, 1)}
	go func() { sv.done <- s.Serve(ctx, ln, 20*time.Second) }()
	t.Cleanup(func() {
		cancel()
		<-sv.done
		st.Close()
	})
	sv.env = &env{t: t, base: "http://" + sv.addr, hc: &http.Client{Timeout: 10 * time.Second}, store: st}
	return sv
}

// slowPost sends a POST whose body (of length n) trickles one byte every
// gap, and returns the status of the response the server sends meanwhile
// (0 when the connection ended without one) and how long it took.
func slowPost(addr, path, contentType, token string, n int, gap time.Duration) (int, time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second)) // the test's own bound
	start := time.Now()
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n", path, addr, contentType, n)
	if token != "" {
		head += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(c, head+"\r\n"); err != nil {
		return 0, 0, err
	}
	go func() {
		for range n {
			time.Sleep(gap)
			if _, err := c.Write([]byte{'x'}); err != nil {
				return
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, time.Since(start), nil
	}
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), nil
}

// TestSlowBodiesAreCut: 20 connections sending a body one byte every 200 ms
// (sign-in without a login, and preferences with a user's token) are all
// answered 408 once the body deadline (1 s here, 30 s by default) passes,
// while a normal request is served meanwhile.
func TestSlowBodiesAreCut(t *testing.T) {
	sv := startServed(t, func(c *serve.Config) { c.BodyTimeout = time.Second })
	_, tok := sv.env.user("alice")
	var wg sync.WaitGroup
	type result struct {
		code    int
		elapsed time.Duration
		err     error
	}
	results := make([]result, 20)
	for i := range results {
		wg.Go(func() {
			path, ct, token := "/signin", "application/x-www-form-urlencoded", ""
			if i%2 == 1 {
				path, ct, token = "/api/preferences", "application/json", tok
			}
			code, d, err := slowPost(sv.addr, path, ct, token, 200, 200*time.Millisecond)
			results[i] = result{code, d, err}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if id := sv.env.pref(tok, "q", "a", "b"); id == 0 {
		t.Error("a normal request was not served while the slow ones were open")
	}
	wg.Wait()
	for i, r := range results {
		if r.err != nil || r.code != http.StatusRequestTimeout || r.elapsed < 900*time.Millisecond || r.elapsed > 5*time.Second {
			t.Errorf("slow connection %d: status %d after %v (%v), want 408 after about 1 s", i, r.code, r.elapsed, r.err)
		}
	}
}

// TestShutdownCutsSlowBodies: slow senders do not hold a graceful shutdown
// for its grace period (20 s here): Serve returns within seconds and each
// gets 503.
func TestShutdownCutsSlowBodies(t *testing.T) {
	sv := startServed(t, nil) // the default 30 s body deadline
	_, tok := sv.env.user("alice")
	var wg sync.WaitGroup
	codes := make([]int, 5)
	for i := range codes {
		wg.Go(func() {
			codes[i], _, _ = slowPost(sv.addr, "/api/preferences", "application/json", tok, 200, 200*time.Millisecond)
		})
	}
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	sv.stop()
	select {
	case err := <-sv.done:
		sv.done <- err // for the cleanup
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("shutdown took %v with slow senders open", took)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown still waiting for slow senders after 15 s")
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusServiceUnavailable {
			t.Errorf("slow sender %d got %d at shutdown, want 503", i, c)
		}
	}
}

// TestAttemptLimit: sign-ins and failed token checks from one address share
// a bucket (burst 10 by default); past it they get 429 with Retry-After,
// while requests with a valid token are not counted nor refused.
func TestAttemptLimit(t *testing.T) {
	e := newEnv(t, nil)
	_, tok := e.user("alice")
	for i := range 6 {
		if code, _, _ := e.do("GET", "/api/preferences", "fspo_wrong", nil); code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i, code)
		}
	}
	if code, _, _ := e.do("GET", "/api/preferences", "", nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401 (not counted)", code)
	}
	for i := range 4 {
		code, _, _ := e.do("GET", "/api/preferences", tok, nil)
		if code != 200 {
			t.Fatalf("valid token %d: %d", i, code)
		}
	}
	b := newBrowser(t, e)
	b.get("/")
	for i := range 4 {
		if code, body := b.post("/signin", url.Values{"token": {"wrong"}}); code != http.StatusUnauthorized {
			t.Fatalf("sign-in %d: %d %s, want 401", i, code, body)
		}
	}
	code, body := b.post("/signin", url.Values{"token": {"wrong"}})
	if code != http.StatusTooManyRequests || !strings.Contains(body, "too many") {
		t.Errorf("11th attempt (sign-in): %d %s, want 429", code, body)
	}
	code, raw, hdr := e.do("POST", "/api/users", "not-the-admin-token", map[string]string{"name": "x"})
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Errorf("12th attempt (admin route): %d %s Retry-After %q, want 429 with Retry-After", code, raw, hdr.Get("Retry-After"))
	}
	if code, _, _ := e.do("GET", "/api/preferences", tok, nil); code != 200 {
		t.Errorf("a valid token after the limit: %d, want 200", code)
	}
}

// TestLongGenerationOutlivesBodyDeadline: the deadline covers the body's
// arrival only; a generation running for 4× the deadline after it is
// answered in full.
func TestLongGenerationOutlivesBodyDeadline(t *testing.T) {
	sv := startServed(t, func(c *serve.Config) {
		c.BodyTimeout = 300 * time.Millisecond
		c.Engine = &servetest.Engine{NameValue: "slow", AnswerFunc: func(ctx context.Context, req serve.AnswerRequest) (serve.Answer, error) {
			select {
			case <-time.After(1200 * time.Millisecond):
				return serve.Answer{Text: "finally", FinishReason: "stop"}, nil
			case <-ctx.Done():
				return serve.Answer{}, ctx.Err()
			}
		}}
	})
	_, tok := sv.env.user("alice")
	code, body, _ := sv.env.do("POST", "/v1/completions", tok, map[string]any{"prompt": "hi"})
	if code != 200 || !strings.Contains(string(body), "finally") {
		t.Errorf("long generation: %d %s, want 200 with the answer", code, body)
	}
}

// TestAttemptLimitBehindProxy: behind a trusted proxy the per-address limit
// counts the client X-Forwarded-For names (its right-most untrusted entry,
// whatever the client wrote to its left); from an untrusted peer the header
// is ignored and the peer's own address counts.
func TestAttemptLimitBehindProxy(t *testing.T) {
	try := func(e *env, xff string) int {
		req, _ := http.NewRequest("GET", e.base+"/api/preferences", nil)
		req.Header.Set("Authorization", "Bearer fspo_wrong")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	trusted := newEnv(t, func(c *serve.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	})
	for i := range 10 { // the burst of client A, its own claims to the left varying
		if code := try(trusted, fmt.Sprintf("198.51.100.%d, 203.0.113.5, 10.1.2.3", i)); code != http.StatusUnauthorized {
			t.Fatalf("client A attempt %d: %d, want 401", i, code)
		}
	}
	if code := try(trusted, "1.1.1.1, 203.0.113.5"); code != http.StatusTooManyRequests {
		t.Errorf("client A's 11th attempt (another left entry, one proxy fewer): %d, want 429", code)
	}
	if code := try(trusted, "203.0.113.6"); code != http.StatusUnauthorized {
		t.Errorf("client B behind the same proxy: %d, want 401 (its own bucket)", code)
	}
	if code := try(trusted, "not-an-address"); code != http.StatusUnauthorized {
		t.Errorf("a malformed header (counts the proxy): %d, want 401", code)
	}

	untrusted := newEnv(t, nil)
	for i := range 10 {
		if code := try(untrusted, fmt.Sprintf("203.0.113.%d", i)); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i, code)
		}
	}
	if code := try(untrusted, "203.0.113.99"); code != http.StatusTooManyRequests {
		t.Errorf("11th attempt from an untrusted peer with a new X-Forwarded-For: %d, want 429 (the header is ignored)", code)
	}
}
