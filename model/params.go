package model

import (
	"fmt"
	"math"
	"sync/atomic"

	"fspo/tensor"
)

// Params holds every weight (or, for a gradient, every weight's gradient) as
// flat row-major arrays, layers stacked along the first axis. Matrices are
// (out_features, in_features), as in llama2.c and PyTorch.
type Params struct {
	Emb      []float32 // (vocab, dim)
	RmsAtt   []float32 // (layers, dim)
	Wq       []float32 // (layers, q_dim, dim)
	Wk       []float32 // (layers, kv_dim, dim)
	Wv       []float32 // (layers, kv_dim, dim)
	Wo       []float32 // (layers, dim, q_dim)
	RmsFfn   []float32 // (layers, dim)
	W1       []float32 // (layers, hidden, dim)  gate
	W2       []float32 // (layers, dim, hidden)  down
	W3       []float32 // (layers, hidden, dim)  up
	RmsFinal []float32 // (dim)
	Wcls     []float32 // (vocab, dim); nil when the classifier shares Emb

	Bq, Bk, Bv   []float32 // (layers, q_dim), (layers, kv_dim) ×2; nil unless Config.QKVBias
	QNorm, KNorm []float32 // (layers, head_size) each; nil unless Config.QKNorm

	// version counts in-place changes (Changed), so derived copies of the
	// weights (the transposed matrices decoding uses) know when to refresh.
	version atomic.Uint64
}

// Changed records that the values were modified in place (an optimizer step).
func (p *Params) Changed() { p.version.Add(1) }

type shape struct {
	name string
	dims []int
	ptr  func(p *Params) *[]float32
}

func (s shape) size() int { return tensor.Numel(s.dims) }

// shapes lists the tensors in llama2.c file order (the RoPE tables aside).
func (c Config) shapes() []shape {
	L, d, q, kv, h := c.Layers, c.Dim, c.QDim(), c.KVDim(), c.Hidden
	s := []shape{
		{"emb", []int{c.Vocab, d}, func(p *Params) *[]float32 { return &p.Emb }},
		{"rms_att", []int{L, d}, func(p *Params) *[]float32 { return &p.RmsAtt }},
		{"wq", []int{L, q, d}, func(p *Params) *[]float32 { return &p.Wq }},
		{"wk", []int{L, kv, d}, func(p *Params) *[]float32 { return &p.Wk }},
		{"wv", []int{L, kv, d}, func(p *Params) *[]float32 { return &p.Wv }},
		{"wo", []int{L, d, q}, func(p *Params) *[]float32 { return &p.Wo }},
		{"rms_ffn", []int{L, d}, func(p *Params) *[]float32 { return &p.RmsFfn }},
		{"w1", []int{L, h, d}, func(p *Params) *[]float32 { return &p.W1 }},
		{"w2", []int{L, d, h}, func(p *Params) *[]float32 { return &p.W2 }},
		{"w3", []int{L, h, d}, func(p *Params) *[]float32 { return &p.W3 }},
		{"rms_final", []int{d}, func(p *Params) *[]float32 { return &p.RmsFinal }},
	}
	if !c.SharedClassifier {
		s = append(s, shape{"wcls", []int{c.Vocab, d}, func(p *Params) *[]float32 { return &p.Wcls }})
	}
	if c.QKVBias {
		s = append(s,
			shape{"bq", []int{L, q}, func(p *Params) *[]float32 { return &p.Bq }},
			shape{"bk", []int{L, kv}, func(p *Params) *[]float32 { return &p.Bk }},
			shape{"bv", []int{L, kv}, func(p *Params) *[]float32 { return &p.Bv }})
	}
	if c.QKNorm {
		hs := c.HeadSize()
		s = append(s,
			shape{"q_norm", []int{L, hs}, func(p *Params) *[]float32 { return &p.QNorm }},
			shape{"k_norm", []int{L, hs}, func(p *Params) *[]float32 { return &p.KNorm }})
	}
	return s
}

// NewParams allocates zeroed parameters (or gradients) for c, in one block.
func NewParams(c Config) *Params {
	p := &Params{}
	block := tensor.MakeHuge[float32](c.NumParams())
	off := 0
	for _, s := range c.shapes() {
		n := s.size()
		*s.ptr(p) = block[off : off+n : off+n]
		off += n
	}
	return p
}

// Tensors returns the named tensors of p (sharing memory with p), in file order.
func (p *Params) Tensors(c Config) []tensor.Tensor {
	var out []tensor.Tensor
	for _, s := range c.shapes() {
		out = append(out, tensor.Tensor{Name: s.name, Shape: s.dims, Data: *s.ptr(p)})
	}
	return out
}

// SetTensors copies named tensors into p, checking names and shapes.
func (p *Params) SetTensors(c Config, ts []tensor.Tensor) error {
	byName := map[string]tensor.Tensor{}
	for _, t := range ts {
		byName[t.Name] = t
	}
	for _, s := range c.shapes() {
		t, ok := byName[s.name]
		if !ok {
			return fmt.Errorf("tensor %s: missing", s.name)
		}
		if len(t.Data) != s.size() {
			return fmt.Errorf("tensor %s: has %d values, the config wants %v = %d", s.name, len(t.Data), s.dims, s.size())
		}
		copy(*s.ptr(p), t.Data)
		delete(byName, s.name)
		p.Changed()
	}
	for name := range byName {
		return fmt.Errorf("tensor %s: not part of this model", name)
	}
	return nil
}

// Zero sets every value to 0 (used to clear gradients), a large tensor on
// every thread.
func (p *Params) Zero(c Config) {
	for _, t := range p.Tensors(c) {
		d := t.Data
		tensor.ParallelFor(len(d), 1<<18, func(lo, hi int) { clear(d[lo:hi]) })
	}
}

// Clone deep-copies p.
func (p *Params) Clone(c Config) *Params {
	q := NewParams(c)
	for i, t := range q.Tensors(c) {
		copy(t.Data, p.Tensors(c)[i].Data)
	}
	return q
}

// CheckFinite reports the first NaN or infinite weight.
func (p *Params) CheckFinite(c Config) error {
	for _, t := range p.Tensors(c) {
		for i, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("tensor %s: value %d is %v", t.Name, i, v)
			}
		}
	}
	return nil
}

// classifier returns the output matrix (vocab, dim).
func (p *Params) classifier() []float32 {
	if p.Wcls != nil {
		return p.Wcls
	}
	return p.Emb
}

func layer(w []float32, l, size int) []float32 { return w[l*size : (l+1)*size] }

// vectorNames are the tensors that hold a vector per layer (norm weights,
// biases), stacked (layers, n): two dimensions, but no matrix.
var vectorNames = map[string]bool{"rms_att": true, "rms_ffn": true, "rms_final": true, "bq": true, "bk": true, "bv": true, "q_norm": true, "k_norm": true}

// Decays reports whether weight decay applies to t: to matrices (the
// embedding, classifier, projections and adapter factors), not to norm
// weights and biases — the rule of the usual AdamW parameter groups, which
// hold each layer's vectors as 1-D tensors.
func Decays(t tensor.Tensor) bool { return len(t.Shape) >= 2 && !vectorNames[t.Name] }
