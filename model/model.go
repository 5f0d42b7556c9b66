package model

import (
	"fmt"
	"math"
)

// Model is a Llama-2 transformer: token embedding, Layers blocks of
// pre-normed grouped-query attention with RoPE and a SwiGLU MLP, a final
// RMSNorm and a classifier. It is safe for concurrent use as long as its
// weights are not being changed.
type Model struct {
	Config Config
	W      *Params

	ropeCos, ropeSin []float32 // (positions, head_size/2)
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
	c := *m
	c.W = m.W.Clone(m.Config)
	return &c
}
