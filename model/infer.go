package model

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"fspo/tensor"
)

// inferBuf is the scratch space of one Forward call.
type inferBuf struct {
	x, xb, q, k, v, ao, h1, h3, hb, att []float32
	kw                                  []float32 // a prompt's keys and values widened from halves (attendPrompt)
	rowStart                            []int     // storeKV: each step's first row
	logits                              []float32 // the classifier's rows when several steps want logits
	xn                                  []float32 // greedy steps' normed rows (greedy.go)
	next                                []*int    // greedy steps' answers
	best                                []int
	screen                              tensor.ScreenScratch
	pos                                 []int32
	rowCache                            []*Cache     // the cache of each row attending alone (rows)
	rows                                []int32      // the rows that attend one by one (not a prompt's)
	slot                                atomic.Int32 // next scratch slot of att
}

var inferPool sync.Pool

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// Step is one sequence's part of a Forward call: its cache and the tokens to
// append to it.
type Step struct {
	Cache  *Cache
	Tokens []int
	// Logits receives the next-token logits after the last token (vocab
	// values); nil to skip the classifier.
	Logits []float32
	// AllLogits, when set, receives the logits after each of the tokens
	// instead (len(Tokens)·vocab values, token by token): scoring a whole
	// continuation in one step.
	AllLogits []float32
	// Next, when set (with neither logits buffer), receives the id of the
	// largest next-token logit instead (ties to the lowest): a greedy step,
	// which over a large vocabulary reads the classifier's screen rather
	// than the classifier whole (greedy.go).
	Next *int
}

// Forward appends each step's tokens to its cache and computes the logits
// after each step's last token. Steps of several sequences are batched: their
// rows share every matrix multiplication.
func (m *Model) Forward(steps []Step) error { return m.ForwardOn(nil, steps) }

// ForwardOn is Forward with a step of at most tensor.TeamRows rows (decoded
// tokens, not prompts) split over team (its caller and a spinning partner)
// instead of ParallelFor's parked helpers, which take longer to wake than
// one layer's products of a few decoded rows last: a server's batcher keeps
// one team for its steps. A nil team uses a lone sequence's own
// (GenerateBatch's), else ParallelFor.
func (m *Model) ForwardOn(team *tensor.Team, steps []Step) error {
	M, err := m.checkSteps(steps)
	if err != nil {
		return err
	}
	b, _ := inferPool.Get().(*inferBuf)
	if b == nil {
		b = &inferBuf{}
	}
	defer inferPool.Put(b)
	m.embedRows(b, steps, M)
	pr := projector{M: M}
	if M <= decodeRows && m.q == nil { // a few rows: row by row, or through the transposed copy
		if m.Config.Dim >= rowDecodeDim {
			pr.q = m.f32Views()
		} else {
			pr.t = m.transposedWeights()
		}
	}
	if team == nil && len(steps) == 1 && M <= decodeRows {
		team = steps[0].Cache.team // one sequence's products are split with its spinning partner
	}
	if team != nil && M <= tensor.TeamRows {
		pr.team = team
		if pr.q == nil && pr.t == nil && m.q == nil && m.Config.Dim >= rowDecodeDim {
			pr.q = m.f32Views() // the views' products take the team
		}
	}
	for l := 0; l < m.Config.Layers; l++ {
		m.forwardLayer(b, steps, pr, l)
	}
	m.stepLogits(b, steps, pr)
	return nil
}

// checkSteps validates steps and returns how many rows they bring.
func (m *Model) checkSteps(steps []Step) (int, error) {
	c := m.Config
	M := 0
	for i, s := range steps {
		if len(s.Tokens) == 0 {
			return 0, fmt.Errorf("step %d: no tokens", i)
		}
		if s.Cache.n+len(s.Tokens) > s.Cache.ctx {
			return 0, fmt.Errorf("step %d: %d positions exceed the model's context of %d", i, s.Cache.n+len(s.Tokens), s.Cache.ctx)
		}
		for _, t := range s.Tokens {
			if t < 0 || t >= c.Vocab {
				return 0, fmt.Errorf("step %d: token %d outside the vocabulary of %d", i, t, c.Vocab)
			}
		}
		if s.Logits != nil && len(s.Logits) != c.Vocab {
			return 0, fmt.Errorf("step %d: logits buffer has %d values, want %d", i, len(s.Logits), c.Vocab)
		}
		if s.AllLogits != nil && (s.Logits != nil || len(s.AllLogits) != len(s.Tokens)*c.Vocab) {
			return 0, fmt.Errorf("step %d: all-logits buffer has %d values, want %d (and no Logits)", i, len(s.AllLogits), len(s.Tokens)*c.Vocab)
		}
		if s.Next != nil && (s.Logits != nil || s.AllLogits != nil) {
			return 0, fmt.Errorf("step %d: Next goes without logits buffers", i)
		}
		M += len(s.Tokens)
	}
	return M, nil
}

// embedRows sizes b for M rows and fills the residual stream with the steps'
// token embeddings and b.pos with their positions.
func (m *Model) embedRows(b *inferBuf, steps []Step, M int) {
	c := m.Config
	dim, qd, kv, hid := c.Dim, c.QDim(), c.KVDim(), c.Hidden
	b.x = grow(b.x, M*dim)
	b.xb = grow(b.xb, M*dim)
	b.q = grow(b.q, M*qd)
	b.k = grow(b.k, M*kv)
	b.v = grow(b.v, M*kv)
	b.ao = grow(b.ao, M*qd)
	b.h1 = grow(b.h1, M*hid)
	b.h3 = grow(b.h3, M*hid)
	b.hb = grow(b.hb, M*hid)
	b.pos = growInt(b.pos, M)
	r := 0
	for _, s := range steps {
		for i, t := range s.Tokens {
			m.embedRow(b.x[r*dim:], t)
			b.pos[r] = int32(s.Cache.n + i)
			r++
		}
	}
}

// projector says how Forward multiplies its M rows by the weight matrices:
// through the F32 views q or the transposed F32 copy t when one is set
// (decoding), split over team when set (one decoded sequence).
type projector struct {
	M    int
	t    *transposed
	q    *qweights
	team *tensor.Team
}

// forwardLayer runs block l on the rows of b, storing their keys and values.
func (m *Model) forwardLayer(b *inferBuf, steps []Step, pr projector, l int) {
	c, w := m.Config, m.W
	dim := c.Dim
	rmsnormForward(b.xb, nil, b.x, layer(w.RmsAtt, l, dim), dim, c.NormEps)
	m.project(projQ, l, b.q, b.xb, pr.M, 0, pr)
	m.project(projK, l, b.k, b.xb, pr.M, 0, pr)
	m.project(projV, l, b.v, b.xb, pr.M, 0, pr)
	m.attnInputsForward(b.q, b.k, b.v, l, b.pos, nil)
	m.storeKV(b, steps, l, pr.team)
	m.attendCached(b, steps, l, pr.team)
	m.project(projO, l, b.x, b.ao, pr.M, 1, pr)
	rmsnormForward(b.xb, nil, b.x, layer(w.RmsFfn, l, dim), dim, c.NormEps)
	m.project(projGate, l, b.h1, b.xb, pr.M, 0, pr)
	m.project(projUp, l, b.h3, b.xb, pr.M, 0, pr)
	if hid := c.Hidden; pr.team != nil && pr.M > 1 { // decoded rows: split with the team's partner
		pr.team.For(pr.M, func(_, i int) {
			tensor.SwiGLU(b.hb[i*hid:(i+1)*hid], b.h1[i*hid:(i+1)*hid], b.h3[i*hid:(i+1)*hid])
		})
	} else {
		tensor.SwiGLU(b.hb, b.h1, b.h3)
	}
	m.project(projDown, l, b.x, b.hb, pr.M, 1, pr)
}

// storeKV writes the keys and values of layer l's rows into their caches
// (transposed), a channel at a time, so that a prompt's positions are
// written in sequence (token by token, each value went to another of kv
// lines ctx floats apart: 15% of a 180M model's 512-token prefill). With a
// team, the sequences are split between its two threads: a decoded row's
// 2·kv values land on as many cache lines, ~3 ms a step for 16 rows of a
// 180M model on one thread.
func (m *Model) storeKV(b *inferBuf, steps []Step, l int, team *tensor.Team) {
	kv := m.Config.KVDim()
	b.rowStart = b.rowStart[:0]
	r := 0
	for _, s := range steps {
		b.rowStart = append(b.rowStart, r)
		r += len(s.Tokens)
	}
	store := func(k int) {
		s, r := steps[k], b.rowStart[k]
		ctx, n, p := s.Cache.ctx, len(s.Tokens), s.Cache.n
		if s.Cache.half {
			storeHalves(s.Cache.hk[l*kv*ctx:(l+1)*kv*ctx], b.k[r*kv:(r+n)*kv], kv, ctx, p)
			storeHalves(s.Cache.hv[l*kv*ctx:(l+1)*kv*ctx], b.v[r*kv:(r+n)*kv], kv, ctx, p)
			return
		}
		ck := s.Cache.k[l*kv*ctx : (l+1)*kv*ctx]
		cv := s.Cache.v[l*kv*ctx : (l+1)*kv*ctx]
		for ch := range kv {
			dk, dv := ck[ch*ctx+p:][:n], cv[ch*ctx+p:][:n]
			for i := range n {
				dk[i], dv[i] = b.k[(r+i)*kv+ch], b.v[(r+i)*kv+ch]
			}
		}
	}
	if team != nil && len(steps) > 1 {
		team.For(len(steps), func(_, k int) { store(k) })
		return
	}
	for k := range steps {
		store(k)
	}
}

// storeHalves writes rows of kv values (one per position from p on) into a
// layer's transposed cache of halves, each rounded by tensor.NarrowF16.
func storeHalves(dst []uint16, src []float32, kv, ctx, p int) {
	var buf [512]uint16
	for i := 0; i < len(src)/kv; i++ {
		for c0 := 0; c0 < kv; c0 += len(buf) {
			h := buf[:min(len(buf), kv-c0)]
			tensor.NarrowF16(h, src[i*kv+c0:i*kv+c0+len(h)])
			for j, x := range h {
				dst[(c0+j)*ctx+p+i] = x
			}
		}
	}
}

// stepLogits advances the caches and writes each step's logits after its
// last row (or its rows), or its greedy next token. The last rows of all
// steps go through the classifier together: one pass over its weights for
// the whole batch, not one per sequence.
func (m *Model) stepLogits(b *inferBuf, steps []Step, pr projector) {
	c, w := m.Config, m.W
	dim := c.Dim
	r, n, g := 0, 0, 0
	b.next = b.next[:0]
	for _, s := range steps {
		if s.Next != nil {
			b.next = append(b.next, s.Next)
		}
	}
	b.xn = grow(b.xn, len(b.next)*dim)
	for _, s := range steps {
		first := r + len(s.Tokens) - 1 // the rows the step wants logits of: its last, or all of them
		if s.AllLogits != nil {
			first = r
		}
		r += len(s.Tokens)
		s.Cache.n += len(s.Tokens)
		switch {
		case s.Next != nil: // greedy rows apart, in b.xn
			rmsnormForward(b.xn[g*dim:(g+1)*dim], nil, b.x[(r-1)*dim:r*dim], w.RmsFinal, dim, c.NormEps)
			g++
		case s.Logits != nil || s.AllLogits != nil:
			for row := first; row < r; row++ {
				rmsnormForward(b.xb[n*dim:(n+1)*dim], nil, b.x[row*dim:(row+1)*dim], w.RmsFinal, dim, c.NormEps)
				n++
			}
		}
	}
	if g > 0 {
		m.classifyGreedy(b, g, pr)
	}
	if n == 0 {
		return
	}
	if n == 1 && steps[0].Logits != nil { // one sequence's next token: straight into its buffer
		m.classifyRows(steps[0].Logits, b.xb[:dim], 1, pr)
		return
	}
	b.logits = grow(b.logits, n*c.Vocab)
	out := b.logits
	m.classifyRows(out, b.xb[:n*dim], n, pr)
	k := 0
	for _, s := range steps {
		switch {
		case s.AllLogits != nil:
			k += copy(s.AllLogits, out[k:k+len(s.AllLogits)])
		case s.Logits != nil:
			k += copy(s.Logits, out[k:k+c.Vocab])
		}
	}
}

// attendCached: for every row, each group of query heads attends over its
// KV head's cached positions 0..pos (causal), writing b.ao (tensor.AttendT on
// the transposed cache). The (row, KV head) items are independent. They are
// split over team when the step has one; without, several rows share them
// out with ParallelFor when they bring enough work to pay for waking a
// helper thread, which one row never does (measured: 2 threads decoded 20%
// slower than 1 with a ParallelFor per layer).
func (m *Model) attendCached(b *inferBuf, steps []Step, l int, team *tensor.Team) {
	// Prompts attend through matrix products, the other rows one by one.
	b.rowCache, b.rows = b.rowCache[:0], b.rows[:0]
	row0 := 0
	for _, s := range steps {
		if m.promptStep(s) {
			m.attendPrompt(b, s, l, row0)
		} else {
			for i := range s.Tokens {
				b.rowCache, b.rows = append(b.rowCache, s.Cache), append(b.rows, int32(row0+i))
			}
		}
		row0 += len(s.Tokens)
	}
	if len(b.rows) == 0 {
		return
	}
	c := m.Config
	qd, kv, hs := c.QDim(), c.KVDim(), c.HeadSize()
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(hs)))
	work := 0
	for _, r := range b.rows {
		work += int(b.pos[r]) + 1
	}
	items := len(b.rows) * c.KVHeads
	items1 := func(att []float32, lo, hi int) {
		for it := lo; it < hi; it++ {
			i, g := it/c.KVHeads, it%c.KVHeads
			r, cache := int(b.rows[i]), b.rowCache[i]
			ctx := cache.ctx
			base := (l*kv + g*hs) * ctx
			n := int(b.pos[r]) + 1 // positions seen
			h0 := r*qd + g*group*hs
			if cache.half {
				tensor.AttendT16(b.ao[h0:h0+group*hs], b.q[h0:h0+group*hs], group, hs,
					cache.hk[base:base+hs*ctx], cache.hv[base:base+hs*ctx], ctx, n, scale, att)
				continue
			}
			tensor.AttendT(b.ao[h0:h0+group*hs], b.q[h0:h0+group*hs], group, hs,
				cache.k[base:base+hs*ctx], cache.v[base:base+hs*ctx], ctx, n, scale, att)
		}
	}
	scratch := tensor.AttendTScratch(group, m.Positions())
	for _, cache := range b.rowCache {
		if cache.half {
			scratch = tensor.AttendT16Scratch(group, hs, m.Positions())
			break
		}
	}
	if team != nil && work >= attendTeamMin {
		b.att = grow(b.att, 2*scratch)
		team.For(items, func(worker, it int) {
			items1(b.att[worker*scratch:(worker+1)*scratch], it, it+1)
		})
		return
	}
	threads := tensor.Threads()
	if threads == 1 || len(b.rows) == 1 || work < attendParMin {
		b.att = grow(b.att, scratch)
		items1(b.att, 0, items)
		return
	}
	// one scratch slot per chunk (ParallelFor makes at most 4 per thread)
	slots := 4*threads + 1
	b.att = grow(b.att, slots*scratch)
	b.slot.Store(0)
	parallelFor(items, 1, func(lo, hi int) {
		s := int(b.slot.Add(1)-1) % slots
		items1(b.att[s*scratch:(s+1)*scratch], lo, hi)
	})
}

// attendParMin is the fewest attended positions (summed over the rows of a
// Forward call) for which attention runs on several threads.
const attendParMin = 512

// attendTeamMin is the fewest positions for which a decoded row's attention
// is split over a Team.
const attendTeamMin = 64
