package model

import (
	"fmt"

	"fspo/tensor"
)

// A frozen base in a reduced type. An adapter (LoRA) can be trained over a
// model whose large matrices are held in F16, BF16 or Q8_0 (SetDType): the
// forward products run on the reduced matrices as inference does (BF16
// through the AVX-512 BF16 tiles, activations rounded to BF16 as they enter
// them), and the input gradients dy·W run on the same values transposed —
// a copy made once, by the first backward pass, in the matrix's own type
// (F16 and BF16 hold their values again exactly) or in F32 for Q8_0 (whose
// values F32 holds exactly). The adapter, the norms and everything else
// stay F32. Dequantize gives the model its F32 weights back — the values
// the reduced matrices hold — so that a trained adapter can be merged.

// reducedT is m.q transposed (each matrix (in, out)), built on first use.
func (m *Model) reducedT() *qweights {
	m.tmu.Lock()
	defer m.tmu.Unlock()
	if m.qt != nil {
		return m.qt
	}
	q := m.q
	t := &qweights{dtype: q.dtype}
	for _, set := range []struct{ from, to *[]*tensor.QMatrix }{
		{&q.wq, &t.wq}, {&q.wk, &t.wk}, {&q.wv, &t.wv}, {&q.wo, &t.wo}, {&q.w1, &t.w1}, {&q.w2, &t.w2}, {&q.w3, &t.w3}} {
		*set.to = make([]*tensor.QMatrix, len(*set.from))
		for l, qm := range *set.from {
			(*set.to)[l] = transposeQ(qm)
		}
	}
	t.cls = transposeQ(q.cls)
	m.qt = t
	return t
}

// transposeQ is qm's matrix transposed, in qm's type (F32 for Q8_0).
func transposeQ(qm *tensor.QMatrix) *tensor.QMatrix {
	rows, cols := qm.Rows, qm.Cols
	wt := tensor.MakeHuge[float32](rows * cols) // huge pages: far fewer faults as it is first written
	// 16 rows at a time, so that each column's 16 values are written as
	// one cache line; blocks of rows in parallel
	const b = 16
	parallelFor((rows+b-1)/b, 4, func(lo, hi int) {
		buf := make([]float32, b*cols)
		for i0 := lo * b; i0 < min(hi*b, rows); i0 += b {
			n := min(b, rows-i0)
			for i := range n {
				qm.Row(i0+i, buf[i*cols:(i+1)*cols])
			}
			for j := range cols {
				dst := wt[j*rows+i0:][:n]
				for i := range dst {
					dst[i] = buf[i*cols+j]
				}
			}
		}
	})
	if qm.DType == tensor.Q8_0 || qm.DType == tensor.F32 {
		return tensor.F32Matrix(wt, cols, rows)
	}
	out, err := tensor.Quantize(qm.DType, wt, cols, rows)
	if err != nil { // the values came from a matrix of this type
		panic(fmt.Sprintf("transpose a %s matrix: %v", qm.DType, err))
	}
	return out
}

// reducedInputGrad adds dy (M, out) · W to dx (M, in) for matrix which of
// layer l (W: (out, in)) of a reduced model, from the transposed copy.
func (m *Model) reducedInputGrad(which, l int, dx, dy []float32, M int) {
	t := m.reducedT()
	[...][]*tensor.QMatrix{t.wq, t.wk, t.wv, t.wo, t.w1, t.w2, t.w3}[which][l].MulT(dx, dy, M, 1)
}

// Dequantize gives a model held in a reduced type F32 weights again: the
// values its matrices hold, widened (exactly). It does nothing to an F32
// model. Not safe while the model is in use.
func (m *Model) Dequantize() {
	q := m.q
	if q == nil {
		return
	}
	c, w := m.Config, m.W
	widen := func(set ...*tensor.QMatrix) []float32 {
		n := 0
		for _, qm := range set {
			n += qm.Rows * qm.Cols
		}
		out, at := tensor.MakeHuge[float32](n), 0
		for _, qm := range set {
			for i := range qm.Rows {
				qm.Row(i, out[at:at+qm.Cols])
				at += qm.Cols
			}
		}
		return out
	}
	w.Wq, w.Wk, w.Wv, w.Wo = widen(q.wq...), widen(q.wk...), widen(q.wv...), widen(q.wo...)
	w.W1, w.W2, w.W3 = widen(q.w1...), widen(q.w2...), widen(q.w3...)
	w.Emb = widen(q.emb)
	if !c.SharedClassifier {
		w.Wcls = widen(q.cls)
	}
	m.tmu.Lock()
	m.q, m.qt, m.t, m.views = nil, nil, nil, nil
	m.tmu.Unlock()
	w.Changed()
}
