package model

import (
	"math"

	"fspo/tensor"
)

// promptAttnRows is the fewest rows of one step (a prompt) whose attention
// attendPrompt computes as matrix products. Measured on the 180M model's
// cached serving (16 users' 24-token questions after 360 cached positions,
// alternating builds, 6 rounds): at 16 rather than 32 the questions' time to
// first token fell 9–16% and the 16 users' throughput rose in 5 of 6 rounds.
const promptAttnRows = 16

// promptStep is whether the rows of step s attend through attendPrompt: a
// step of many rows (a prompt, alone or beside other sequences' rows in a
// batch), and a head size above the 8 that the row kernels are written for
// (stories260K keeps them).
func (m *Model) promptStep(s Step) bool {
	return len(s.Tokens) >= promptAttnRows && m.Config.HeadSize() > tensor.AttnRowsHS
}

// attendPrompt is attendCached for one step of many rows, as the training
// pass attends (attentionForward): per query head and block of attBlock
// rows, the scores against the keys the block's last row sees are one
// matrix product with the cache's transposed keys, each row's softmax runs
// over the keys it sees (the rest zeroed), and a second product weighs the
// transposed values. Measured on a 180M model's 512-token prefill: the row
// by row attention was 30% of the time. The step's rows are rows row0… of
// the call's buffers.
func (m *Model) attendPrompt(b *inferBuf, s Step, l, row0 int) {
	c := m.Config
	qd, kv, hs := c.QDim(), c.KVDim(), c.HeadSize()
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(hs)))
	cache, rows := s.Cache, len(s.Tokens)
	q, ao := b.q[row0*qd:], b.ao[row0*qd:]
	blocks := (rows + attBlock - 1) / attBlock
	keys := cache.n + rows
	// the layer's keys and values as (kv, ld) matrices: the cache's own, or
	// its halves widened for the step
	var K, V []float32
	ld := cache.ctx
	if !cache.half {
		K, V = cache.k[l*kv*ld:], cache.v[l*kv*ld:]
	} else {
		b.kw = grow(b.kw, 2*kv*keys)
		K, V, ld = b.kw[:kv*keys], b.kw[kv*keys:], keys
		for r := range kv {
			tensor.WidenF16(K[r*ld:(r+1)*ld], cache.hk[(l*kv+r)*cache.ctx:][:keys])
			tensor.WidenF16(V[r*ld:(r+1)*ld], cache.hv[(l*kv+r)*cache.ctx:][:keys])
		}
	}
	scratch := attBlock * keys
	slots := 4*tensor.Threads() + 1
	b.att = grow(b.att, slots*scratch)
	b.slot.Store(0)
	parallelFor(c.Heads*blocks, 1, func(lo, hi int) {
		sl := int(b.slot.Add(1)-1) % slots
		S := b.att[sl*scratch : (sl+1)*scratch]
		for it := lo; it < hi; it++ {
			h, r0 := it/blocks, it%blocks*attBlock
			r1 := min(r0+attBlock, rows)
			n := cache.n + r1 // keys the block's last row sees
			base := h / group * hs * ld
			// S[r0:r1, 0:n] = Q[r0:r1] · K[0:n]ᵀ, K stored as (hs, ld)
			tensor.GemmSerial(false, false, r1-r0, n, hs, q[r0*qd+h*hs:], qd, K[base:], ld, 0, S, n)
			for r := r0; r < r1; r++ {
				row := S[(r-r0)*n : (r-r0+1)*n]
				seen := row[:cache.n+r+1]
				tensor.Scale(scale, seen)
				sum := tensor.ExpSub(seen, seen, tensor.Max(seen))
				tensor.Scale(1/sum, seen)
				clear(row[len(seen):])
			}
			// O[r0:r1] = P · V[0:n], V stored as (hs, ld)
			tensor.GemmSerial(false, true, r1-r0, hs, n, S, n, V[base:], ld, 0, ao[r0*qd+h*hs:], qd)
		}
	})
}
