package serve

import (
	"container/list"
	"sync"

	"fspo/model"
)

// PrefixCache keeps the KV caches of recent prompts (bounded in bytes, least
// recently used first out), so that a prompt sharing its beginning with one
// seen before — a user's next question after the same rendered few-shot
// context — computes only the tokens after the shared part. The keys and
// values of a prefix depend on its tokens alone (causal attention), so a
// reused prefix gives the same answer as computing it again, up to the float
// rounding of splitting the prompt's forward pass in two. Entries are
// matched by content, never by who sent them.
type PrefixCache struct {
	mu       sync.Mutex
	maxBytes int64
	bytes    int64
	lru      *list.List // of *prefixEntry, most recent first
	stats    PrefixStats
}

// PrefixStats counts lookups.
type PrefixStats struct {
	Lookups, Hits  int64
	ReusedTokens   int64 // prompt tokens not computed again
	PromptTokens   int64 // prompt tokens looked up
	Entries, Bytes int64
}

type prefixEntry struct {
	toks  []int
	cache *model.Cache
}

// NewPrefixCache keeps at most maxBytes of caches.
func NewPrefixCache(maxBytes int64) *PrefixCache {
	return &PrefixCache{maxBytes: maxBytes, lru: list.New()}
}

// minReuse is the shortest shared prefix worth copying (every prompt shares
// its first template tokens with every other).
const minReuse = 16

// Fill copies into c (empty, of the same model) the longest cached prefix of
// prompt, leaving at least the last prompt token to compute (its logits are
// the first token's distribution), and returns how many positions it holds.
//
// The copy runs outside the cache's lock, from a view of the entry (an
// eviction meanwhile leaves the memory to the view), so users who arrive
// together copy their prefixes in parallel.
func (p *PrefixCache) Fill(c *model.Cache, prompt []int) int {
	p.mu.Lock()
	p.stats.Lookups++
	p.stats.PromptTokens += int64(len(prompt))
	var best *list.Element
	n := 0
	for e := p.lru.Front(); e != nil; e = e.Next() {
		if k := commonPrefix(e.Value.(*prefixEntry).toks, prompt[:len(prompt)-1]); k > n {
			best, n = e, k
		}
	}
	if best == nil || n < minReuse {
		p.mu.Unlock()
		return 0
	}
	p.lru.MoveToFront(best)
	src := best.Value.(*prefixEntry).cache.View(n)
	p.stats.Hits++
	p.stats.ReusedTokens += int64(n)
	p.mu.Unlock()
	c.CopyPrefix(src, n)
	src.Release()
	return n
}

// Store keeps the first len(prompt) positions of c (which holds at least
// those) under prompt, evicting the least recently used entries past the
// byte bound; newFor makes an empty cache of n positions. Where c has room
// for at most twice the prompt (a sequence's cache: its prompt and answer)
// the entry shares c's memory, which the sequence goes on filling past the
// prompt: storing is then no copy, and costs no one's time to first token;
// a larger c is copied, so an entry holds at most twice what it needs.
func (p *PrefixCache) Store(prompt []int, c *model.Cache, newFor func(n int) *model.Cache) {
	if len(prompt) < minReuse {
		return
	}
	if c.Bytes() > p.maxBytes && c.Cap() <= 2*len(prompt) {
		return
	}
	var kept *model.Cache
	if c.Cap() > 2*len(prompt) {
		kept = newFor(len(prompt))
		if kept.Bytes() > p.maxBytes {
			kept.Release()
			return
		}
		kept.CopyPrefix(c, len(prompt))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for e := p.lru.Front(); e != nil; e = e.Next() { // the same prompt again: refresh it
		if pe := e.Value.(*prefixEntry); len(pe.toks) == len(prompt) && commonPrefix(pe.toks, prompt) == len(prompt) {
			p.lru.MoveToFront(e)
			if kept != nil {
				kept.Release()
			}
			return
		}
	}
	if kept == nil {
		kept = c.View(len(prompt))
	}
	p.lru.PushFront(&prefixEntry{toks: append([]int(nil), prompt...), cache: kept})
	p.bytes += kept.Bytes()
	for p.bytes > p.maxBytes {
		last := p.lru.Back()
		p.bytes -= last.Value.(*prefixEntry).cache.Bytes()
		p.lru.Remove(last)
		last.Value.(*prefixEntry).cache.Release() // a view's memory goes back once its sequence is done too
	}
}

// Stats returns the counters so far.
func (p *PrefixCache) Stats() PrefixStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Entries, s.Bytes = int64(p.lru.Len()), p.bytes
	return s
}

func commonPrefix(a, b []int) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
