package model

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"fspo/tensor"
)

// Cache holds the keys and values of the positions a sequence has seen, so
// that generation processes each new token once.
type Cache struct {
	// k and v hold the memory, (layers, kv_dim, positions) values each:
	// float32, or, when half is set, IEEE halves two to a float32 (hk, hv)
	k, v   []float32
	hk, hv []uint16
	half   bool
	n      int // positions filled
	ctx    int // positions available
	kvDim  int
	// refs counts the caches holding k and v: this one and its views (View);
	// the last to Release gives the memory to the pool
	refs *atomic.Int32
	// team, when set, splits a single row's attention heads between two
	// threads (set by GenerateBatch for one sequence on 2+ threads).
	team *tensor.Team
}

// SetKVCache sets how the caches made from now on store keys and values:
// tensor.F32 (the default: the model's own arithmetic) or tensor.F16 (IEEE
// halves, as llama.cpp keeps them by default: half the memory, so twice
// the positions or users in the same bytes, and half the bytes attention
// reads while decoding; each key and value rounded to 11 significant bits,
// values beyond ±65504 held there).
func (m *Model) SetKVCache(dt tensor.DType) error {
	switch dt {
	case tensor.F32, tensor.F16:
		m.kvHalf = dt == tensor.F16
		return nil
	}
	return fmt.Errorf("a key/value cache is stored as f32 or f16, not %s", dt)
}

// KVCache is how the model's caches store keys and values (SetKVCache).
func (m *Model) KVCache() tensor.DType {
	if m.kvHalf {
		return tensor.F16
	}
	return tensor.F32
}

// NewCache makes an empty cache for up to m.Positions() positions.
func (m *Model) NewCache() *Cache { return m.NewCacheFor(m.Positions()) }

// NewCacheFor makes an empty cache for at least n positions (at most
// m.Positions()): a generation that knows its length pays for the memory it
// uses only (a 1B model's cache for 8192 positions is 0.5 GB, first touched
// position by position). The room is rounded up to a multiple of 16
// positions, so that each channel's row of keys or values starts a cache
// line and attention's 16-position loads do not straddle two (measured: 16
// sequences' attention over 400 positions on one thread took 8–12% less
// time with rows of 448 positions than of 447).
func (m *Model) NewCacheFor(n int) *Cache {
	c := m.Config
	n = max(1, min((n+15)&^15, m.Positions()))
	size := c.Layers * n * c.KVDim()
	refs := new(atomic.Int32)
	refs.Store(1)
	if !m.kvHalf {
		return &Cache{k: takeBuffer(size), v: takeBuffer(size), ctx: n, kvDim: c.KVDim(), refs: refs}
	}
	k, v := takeBuffer((size+1)/2), takeBuffer((size+1)/2)
	return &Cache{k: k, v: v, hk: asHalves(k, size), hv: asHalves(v, size), half: true, ctx: n, kvDim: c.KVDim(), refs: refs}
}

// asHalves is the first n halves of b's memory.
func asHalves(b []float32, n int) []uint16 {
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// Len is how many positions the cache holds.
func (c *Cache) Len() int { return c.n }

// rows is the number of (layer, kv head, channel) rows the cache holds.
func (c *Cache) rows() int {
	if c.half {
		return len(c.hk) / c.ctx
	}
	return len(c.k) / c.ctx
}

// CopyPrefix makes c hold o's first n positions (both from the same model
// and kind of cache; their capacities may differ): the keys and values of a
// shared prompt prefix, which depend on those tokens alone (causal
// attention).
func (c *Cache) CopyPrefix(o *Cache, n int) {
	if c.kvDim != o.kvDim || c.half != o.half || c.rows() != o.rows() {
		panic("model: CopyPrefix between caches of different models or kinds")
	}
	if n > o.n || n > c.ctx {
		panic(fmt.Sprintf("model: CopyPrefix of %d positions (the source holds %d, the destination fits %d)", n, o.n, c.ctx))
	}
	if c.half {
		copyRows(c.hk, o.hk, c.ctx, o.ctx, n)
		copyRows(c.hv, o.hv, c.ctx, o.ctx, n)
	} else {
		copyRows(c.k, o.k, c.ctx, o.ctx, n)
		copyRows(c.v, o.v, c.ctx, o.ctx, n)
	}
	c.n = n
}

// copyRows copies the first n values of each row (dctx and sctx apart).
func copyRows[T float32 | uint16](dst, src []T, dctx, sctx, n int) {
	for row := 0; row < len(dst)/dctx; row++ { // one row per (layer, kv head, channel)
		copy(dst[row*dctx:row*dctx+n], src[row*sctx:row*sctx+n])
	}
}

// clearFrom zeroes each row (ctx apart) from position n on.
func clearFrom[T float32 | uint16](b []T, ctx, n int) {
	for row := 0; row < len(b)/ctx; row++ {
		clear(b[row*ctx+n : (row+1)*ctx])
	}
}

// View is a read-only view of c's first n positions (n ≤ c.Len()) sharing
// c's memory, as the source of CopyPrefix: c may go on filling positions
// from n on (a sequence generating after its prompt) while the view is
// copied from, since a position once filled is never written again (a
// cache only grows). The memory goes back to the pool when c and all its
// views are released.
func (c *Cache) View(n int) *Cache {
	if n > c.n {
		panic(fmt.Sprintf("model: View of %d positions of a cache holding %d", n, c.n))
	}
	c.refs.Add(1)
	out := *c
	out.n, out.team = n, nil
	return &out
}

// Adopt returns a cache holding c's first n positions (n ≤ c.Len()) in c's
// own memory, when c — a cache or a view — is the last holder of that
// memory: the positions from n on are cleared, to be written again, and c
// is left empty (its Release does nothing). It returns nil, leaving c as it
// is, while another cache or view shares the memory.
func (c *Cache) Adopt(n int) *Cache {
	if n > c.n {
		panic(fmt.Sprintf("model: Adopt of %d positions of a cache holding %d", n, c.n))
	}
	if c.k == nil || c.refs.Load() != 1 {
		return nil
	}
	if c.half {
		clearFrom(c.hk, c.ctx, n)
		clearFrom(c.hv, c.ctx, n)
	} else {
		clearFrom(c.k, c.ctx, n)
		clearFrom(c.v, c.ctx, n)
	}
	out := *c
	out.n, out.team = n, nil
	c.empty()
	return &out
}

// empty leaves c holding no memory.
func (c *Cache) empty() {
	c.k, c.v, c.hk, c.hv, c.n, c.ctx = nil, nil, nil, nil, 0, 0
}

// Cap is how many positions the cache has room for.
func (c *Cache) Cap() int { return c.ctx }

// Bytes is the memory the cache holds.
func (c *Cache) Bytes() int64 { return int64(len(c.k)+len(c.v)) * 4 }
