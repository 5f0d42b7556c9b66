package model

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"fspo/tensor"
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

	q  *qweights // the large matrices in a reduced type (SetDType), or nil
	qt *qweights // q's matrices transposed, for input gradients over a frozen reduced base (reducedT)

	views        *qweights // F32 matrices as QMatrix views, for decoding wide models
	viewsVersion uint64

	scr      *tensor.Screen  // the classifier's screen for greedy steps (greedy.go), or nil
	scrOf    *tensor.QMatrix // the classifier matrix scr was built for
	noScreen bool            // SetClassifierScreen(false)
	scrBuild sync.WaitGroup  // screens being built

	adapter   *LoRA         // attached adapter (Attach), or nil
	adapterAt []*LoRATensor // its tensors by layer*len(LoRATargets)+target

	kvHalf bool // caches store keys and values as halves (SetKVCache)
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
	d, qd, kv, h := c.Dim, c.QDim(), c.KVDim(), c.Hidden
	tr := func(w []float32, rows, cols int) []float32 {
		out := tensor.MakeHuge[float32](len(w))
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
		wq: tr(m.W.Wq, qd, d), wk: tr(m.W.Wk, kv, d), wv: tr(m.W.Wv, kv, d), wo: tr(m.W.Wo, d, qd),
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
	m.ropeCos, m.ropeSin = ropeTables(c, min(c.SeqLen, DefaultContext))
	return m, nil
}

// DefaultContext is the most positions New prepares a model for. Real models
// declare contexts up to 131072 positions; RoPE tables and KV caches sized for
// all of them would cost gigabytes that few uses need, so a longer context is
// asked for explicitly with SetContext.
const DefaultContext = 8192

// Positions is how many positions the model accepts: its trained context,
// or DefaultContext / the SetContext limit when that is smaller.
func (m *Model) Positions() int { return len(m.ropeCos) / (m.Config.HeadSize() / 2) }

// SetContext makes the model accept n positions (at most Config.SeqLen).
// Caches made before keep their size. Not safe while the model is in use.
func (m *Model) SetContext(n int) error {
	if n <= 0 || n > m.Config.SeqLen {
		return fmt.Errorf("context %d: must be in 1..%d (the model's max positions)", n, m.Config.SeqLen)
	}
	m.ropeCos, m.ropeSin = ropeTables(m.Config, n)
	return nil
}

// ropeTables precomputes the RoPE rotation (cos, sin) for n positions,
// (positions, head_size/2) each. Without rope scaling the frequency and angle
// are formed in float32 as llama2.c's run.c does, so greedy decoding matches
// it bit for bit on near-ties.
func ropeTables(c Config, n int) (cos, sin []float32) {
	hs := c.HeadSize()
	half := hs / 2
	freqs := make([]float32, half)
	for i := range freqs {
		if c.RopeScaling == nil {
			freqs[i] = float32(1 / math.Pow(float64(c.RopeTheta), float64(float32(2*i)/float32(hs))))
		} else {
			freqs[i] = float32(llama3Freq(1/math.Pow(float64(c.RopeTheta), float64(2*i)/float64(hs)), c.RopeScaling))
		}
	}
	cos, sin = make([]float32, n*half), make([]float32, n*half)
	for pos := 0; pos < n; pos++ {
		for i, freq := range freqs {
			val := float32(pos) * freq
			cos[pos*half+i] = float32(math.Cos(float64(val)))
			sin[pos*half+i] = float32(math.Sin(float64(val)))
		}
	}
	return cos, sin
}

// llama3Freq is Llama 3.1's frequency scaling (Hugging Face's
// _compute_llama3_parameters): with wavelength λ = 2π/f, f is divided by
// Factor when λ > orig/LowFreqFactor, kept when λ < orig/HighFreqFactor, and
// in between mixed as (1−s)·f/Factor + s·f, s = (orig/λ − low)/(high − low).
func llama3Freq(f float64, rs *RopeScaling) float64 {
	orig := float64(rs.OriginalMaxPositions)
	wavelen := 2 * math.Pi / f
	switch {
	case wavelen > orig/rs.LowFreqFactor:
		return f / rs.Factor
	case wavelen < orig/rs.HighFreqFactor:
		return f
	}
	s := (orig/wavelen - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
	return (1-s)*f/rs.Factor + s*f
}

// Clone returns a model with its own copy of the weights (the matrices of a
// reduced-type model, which never change, are shared).
func (m *Model) Clone() *Model {
	c := &Model{Config: m.Config, ropeCos: m.ropeCos, ropeSin: m.ropeSin, q: m.q}
	if m.q == nil {
		c.W = m.W.Clone(m.Config)
		return c
	}
	c.W = &Params{}
	for _, s := range m.Config.shapes() {
		*s.ptr(c.W) = slices.Clone(*s.ptr(m.W))
	}
	return c
}
