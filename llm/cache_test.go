package llm

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"fspo/llm/llmtest"
)

func openCache(t testing.TB, path string) *Cache {
	t.Helper()
	c, err := NewCache(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCacheHitOnRerun(t *testing.T) {
	srv := llmtest.New(nil)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "calls.db")
	const n = 10
	mk := func(i int) Request { r := userReq("t", fmt.Sprintf("q%d", i)); r.Seed = 7; return r }

	e := mustNew(t, testConfig(srv))
	c1 := openCache(t, path)
	first := runParallel(t, Cached(e, c1), n, mk)
	for i, r := range first {
		if r.Cached || r.Text != fmt.Sprintf("q%d", i) {
			t.Errorf("first run %d: cached=%v text=%q", i, r.Cached, r.Text)
		}
	}
	c1.Close()

	// A fresh process: new client, cache reopened from disk.
	e2 := mustNew(t, testConfig(srv))
	c2 := openCache(t, path)
	if got, err := c2.Len(context.Background()); err != nil || got != n {
		t.Fatalf("Len = %d, %v; want %d", got, err, n)
	}
	second := runParallel(t, Cached(e2, c2), n, mk)
	for i, r := range second {
		want := first[i]
		want.Cached = true
		if r.Text != want.Text || !r.Cached || r.Endpoint != want.Endpoint || r.PromptTokens != want.PromptTokens || r.Cost != want.Cost {
			t.Errorf("rerun %d: got %+v, want %+v", i, r, want)
		}
	}
	if got := len(srv.Requests()); got != n {
		t.Errorf("server saw %d requests over two runs, want %d", got, n)
	}
	if st := c2.Stats(); st.CachedHits != n {
		t.Errorf("cached hits = %d, want %d", st.CachedHits, n)
	}
	if st := e2.Stats(); st.Calls != 0 {
		t.Errorf("second client made %d calls, want 0", st.Calls)
	}

	// A different seed or stage default is a different key.
	r := mk(0)
	r.Seed = 8
	if resp, err := Cached(e2, c2).Complete(context.Background(), r); err != nil || resp.Cached {
		t.Errorf("new seed: cached=%v err=%v, want a fresh call", resp.Cached, err)
	}
}

func TestCacheKeyIncludesStageDefaults(t *testing.T) {
	srv := llmtest.New(nil)
	defer srv.Close()
	c := openCache(t, filepath.Join(t.TempDir(), "calls.db"))
	mk := func(temp float64) Client {
		cfg := testConfig(srv)
		cfg.Stages = map[string]StageDefaults{"t": {Temperature: &temp}}
		return Cached(mustNew(t, cfg), c)
	}
	for i, tt := range []struct {
		temp   float64
		cached bool
	}{{0.3, false}, {0.3, true}, {1.0, false}} {
		resp, err := mk(tt.temp).Complete(context.Background(), userReq("t", "same"))
		if err != nil || resp.Cached != tt.cached {
			t.Errorf("step %d (temperature %v): cached=%v err=%v, want cached=%v", i, tt.temp, resp.Cached, err, tt.cached)
		}
	}
}

func TestCacheRecordsFailures(t *testing.T) {
	fail := true
	srv := llmtest.New(func(r llmtest.ChatRequest) llmtest.Reply {
		if fail {
			return llmtest.Reply{Fault: llmtest.ServerError}
		}
		return llmtest.Echo(r)
	})
	defer srv.Close()
	c := openCache(t, filepath.Join(t.TempDir(), "calls.db"))
	cl := Cached(mustNew(t, testConfig(srv)), c)
	ctx := context.Background()
	if _, err := cl.Complete(ctx, userReq("t", "x")); err == nil {
		t.Fatal("want an error")
	}
	if got, err := c.Failures(ctx); err != nil || got[KindServer] != 1 || len(got) != 1 {
		t.Errorf("failures = %v, %v; want {server: 1}", got, err)
	}
	// The next run succeeds: the failure record is cleared, the answer stored.
	fail = false
	if resp, err := cl.Complete(ctx, userReq("t", "x")); err != nil || resp.Cached {
		t.Fatalf("rerun: cached=%v err=%v", resp.Cached, err)
	}
	if got, _ := c.Failures(ctx); len(got) != 0 {
		t.Errorf("failures after success = %v, want none", got)
	}
	if resp, err := cl.Complete(ctx, userReq("t", "x")); err != nil || !resp.Cached {
		t.Errorf("third call: cached=%v err=%v, want a hit", resp.Cached, err)
	}
}

func TestCachedEmbeddings(t *testing.T) {
	srv := llmtest.New(nil)
	defer srv.Close()
	cfg := testConfig(srv)
	cfg.Endpoints[0].EmbeddingModel = "emb"
	c := openCache(t, filepath.Join(t.TempDir(), "calls.db"))
	cl := Cached(mustNew(t, cfg), c)
	ctx := context.Background()
	if _, err := cl.Embed(ctx, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	got, err := cl.Embed(ctx, []string{"b", "c", "a"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := llmtest.HashEmbed([]string{"b", "c", "a"})
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("vector %d[%d] = %v, want %v", i, j, got[i][j], want[i][j])
			}
		}
	}
	if n := srv.EmbedRequests(); n != 2 {
		t.Errorf("embedding requests = %d, want 2 (second only for c)", n)
	}
}

// fillCache writes n entries directly.
func fillCache(t testing.TB, c *Cache, n int) []string {
	keys := make([]string, n)
	ctx := context.Background()
	for i := range n {
		keys[i] = Key(userReq("t", fmt.Sprint(i)), "a", "m")
		if err := c.Put(ctx, keys[i], "t", Response{Text: fmt.Sprintf("response %d with some length to it", i), Endpoint: "a", Model: "m", PromptTokens: 10, CompletionTokens: 20}); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func readAll(t testing.TB, path string, keys []string) {
	c := openCache(t, path)
	ctx := context.Background()
	for i, k := range keys {
		r, ok, err := c.Get(ctx, k)
		if err != nil || !ok || !r.Cached {
			t.Fatalf("entry %d: ok=%v err=%v", i, ok, err)
		}
	}
}

func TestCacheResume(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	path := filepath.Join(t.TempDir(), "calls.db")
	keys := fillCache(t, openCache(t, path), n)
	start := time.Now()
	readAll(t, path, keys)
	el := time.Since(start)
	t.Logf("re-read %d entries in %v (%.1f µs/entry)", n, el, float64(el.Microseconds())/float64(n))
	// 100k in seconds means tens of µs each; the bound leaves slack for a
	// loaded machine, and the race detector's slowdown is not measured.
	if per := el / time.Duration(n); per > 250*time.Microsecond && !raceEnabled {
		t.Errorf("re-read took %v per entry, want < 250µs", per)
	}
}

// BenchmarkCacheResume100k re-reads 100,000 cached entries from a reopened cache.
func BenchmarkCacheResume100k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "calls.db")
	const n = 100_000
	c := openCache(b, path)
	ctx := context.Background()
	keys := make([]string, n)
	tx, err := c.db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	for i := range n { // one transaction: filling is not what is measured
		keys[i] = Key(userReq("t", fmt.Sprint(i)), "a", "m")
		if _, err := tx.ExecContext(ctx, "INSERT INTO calls(key, stage, endpoint, model, response, created) VALUES(?,?,?,?,?,0)",
			keys[i], "t", "a", "m", fmt.Sprintf(`{"Text":"response %d with some length to it","Endpoint":"a","Model":"m"}`, i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	c.Close()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		readAll(b, path, keys)
		b.ReportMetric(time.Since(start).Seconds(), "s/100k")
	}
}

func TestCachedJoinsConcurrentDuplicates(t *testing.T) {
	srv := llmtest.New(func(r llmtest.ChatRequest) llmtest.Reply {
		return llmtest.Reply{Text: r.Last(), Delay: 100 * time.Millisecond}
	})
	defer srv.Close()
	c := openCache(t, filepath.Join(t.TempDir(), "calls.db"))
	resps := runParallel(t, Cached(mustNew(t, testConfig(srv)), c), 8, func(int) Request { return userReq("t", "same") })
	cached := 0
	for _, r := range resps {
		if r.Text != "same" {
			t.Errorf("text %q", r.Text)
		}
		if r.Cached {
			cached++
		}
	}
	if n := len(srv.Requests()); n != 1 || cached != 7 || c.Stats().CachedHits != 7 {
		t.Errorf("server saw %d requests, %d responses cached, %d hits; want 1, 7, 7", n, cached, c.Stats().CachedHits)
	}
}
