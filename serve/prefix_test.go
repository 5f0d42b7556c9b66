package serve_test

import (
	"context"
	"slices"
	"testing"

	"fspo/episode"
	"fspo/model"
	"fspo/serve"
	"fspo/tensor"
)

// TestPrefixCacheReusesAUsersContext: a user's second question after the
// same few-shot context computes only the tokens after the shared part, and
// its answer is the one computed without the cache (greedy and sampled);
// the cache stays within its byte bound, dropping the least recently used —
// with keys and values cached in float32 and in halves (model.SetKVCache).
func TestPrefixCacheReusesAUsersContext(t *testing.T) {
	for _, kv := range []tensor.DType{tensor.F32, tensor.F16} {
		t.Run(kv.String(), func(t *testing.T) { prefixCacheReuse(t, kv) })
	}
}

func prefixCacheReuse(t *testing.T, kv tensor.DType) {
	e, _ := storiesEngine(t, episode.Plain)
	m, tok := e.Model, e.Codec.Tok
	if err := m.SetKVCache(kv); err != nil {
		t.Fatal(err)
	}
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
			sameAnswer(t, plain, cached, prompt, opt)
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

// TestPrefixHandover: a user's next question after the same context, when
// the entry of the last one is no longer held by its sequence, takes over the
// entry's memory (no copy) and answers as a batcher without the cache does;
// an entry that shares only its first tokens with a prompt, or whose memory
// a running sequence still holds, is copied from and, in the first case,
// kept; the sequence's own cache is left as it was.
func TestPrefixHandover(t *testing.T) {
	e, _ := storiesEngine(t, episode.Plain)
	m, tok := e.Model, e.Codec.Tok
	context4 := tok.Encode("Once upon a time, there was a little girl named Lily. She loved to play in the park with her friends. One day,", true)
	q1, q2 := tok.Encode(" she saw a big dog", false), tok.Encode(" she saw a big cat", false)
	if len(q1) != len(q2) || commonLen(q1, q2) == len(q1) {
		t.Fatalf("questions of %d and %d tokens: want two as long, not the same", len(q1), len(q2))
	}
	plain := startBatcher(t, m, 4)
	cached := startBatcher(t, m, 4)
	cached.Prefix = serve.NewPrefixCache(64 << 20)
	ask := func(prompt []int) {
		sameAnswer(t, plain, cached, prompt, model.GenOptions{MaxTokens: 20, Temperature: 0.9, Seed: 3})
	}
	ask(append(slices.Clip(context4), q1...))
	ask(append(slices.Clip(context4), q2...))
	if st := cached.Prefix.Stats(); st.Hits != 1 || st.Handovers != 1 || st.Entries != 1 {
		t.Fatalf("stats %+v: want the second question to take over the first's entry (1 hit, 1 handover, 1 entry)", st)
	}
	// sharing the first tokens only: copied, and the entry stays
	other := append(slices.Clip(context4[:20]), tok.Encode(" a dragon flew over the hills and far away to the sea", false)...)
	ask(other)
	if st := cached.Prefix.Stats(); st.Hits != 2 || st.Handovers != 1 || st.Entries != 2 {
		t.Fatalf("stats %+v: want a copied hit (2 hits, 1 handover, 2 entries)", st)
	}

	// an entry whose memory a running sequence holds is copied from
	pc := serve.NewPrefixCache(64 << 20)
	prompt := append(slices.Clip(context4), q1...)
	logits := make([]float32, m.Config.Vocab)
	owner := m.NewCacheFor(len(prompt) + 4)
	if err := m.Forward([]model.Step{{Cache: owner, Tokens: prompt, Logits: logits}}); err != nil {
		t.Fatal(err)
	}
	pc.Store(prompt, owner, m.NewCacheFor)
	next := append(slices.Clip(context4), q2...)
	c, n := pc.Lend(next, len(next)+4, m.NewCacheFor)
	if n != len(context4)+commonLen(q1, q2) || pc.Stats().Handovers != 0 {
		t.Fatalf("lent %d positions, %d handovers: want %d copied", n, pc.Stats().Handovers, len(context4)+commonLen(q1, q2))
	}
	whole := m.NewCacheFor(len(next))
	wantNext := make([]float32, m.Config.Vocab)
	if err := m.Forward([]model.Step{{Cache: whole, Tokens: next, Logits: wantNext}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Forward([]model.Step{{Cache: c, Tokens: next[n:], Logits: logits}}); err != nil {
		t.Fatal(err)
	}
	sameLogits(t, wantNext, logits, "after a lent prefix")
	// the owner's cache still holds its prompt: one more token gives the whole prompt's logits
	more := append(slices.Clip(prompt), 42)
	wantMore := make([]float32, m.Config.Vocab)
	if err := m.Forward([]model.Step{{Cache: m.NewCacheFor(len(more)), Tokens: more, Logits: wantMore}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Forward([]model.Step{{Cache: owner, Tokens: []int{42}, Logits: logits}}); err != nil {
		t.Fatal(err)
	}
	sameLogits(t, wantMore, logits, "in the owner's cache after a lend")
}

// sameAnswer: cached (a batcher with a prefix cache) answers prompt with
// the tokens plain (one without) gives.
func sameAnswer(t *testing.T, plain, cached *serve.Batcher, prompt []int, opt model.GenOptions) {
	t.Helper()
	want, err := plain.Generate(context.Background(), prompt, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cached.Generate(context.Background(), prompt, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Tokens, want.Tokens) {
		t.Fatalf("prompt of %d tokens (temperature %g): with the prefix cache %v, without %v", len(prompt), opt.Temperature, got.Tokens, want.Tokens)
	}
}

func commonLen(a, b []int) int {
	n := 0
	for n < min(len(a), len(b)) && a[n] == b[n] {
		n++
	}
	return n
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
