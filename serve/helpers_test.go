package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fspo/serve"
	"fspo/serve/servetest"
	"fspo/store"
	"fspo/store/sqlite"
)

const adminToken = "admin-token-0123456789abcdef"

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a server on loopback over a fresh SQLite store and a fake engine.
type env struct {
	t     testing.TB
	srv   *httptest.Server
	base  string       // the server's URL
	hc    *http.Client // the client do uses
	store store.Store
	eng   *servetest.Engine
	logs  *syncBuffer
}

func newEnv(t testing.TB, configure func(*serve.Config)) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "serve.db"))
	if err != nil {
		t.Fatal(err)
	}
	return newEnvOn(t, st, configure)
}

// newEnvOn is newEnv over the store st (closed at the end of the test).
func newEnvOn(t testing.TB, st store.Store, configure func(*serve.Config)) *env {
	t.Helper()
	e := &env{t: t, store: st, eng: servetest.New("fake"), logs: &syncBuffer{}}
	cfg := serve.Config{Store: st, Engine: e.eng, AdminToken: adminToken,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if configure != nil {
		configure(&cfg)
	}
	s, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(s)
	e.base, e.hc = e.srv.URL, e.srv.Client()
	t.Cleanup(func() {
		e.srv.Close()
		st.Close()
	})
	return e
}

// do sends a request with a bearer token (when not "") and a JSON body
// (a string is sent as is), returning the status and body.
func (e *env) do(method, path, token string, body any) (int, []byte, http.Header) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, out, resp.Header
}

// user creates a user through the API and returns its id and token.
func (e *env) user(name string) (string, string) {
	e.t.Helper()
	code, body, _ := e.do("POST", "/api/users", adminToken, map[string]string{"name": name})
	if code != http.StatusCreated {
		e.t.Fatalf("create user: %d %s", code, body)
	}
	var u struct{ ID, Token string }
	if err := json.Unmarshal(body, &u); err != nil || u.ID == "" || u.Token == "" {
		e.t.Fatalf("create user: body %s: %v", body, err)
	}
	return u.ID, u.Token
}

// pref adds a preference and returns its id.
func (e *env) pref(token, prompt, chosen, rejected string) int64 {
	e.t.Helper()
	code, body, _ := e.do("POST", "/api/preferences", token, map[string]string{"prompt": prompt, "chosen": chosen, "rejected": rejected})
	if code != http.StatusCreated {
		e.t.Fatalf("add preference: %d %s", code, body)
	}
	var p struct{ ID int64 }
	if err := json.Unmarshal(body, &p); err != nil || p.ID == 0 {
		e.t.Fatalf("add preference: body %s: %v", body, err)
	}
	return p.ID
}

func decode[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

// fakeClock is a Config.Now that tests move forward.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
