package model

import (
	"errors"
	"fmt"
	"slices"

	"fspo/tensor"
)

// Weights in a reduced type. A model whose DType is not F32 keeps its large
// matrices (embedding, attention and MLP projections, classifier) only in that
// type — F16, BF16 or Q8_0 — and multiplies them with F32 activations and F32
// accumulation; norms, biases and everything it computes stay F32. Such a model
// runs inference (Forward, Generate, Score) but cannot be trained or saved as
// F32: training keeps F32 master weights.

// qweights holds the large matrices of a model in one storage type.
type qweights struct {
	dtype                      tensor.DType
	wq, wk, wv, wo, w1, w2, w3 []*tensor.QMatrix // by layer
	emb, cls                   *tensor.QMatrix   // the same matrix when the classifier is shared
	fallback                   []string          // matrices kept in F16 because Q8_0 cannot hold them
}

// ErrReducedWeights is returned where F32 weights are needed (training,
// saving) but the model keeps its matrices in a reduced type.
var ErrReducedWeights = errors.New("the model's weights are held in a reduced type; training and saving need f32 (load it with --dtype f32)")

// DType is the type the model's large matrices are held in.
func (m *Model) DType() tensor.DType {
	if m.q == nil {
		return tensor.F32
	}
	return m.q.dtype
}

// Fallbacks names the matrices SetDType(Q8_0) kept in F16 because their rows
// are not a multiple of 32 long (Q8_0's block).
func (m *Model) Fallbacks() []string {
	if m.q == nil {
		return nil
	}
	return m.q.fallback
}

// SetDType converts the model's large matrices to dt and releases their F32
// copies (dt F32 on a model already in F32 does nothing; a reduced model
// cannot go back to F32). Values F16 cannot hold fail the conversion and
// leave the model unchanged. Not safe while the model is in use.
func (m *Model) SetDType(dt tensor.DType) error {
	if dt == m.DType() {
		return nil
	}
	if m.q != nil {
		return fmt.Errorf("model is held in %s; it cannot be converted to %s (load it again)", m.q.dtype, dt)
	}
	if m.adapter != nil {
		return errors.New("model has an attached adapter; merge it before converting the weights")
	}
	c, w := m.Config, m.W
	d, qd, kv, h := c.Dim, c.QDim(), c.KVDim(), c.Hidden
	q := &qweights{dtype: dt}
	conv := func(name string, data []float32, rows, cols int) (*tensor.QMatrix, error) {
		t, fellBack := MatrixType(dt, cols)
		if fellBack {
			q.fallback = append(q.fallback, name)
		}
		qm, err := tensor.Quantize(t, data, rows, cols)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		return qm, nil
	}
	stack := func(name string, data []float32, rows, cols int) ([]*tensor.QMatrix, error) {
		out := make([]*tensor.QMatrix, c.Layers)
		for l := range out {
			var err error
			if out[l], err = conv(fmt.Sprintf("layers.%d.%s", l, name), layer(data, l, rows*cols), rows, cols); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	var err error
	for _, s := range []struct {
		name       string
		dst        *[]*tensor.QMatrix
		data       []float32
		rows, cols int
	}{{"wq", &q.wq, w.Wq, qd, d}, {"wk", &q.wk, w.Wk, kv, d}, {"wv", &q.wv, w.Wv, kv, d}, {"wo", &q.wo, w.Wo, d, qd},
		{"w1", &q.w1, w.W1, h, d}, {"w2", &q.w2, w.W2, d, h}, {"w3", &q.w3, w.W3, h, d}} {
		if *s.dst, err = stack(s.name, s.data, s.rows, s.cols); err != nil {
			return err
		}
	}
	if q.emb, err = conv("emb", w.Emb, c.Vocab, d); err != nil {
		return err
	}
	q.cls = q.emb
	if w.Wcls != nil {
		if q.cls, err = conv("wcls", w.Wcls, c.Vocab, d); err != nil {
			return err
		}
	}
	m.q = q
	w.Emb, w.Wq, w.Wk, w.Wv, w.Wo, w.W1, w.W2, w.W3, w.Wcls = nil, nil, nil, nil, nil, nil, nil, nil, nil
	// The small tensors (norms, biases) move out of NewParams' single block,
	// so that the block, with the F32 matrices in it, can be freed.
	for _, s := range c.shapes() {
		if t := s.ptr(w); *t != nil {
			*t = slices.Clone(*t)
		}
	}
	m.tmu.Lock()
	m.t, m.qt = nil, nil
	m.tmu.Unlock()
	return nil
}

// WeightBytes is the memory the model's weights take in their current types.
func (m *Model) WeightBytes() int64 {
	var n int64
	for _, t := range m.W.Tensors(m.Config) {
		n += 4 * int64(len(t.Data))
	}
	if q := m.q; q != nil {
		for _, set := range [][]*tensor.QMatrix{q.wq, q.wk, q.wv, q.wo, q.w1, q.w2, q.w3} {
			for _, qm := range set {
				n += qm.Bytes()
			}
		}
		n += q.emb.Bytes()
		if q.cls != q.emb {
			n += q.cls.Bytes()
		}
	}
	return n
}

// Matrices a projection can name.
const (
	projQ = iota
	projK
	projV
	projO
	projGate
	projDown
	projUp
)

// matrices are the weights as QMatrix values the projection uses: the
// model's reduced ones, else the F32 views pr carries (decoding), else nil.
func (pr projector) matrices(m *Model) *qweights {
	if m.q != nil {
		return m.q
	}
	return pr.q
}

// rowDecodeDim is the narrowest model whose F32 decoding multiplies row by
// row (QMatrix views of the weights, split over the sequence's team) instead
// of through the transposed copy. Measured: a 576-wide 180M model decoded
// 14 tok/s through the transposed copy on 1 and on 2 threads; stories260K
// (64 wide) is faster through the copy, whose summation order also keeps its
// greedy text byte for byte llama2.c's.
const rowDecodeDim = 256

// f32Views wraps the F32 matrices as QMatrix views (no copy), once per
// weight version.
func (m *Model) f32Views() *qweights {
	m.tmu.Lock()
	defer m.tmu.Unlock()
	v := m.W.version.Load()
	if m.views != nil && m.viewsVersion == v {
		return m.views
	}
	c, w := m.Config, m.W
	d, qd, kv, h := c.Dim, c.QDim(), c.KVDim(), c.Hidden
	stack := func(data []float32, rows, cols int) []*tensor.QMatrix {
		out := make([]*tensor.QMatrix, c.Layers)
		for l := range out {
			out[l] = tensor.F32Matrix(layer(data, l, rows*cols), rows, cols)
		}
		return out
	}
	q := &qweights{dtype: tensor.F32, wq: stack(w.Wq, qd, d), wk: stack(w.Wk, kv, d), wv: stack(w.Wv, kv, d), wo: stack(w.Wo, d, qd),
		w1: stack(w.W1, h, d), w2: stack(w.W2, d, h), w3: stack(w.W3, h, d), cls: tensor.F32Matrix(w.classifier(), c.Vocab, d)}
	m.views, m.viewsVersion = q, v
	return q
}

// project: y (M, out) = x (M, in) · W[l]ᵀ + beta·y for matrix which of
// layer l, from the reduced weights when the model has them (split over
// pr.team when it is set), else from the F32 weights (through their
// transposed copy pr.t when it is set, for a few rows).
func (m *Model) project(which, l int, y, x []float32, M int, beta float32, pr projector) {
	if q := pr.matrices(m); q != nil {
		qm := [...][]*tensor.QMatrix{q.wq, q.wk, q.wv, q.wo, q.w1, q.w2, q.w3}[which][l]
		qm.MulTOn(pr.team, y, x, M, beta)
		return
	}
	wl, in, out := m.f32Layer(which, l)
	if t := pr.t; t != nil {
		n := in * out
		wt := [...][]float32{t.wq, t.wk, t.wv, t.wo, t.w1, t.w2, t.w3}[which]
		gemm(false, false, M, out, in, x, in, wt[l*n:(l+1)*n], out, beta, y, out)
		return
	}
	gemm(false, true, M, out, in, x, in, wl, in, beta, y, out)
}

// f32Layer is layer l's F32 matrix which (out, in), with its sizes.
func (m *Model) f32Layer(which, l int) (wl []float32, in, out int) {
	w := m.W
	in, out = m.Config.projDims(which)
	wl = [...][]float32{projQ: w.Wq, projK: w.Wk, projV: w.Wv, projO: w.Wo, projGate: w.W1, projDown: w.W2, projUp: w.W3}[which]
	n := in * out
	return wl[l*n : (l+1)*n], in, out
}

// projDims are the sizes of matrix which: (out, in).
func (c Config) projDims(which int) (in, out int) {
	d, qd, kv, h := c.Dim, c.QDim(), c.KVDim(), c.Hidden
	in = [...]int{projQ: d, projK: d, projV: d, projO: qd, projGate: d, projDown: h, projUp: d}[which]
	out = [...]int{projQ: qd, projK: kv, projV: kv, projO: d, projGate: h, projDown: d, projUp: h}[which]
	return in, out
}

// classifyRows: logits (M, vocab) = x (M, dim) · classifierᵀ.
func (m *Model) classifyRows(logits, x []float32, M int, pr projector) {
	c := m.Config
	switch q := pr.matrices(m); {
	case q != nil:
		q.cls.MulTOn(pr.team, logits, x, M, 0)
	case pr.t != nil:
		gemm(false, false, M, c.Vocab, c.Dim, x, c.Dim, pr.t.cls, c.Vocab, 0, logits, c.Vocab)
	default:
		linear(logits, x, m.W.classifier(), M, c.Dim, c.Vocab)
	}
}

// embedRow writes token t's embedding into dst[:dim].
func (m *Model) embedRow(dst []float32, t int) {
	dim := m.Config.Dim
	if m.q != nil {
		m.q.emb.Row(t, dst[:dim])
		return
	}
	copy(dst[:dim], m.W.Emb[t*dim:(t+1)*dim])
}

// Reduced are a model's large matrices held in one reduced type, for
// NewReduced: a slice per layer for the projections, and the embedding and
// (unless the classifier is shared) the classifier. Fallback names the
// matrices kept in F16 where Q8_0 could not hold them.
type Reduced struct {
	DType                      tensor.DType
	Wq, Wk, Wv, Wo, W1, W2, W3 []*tensor.QMatrix
	Emb, Wcls                  *tensor.QMatrix
	Fallback                   []string
}

// Add places a large matrix as a loader reads it: field is its Params
// field's name in Tensors (emb, wq, wk, wv, wo, w1, w2, w3, wcls; the
// per-layer ones in layer order), name the file's name for it, recorded in
// Fallback when the matrix was kept in F16 (fellBack).
func (r *Reduced) Add(field, name string, qm *tensor.QMatrix, fellBack bool) error {
	layered := map[string]*[]*tensor.QMatrix{"wq": &r.Wq, "wk": &r.Wk, "wv": &r.Wv, "wo": &r.Wo, "w1": &r.W1, "w2": &r.W2, "w3": &r.W3}
	switch {
	case field == "emb":
		r.Emb = qm
	case field == "wcls":
		r.Wcls = qm
	case layered[field] != nil:
		*layered[field] = append(*layered[field], qm)
	default:
		return fmt.Errorf("tensor %s: no place for it in a reduced model", name)
	}
	if fellBack {
		r.Fallback = append(r.Fallback, name)
	}
	return nil
}

// IsLarge tells whether the tensor named name (a Params field's name in
// Tensors: emb, wq, …, wcls) is one of the large matrices a reduced model
// keeps in its reduced type.
func IsLarge(name string) bool {
	switch name {
	case "emb", "wq", "wk", "wv", "wo", "w1", "w2", "w3", "wcls":
		return true
	}
	return false
}

// NewSmallParams allocates the small tensors of c (norms and biases) and
// none of the large ones, for NewReduced.
func NewSmallParams(c Config) *Params {
	p := &Params{}
	for _, s := range c.shapes() {
		if !IsLarge(s.name) {
			*s.ptr(p) = make([]float32, s.size())
		}
	}
	return p
}

// NewReduced makes a model of shape c whose large matrices are r (not
// copied) and whose small tensors are p's (p's large matrices must be nil):
// a model loaded in a reduced type without an F32 copy of its weights.
func NewReduced(c Config, p *Params, r Reduced) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if r.DType == tensor.F32 {
		return nil, errors.New("NewReduced: F32 matrices belong in Params (New)")
	}
	for _, s := range c.shapes() {
		if got, want := len(*s.ptr(p)), s.size(); IsLarge(s.name) && got != 0 || !IsLarge(s.name) && got != want {
			return nil, fmt.Errorf("NewReduced: tensor %s has %d values in Params", s.name, got)
		}
	}
	d, qd, kv, h := c.Dim, c.QDim(), c.KVDim(), c.Hidden
	check := func(name string, qm *tensor.QMatrix, rows, cols int) error {
		switch {
		case qm == nil:
			return fmt.Errorf("NewReduced: matrix %s is missing", name)
		case qm.Rows != rows || qm.Cols != cols:
			return fmt.Errorf("NewReduced: matrix %s is %d×%d, the config wants %d×%d", name, qm.Rows, qm.Cols, rows, cols)
		case qm.DType != r.DType && !(qm.DType == tensor.F16 && r.DType == tensor.Q8_0):
			return fmt.Errorf("NewReduced: matrix %s is %s in a %s model", name, qm.DType, r.DType)
		}
		return nil
	}
	for _, s := range []struct {
		name       string
		ms         []*tensor.QMatrix
		rows, cols int
	}{{"wq", r.Wq, qd, d}, {"wk", r.Wk, kv, d}, {"wv", r.Wv, kv, d}, {"wo", r.Wo, d, qd},
		{"w1", r.W1, h, d}, {"w2", r.W2, d, h}, {"w3", r.W3, h, d}} {
		if len(s.ms) != c.Layers {
			return nil, fmt.Errorf("NewReduced: %d %s matrices for %d layers", len(s.ms), s.name, c.Layers)
		}
		for l, qm := range s.ms {
			if err := check(fmt.Sprintf("layers.%d.%s", l, s.name), qm, s.rows, s.cols); err != nil {
				return nil, err
			}
		}
	}
	if err := check("emb", r.Emb, c.Vocab, d); err != nil {
		return nil, err
	}
	cls := r.Emb
	if !c.SharedClassifier {
		if err := check("wcls", r.Wcls, c.Vocab, d); err != nil {
			return nil, err
		}
		cls = r.Wcls
	}
	m := &Model{Config: c, W: p, q: &qweights{dtype: r.DType, wq: r.Wq, wk: r.Wk, wv: r.Wv, wo: r.Wo, w1: r.W1, w2: r.W2, w3: r.W3,
		emb: r.Emb, cls: cls, fallback: r.Fallback}}
	m.ropeCos, m.ropeSin = ropeTables(c, min(c.SeqLen, DefaultContext))
	return m, nil
}

// MatrixType is the type a model held in dt keeps a matrix with rows cols
// long in: dt, except F16 where Q8_0 cannot hold the rows (not a multiple
// of 32 long: fellBack).
func MatrixType(dt tensor.DType, cols int) (t tensor.DType, fellBack bool) {
	if dt == tensor.Q8_0 && cols%tensor.Q8Block != 0 {
		return tensor.F16, true
	}
	return dt, false
}

// HalfRows wraps F16 or BF16 bits, as a file stores a (rows, cols) matrix,
// for a reduced model: checked finite, and each head of hs rows permuted
// from the half RoPE layout when hs > 0.
func HalfRows(dt tensor.DType, h []uint16, rows, cols, hs int) (*tensor.QMatrix, error) {
	if err := tensor.CheckHalfFinite(dt, h); err != nil {
		return nil, err
	}
	if hs > 0 {
		HalfToInterleavedRows(h, hs, cols)
	}
	return tensor.HalfMatrix(dt, h, rows, cols)
}

// ConvertRows builds a (rows, cols) matrix in dt for a reduced model from
// F32 rows that read puts into dst from row r0 on, about step rows at a time
// (whole heads of hs rows, each permuted from the half RoPE layout when
// hs > 0), converted as SetDType converts.
func ConvertRows(dt tensor.DType, rows, cols, hs, step int, read func(r0 int, dst []float32) error) (*tensor.QMatrix, error) {
	if hs > 0 {
		step = hs * max(1, step/hs)
	}
	qm, err := tensor.NewQMatrix(dt, rows, cols)
	if err != nil {
		return nil, err
	}
	buf := make([]float32, min(step, rows)*cols)
	for r0 := 0; r0 < rows; r0 += step {
		x := buf[:min(step, rows-r0)*cols]
		if err := read(r0, x); err != nil {
			return nil, err
		}
		if hs > 0 {
			HalfToInterleaved(x, hs, cols)
		}
		if err := qm.SetRows(r0, x); err != nil {
			return nil, err
		}
	}
	return qm, nil
}
