package model

import (
	"slices"
	"sync"

	"fspo/tensor"
)

// The memory of released caches is kept for the next ones. A cache's first
// writes into memory fresh from the system are page faults — on a 2-core VM
// ~140 ms for the 94 MB a 180M model's cache of 2048 positions holds, a
// quarter of its 512-token prefill — while Go's heap hands such large
// buffers back only after a collection, and a heap holding a model's
// weights collects rarely. llama.cpp allocates its cache once per context;
// a pool gives fspo's per-sequence caches the same: memory touched once.
var cachePool = struct {
	sync.Mutex
	free  [][]float32 // released key or value buffers, any length
	bytes int64
}{}

// CachePoolBytes bounds the memory kept for future caches (released
// buffers past it go back to the garbage collector). What the pool keeps
// stays with the process after a burst of sequences, up to this bound.
var CachePoolBytes int64 = 1 << 30

// takeBuffer returns n zeroed floats: the smallest pooled buffer that holds
// them and is at most twice their size (a cache's Bytes stays near the
// memory it holds), else new memory with huge pages asked for.
func takeBuffer(n int) []float32 {
	cachePool.Lock()
	best := -1
	for i, b := range cachePool.free {
		if cap(b) >= n && cap(b) <= 2*n && (best < 0 || cap(b) < cap(cachePool.free[best])) {
			best = i
		}
	}
	if best < 0 {
		cachePool.Unlock()
		return tensor.MakeHuge[float32](n)
	}
	b := cachePool.free[best]
	cachePool.free = slices.Delete(cachePool.free, best, best+1)
	cachePool.bytes -= int64(cap(b)) * 4
	cachePool.Unlock()
	b = b[:n]
	clear(b)
	return b
}

// putBuffer keeps b for a later cache if the pool has room.
func putBuffer(b []float32) {
	cachePool.Lock()
	defer cachePool.Unlock()
	if size := int64(cap(b)) * 4; cachePool.bytes+size <= CachePoolBytes {
		cachePool.free = append(cachePool.free, b[:0])
		cachePool.bytes += size
	}
}

// Release gives the cache's memory back for later caches; c must not be
// used after (a second Release does nothing). A cache a View was taken of,
// and a view, share their memory: it goes back when the last of them is
// released.
func (c *Cache) Release() {
	if c.k == nil {
		return
	}
	if c.refs.Add(-1) == 0 {
		putBuffer(c.k)
		putBuffer(c.v)
	}
	c.empty()
}
