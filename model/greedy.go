package model

import (
	"sync/atomic"

	"fspo/tensor"
)

// Greedy steps (Step.Next) want the largest logit, not the logits. Over a
// large vocabulary the classifier is much of what a decoded token reads —
// 74M of a 180M model's weights with Llama 3's 128,256 tokens — so for an
// F32, F16 or BF16 classifier a greedy step reads its tensor.Screen (a
// Q8_0 copy with per-row error bounds, built on first use) and rescores
// only the rows the copy cannot rule out, with the kernel MulT uses: the
// same token as the argmax of the whole logits, bit for bit. A step of
// more than tensor.ScreenRows greedy rows (a large batch, which would read
// the copy once for every six rows), a Q8_0 classifier, a small vocabulary
// or a model decoding through its transposed F32 copy computes the logits
// and takes their argmax.

// screenVocab is the smallest vocabulary whose classifier is screened: a
// llama2.c model's 512 or 32,000 tokens cost little either way, and their
// greedy texts are checked against llama2.c's token for token.
const screenVocab = 32768

// screenStats counts the greedy rows decoded through a screen: its rows,
// the classifier rows rescored, the rows that fell back to the whole
// classifier. Read by tests and benchmarks (ScreenStats).
var screenStats struct{ rows, exact, whole atomic.Int64 }

// ScreenStats reports the greedy rows decoded through a classifier screen
// so far, the classifier rows they multiplied exactly, and the rows that
// multiplied all of them (non-finite activations).
func ScreenStats() (rows, exact, whole int64) {
	return screenStats.rows.Load(), screenStats.exact.Load(), screenStats.whole.Load()
}

// classifyGreedy sets *b.next[i] to the argmax of the logits of b.xn's row
// i (g rows).
func (m *Model) classifyGreedy(b *inferBuf, g int, pr projector) {
	c := m.Config
	b.best = append(b.best[:0], make([]int, g)...)
	if s := m.screen(pr); s != nil && g <= tensor.ScreenRows {
		var st tensor.ScreenStats
		s.Argmax(pr.team, b.best, b.xn[:g*c.Dim], g, &b.screen, &st)
		screenStats.rows.Add(int64(st.Rows))
		screenStats.exact.Add(int64(st.Exact))
		screenStats.whole.Add(int64(st.Whole))
	} else {
		b.logits = grow(b.logits, g*c.Vocab)
		m.classifyRows(b.logits, b.xn[:g*c.Dim], g, pr)
		for i := range g {
			b.best[i] = tensor.Argmax(b.logits[i*c.Vocab : (i+1)*c.Vocab])
		}
	}
	for i, p := range b.next {
		*p = b.best[i]
	}
	clear(b.next) // the pooled buffer keeps no caller's memory alive
}

// screen is the screen of the classifier pr multiplies by, or nil where
// greedy steps compute the logits: a classifier in Q8_0 already, a small
// vocabulary, or no QMatrix (the transposed copy) — and where NewScreen
// refuses the classifier (a value that is not finite). Built once per
// classifier matrix: a reduced model's in the background from the first
// greedy step on (half a second of one core for a 180M model's classifier,
// 2.4 s for a 1B one's; the steps meanwhile compute the logits), F32
// weights' on the spot, since they may change once the call returns
// (training; their views, and so the screen, are rebuilt after a change).
func (m *Model) screen(pr projector) *tensor.Screen {
	q := m.screenable(pr)
	if q == nil {
		return nil
	}
	m.tmu.Lock()
	defer m.tmu.Unlock()
	if m.scrOf == q.cls {
		return m.scr
	}
	m.scrOf, m.scr = q.cls, nil
	if m.q == nil {
		m.scr, _ = tensor.NewScreen(q.cls)
		return m.scr
	}
	m.scrBuild.Add(1)
	go func() {
		defer m.scrBuild.Done()
		s, err := tensor.NewScreen(q.cls)
		m.tmu.Lock()
		defer m.tmu.Unlock()
		if err == nil && m.scrOf == q.cls {
			m.scr = s
		}
	}()
	return nil
}

// screenable is the matrices whose classifier greedy steps screen, or nil.
func (m *Model) screenable(pr projector) *qweights {
	q := pr.matrices(m)
	if q == nil || m.noScreen || q.cls.DType == tensor.Q8_0 || m.Config.Vocab < screenVocab || m.Config.Dim%tensor.Q8Block != 0 {
		return nil
	}
	return q
}

// SetClassifierScreen turns the classifier's screen for greedy steps on
// (the default) or off (greedy steps then compute the whole logits): for
// measuring what it saves, and for a model decoded so rarely that the
// screen's memory (a Q8_0 copy of the classifier) is not worth it.
func (m *Model) SetClassifierScreen(on bool) {
	m.tmu.Lock()
	defer m.tmu.Unlock()
	m.noScreen = !on
	if !on {
		m.scr, m.scrOf = nil, nil
	}
}

// PrepareClassifierScreen builds the screen greedy decoding reads now (one
// decoded row's matrices, as a sequence alone decodes) and waits for it,
// so that a benchmark or a server's first greedy tokens do not run while
// it is being built. It does nothing where greedy steps compute the logits.
func (m *Model) PrepareClassifierScreen() {
	pr := projector{M: 1}
	if m.q == nil && m.Config.Dim >= rowDecodeDim {
		pr.q = m.f32Views()
	}
	m.screen(pr)
	m.scrBuild.Wait()
}
