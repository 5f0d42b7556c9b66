package model

import (
	"fmt"
	"math"
	"sync"
)

// Model is a Llama-2 transformer: token embedding, Layers blocks of
// pre-normed grouped-query attention with RoPE and a SwiGLU MLP, a final
// RMSNorm and a classifier. It is safe for concurrent use as long as its
// weights are not being changed.
type Model struct {
	Config Config
	W      *Params

	ropeCos, ropeSin []float32 // (positions, head_size/2)

	tmu sync.Mutex
	t   *transposed // weights transposed for decoding, built on first use
}

// transposed holds Wᵀ of every matrix a token passes through, (in, out)
// row-major, so that a single row's x·Wᵀ is a sum of scaled rows (no
// horizontal additions), which is what decoding one token needs.
type transposed struct {
	version                    uint64
	wq, wk, wv, wo, w1, w2, w3 []float32
	cls                        []float32
}

// decodeRows is the most rows a Forward call sends through the transposed
// weights; larger calls (prefill) use the blocked matrix product directly.
const decodeRows = 4

func (m *Model) transposedWeights() *transposed {
	m.tmu.Lock()
	defer m.tmu.Unlock()
	v := m.W.version.Load()
	if m.t != nil && m.t.version == v {
		return m.t
	}
	c := m.Config
	d, kv, h := c.Dim, c.KVDim(), c.Hidden
	tr := func(w []float32, rows, cols int) []float32 {
		out := make([]float32, len(w))
		for l := 0; l < len(w)/(rows*cols); l++ {
			src, dst := w[l*rows*cols:(l+1)*rows*cols], out[l*rows*cols:(l+1)*rows*cols]
			for r := 0; r < rows; r++ {
				for k := 0; k < cols; k++ {
					dst[k*rows+r] = src[r*cols+k]
				}
			}
		}
		return out
	}
	t := &transposed{version: v,
		wq: tr(m.W.Wq, d, d), wk: tr(m.W.Wk, kv, d), wv: tr(m.W.Wv, kv, d), wo: tr(m.W.Wo, d, d),
		w1: tr(m.W.W1, h, d), w2: tr(m.W.W2, d, h), w3: tr(m.W.W3, h, d), cls: tr(m.W.classifier(), c.Vocab, d)}
	m.t = t
	return t
}

// New wraps weights p (not copied) of shape c.
func New(c Config, p *Params) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	for _, s := range c.shapes() {
		if got := len(*s.ptr(p)); got != s.size() {
			return nil, fmt.Errorf("tensor %s has %d values, want %d", s.name, got, s.size())
		}
	}
	m := &Model{Config: c, W: p}
	m.setPositions(c.SeqLen)
	return m, nil
}

// Positions is how many positions the model accepts (its trained context).
func (m *Model) Positions() int { return len(m.ropeCos) / (m.Config.HeadSize() / 2) }

// setPositions precomputes the RoPE rotation for n positions. The frequency
// and angle are formed in float32 as llama2.c's run.c does, so greedy decoding
// matches it bit for bit on near-ties.
func (m *Model) setPositions(n int) {
	hs := m.Config.HeadSize()
	half := hs / 2
	m.ropeCos = make([]float32, n*half)
	m.ropeSin = make([]float32, n*half)
	for pos := 0; pos < n; pos++ {
		for i := 0; i < half; i++ {
			freq := float32(1 / math.Pow(float64(m.Config.RopeTheta), float64(float32(2*i)/float32(hs))))
			val := float32(pos) * freq
			m.ropeCos[pos*half+i] = float32(math.Cos(float64(val)))
			m.ropeSin[pos*half+i] = float32(math.Sin(float64(val)))
		}
	}
}

// Clone returns a model with its own copy of the weights.
func (m *Model) Clone() *Model {
	c := &Model{Config: m.Config, W: m.W.Clone(m.Config), ropeCos: m.ropeCos, ropeSin: m.ropeSin}
	return c
}
