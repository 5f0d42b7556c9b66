package serve_test

import (
	"context"
	"slices"
	"testing"

	"fspo/episode"
	"fspo/model"
	"fspo/serve"
)

// TestPrefixCacheReusesAUsersContext: a user's second question after the
// same few-shot context computes only the tokens after the shared part, and
// its answer is the one computed without the cache (greedy and sampled);
// the cache stays within its byte bound, dropping the least recently used.
func TestPrefixCacheReusesAUsersContext(t *testing.T) {
	e, _ := storiesEngine(t, episode.Plain)
	m, tok := e.Model, e.Codec.Tok
	context4 := tok.Encode("Once upon a time, there was a little girl named Lily. She loved to play in the park with her friends. One day,", true)
	questions := [][]int{tok.Encode(" she saw a big dog", false), tok.Encode(" it began to rain", false), tok.Encode(" her mom baked a cake", false)}
	plain := startBatcher(t, m, 4)
	cached := startBatcher(t, m, 4)
	cached.Prefix = serve.NewPrefixCache(64 << 20)
	for i, q := range questions {
		prompt := append(slices.Clip(context4), q...)
		// 30 new tokens: the sequence's cache (prompt and answer) is kept
		// shared; 80: it has room for over twice the prompt and is copied
		if len(prompt)+30-1 > 2*len(prompt) || len(prompt)+80-1 <= 2*len(prompt) {
			t.Fatalf("a prompt of %d tokens does not take both of Store's paths", len(prompt))
		}
		for _, opt := range []model.GenOptions{{MaxTokens: 30}, {MaxTokens: 80, Temperature: 0.8, TopP: 0.9, Seed: uint64(i)}} {
			want, err := plain.Generate(context.Background(), prompt, opt, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cached.Generate(context.Background(), prompt, opt, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Tokens, want.Tokens) {
				t.Fatalf("question %d (temperature %g): with the prefix cache %v, without %v", i, opt.Temperature, got.Tokens, want.Tokens)
			}
		}
	}
	st := cached.Prefix.Stats()
	// the first lookup finds nothing; every later one reuses at least the shared context
	if st.Lookups != 6 || st.Hits != 5 || st.ReusedTokens < 5*int64(len(context4)) {
		t.Fatalf("stats %+v: want 6 lookups, 5 hits reusing ≥ %d tokens each", st, len(context4))
	}
	// a bound of two prompts' caches keeps two entries
	one := m.NewCacheFor(len(context4) + len(questions[0])).Bytes()
	small := startBatcher(t, m, 4)
	small.Prefix = serve.NewPrefixCache(2*one + one/2)
	for _, q := range questions {
		if _, err := small.Generate(context.Background(), append(slices.Clip(context4), q...), model.GenOptions{MaxTokens: 4}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if st := small.Prefix.Stats(); st.Entries > 2 || st.Bytes > 2*one+one/2 {
		t.Fatalf("bounded cache holds %d entries, %d bytes (bound %d)", st.Entries, st.Bytes, 2*one+one/2)
	}
}

// TestCopyPrefix: a cache holding a copied prefix, then fed the rest of the
// prompt, gives the logits of the whole prompt fed at once — copied from a
// whole cache, or from a view of a cache's first positions while that cache
// goes on filling the positions after them.
func TestCopyPrefix(t *testing.T) {
	e, _ := storiesEngine(t, episode.Plain)
	m, tok := e.Model, e.Codec.Tok
	p := tok.Encode("Once upon a time, there was a little girl named Lily who liked cake.", true)
	logits := make([]float32, m.Config.Vocab)
	feed := func(c *model.Cache, toks []int) []float32 {
		t.Helper()
		if err := m.Forward([]model.Step{{Cache: c, Tokens: toks, Logits: logits}}); err != nil {
			t.Fatal(err)
		}
		return slices.Clone(logits)
	}
	full := m.NewCacheFor(len(p))
	whole := feed(full, p)
	c := m.NewCacheFor(len(p) + 8) // another capacity than the source's
	c.CopyPrefix(full, 10)
	sameLogits(t, whole, feed(c, p[10:]), "after a copied prefix")

	src := m.NewCacheFor(len(p))
	feed(src, p[:10])
	view := src.View(10)
	feed(src, p[10:])
	fromView := m.NewCacheFor(len(p))
	fromView.CopyPrefix(view, 10)
	sameLogits(t, whole, feed(fromView, p[10:]), "after a prefix copied from a view")
}

func sameLogits(t *testing.T, whole, split []float32, how string) {
	t.Helper()
	for i := range whole {
		if d := whole[i] - split[i]; d > 1e-4 || d < -1e-4 {
			t.Fatalf("logit %d: %g whole, %g %s", i, whole[i], split[i], how)
		}
	}
}
