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
	Handovers      int64 // hits whose entry's memory the new sequence took over (Lend)
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

// Lend returns a cache for a sequence of need positions holding the longest
// cached prefix of prompt, leaving at least the last prompt token to compute
// (its logits are the first token's distribution), and how many positions
// that is.
//
// When the prefix is at least three quarters of its entry — a user's next
// question after the same few-shot context, where only the entry's last
// question differs — and the entry's memory has room for need positions and
// at most twice that, the entry is handed over: it leaves the cache (Store
// keeps the new prompt once it is computed) and, when nothing else holds its
// memory, the sequence writes its positions after the prefix into that
// memory. No prefix is copied and no fresh memory is touched; on a 2-core VM
// first writes into fresh memory cost ~2 ms a MiB (page faults), 80 ms for a
// 180M model's 384-token prompt and its answer. Otherwise the prefix is
// copied into newFor(need) from a view of the entry, outside the lock (an
// eviction meanwhile leaves the memory to the view), so users who arrive
// together copy their prefixes in parallel.
func (p *PrefixCache) Lend(prompt []int, need int, newFor func(n int) *model.Cache) (*model.Cache, int) {
	p.mu.Lock()
	best, n := p.lookup(prompt)
	if best == nil {
		p.mu.Unlock()
		return newFor(need), 0
	}
	pe := best.Value.(*prefixEntry)
	src := pe.cache
	if size := src.Cap(); 4*n >= 3*len(pe.toks) && need <= size && size <= 2*need {
		p.lru.Remove(best) // found by no one from now on
		p.bytes -= src.Bytes()
		p.mu.Unlock()
		if c := src.Adopt(n); c != nil {
			p.mu.Lock()
			p.stats.Handovers++
			p.mu.Unlock()
			return c, n
		}
		// a copy from the entry begun before it left, or the sequence that
		// filled it, still holds the memory: copy from it (the entry stays
		// out; the new prompt is stored once computed)
	} else {
		src = src.View(n)
		p.mu.Unlock()
	}
	c := newFor(need)
	c.CopyPrefix(src, n)
	src.Release()
	return c, n
}

// lookup returns the entry sharing the longest prefix with prompt[:len-1]
// and the prefix's length; nil when none shares minReuse tokens. p.mu is
// held.
func (p *PrefixCache) lookup(prompt []int) (*list.Element, int) {
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
		return nil, 0
	}
	p.lru.MoveToFront(best)
	p.stats.Hits++
	p.stats.ReusedTokens += int64(n)
	return best, n
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
