package model

import "fspo/tensor"

// The attention inputs after their projections: q (M,q_dim), k, v (M,kv_dim)
// get their biases (Qwen2), each query and key head its RMSNorm (Qwen3, on
// head_size channels, epsilon NormEps), then q and k their RoPE rotation.
// Each step is skipped when the model does not have it.

// qkRecord keeps, for backward, the query and key heads before their norm
// and the norms' 1/rms: q (M,q_dim), k (M,kv_dim), rq (M·heads), rk (M·kv_heads).
type qkRecord struct{ q, k, rq, rk []float32 }

// attnInputsForward transforms q, k, v of layer l in place for the rows at
// positions pos. rec (nil when decoding) receives what backward needs.
func (m *Model) attnInputsForward(q, k, v []float32, l int, pos []int32, rec *qkRecord) {
	c, w := m.Config, m.W
	qd, kv, hs := c.QDim(), c.KVDim(), c.HeadSize()
	if c.QKVBias {
		addRows(q, layer(w.Bq, l, qd))
		addRows(k, layer(w.Bk, l, kv))
		addRows(v, layer(w.Bv, l, kv))
	}
	if c.QKNorm {
		if rec != nil {
			copy(rec.q, q)
			copy(rec.k, k)
			rmsnormForward(q, rec.rq, rec.q, layer(w.QNorm, l, hs), hs, c.NormEps)
			rmsnormForward(k, rec.rk, rec.k, layer(w.KNorm, l, hs), hs, c.NormEps)
		} else {
			rmsnormForward(q, nil, q, layer(w.QNorm, l, hs), hs, c.NormEps)
			rmsnormForward(k, nil, k, layer(w.KNorm, l, hs), hs, c.NormEps)
		}
	}
	m.ropeForward(q, qd, pos)
	m.ropeForward(k, kv, pos)
}

// attnInputsBackward turns dq, dk (gradients of the rotated values, M rows)
// into gradients of the projections' outputs, in place (scratch: len(dq)
// values), and adds the norm and bias gradients of layer l to g.
func (m *Model) attnInputsBackward(g *Params, dq, dk, dv, scratch []float32, l int, pos []int32, rec *qkRecord) {
	c, w := m.Config, m.W
	qd, kv, hs := c.QDim(), c.KVDim(), c.HeadSize()
	M := len(pos)
	parallelFor(M, 64, func(lo, hi int) {
		m.ropeBackward(dq[lo*qd:hi*qd], qd, pos[lo:hi])
		m.ropeBackward(dk[lo*kv:hi*kv], kv, pos[lo:hi])
	})
	if c.QKNorm {
		for _, t := range []struct {
			d, x, g, dg, rstd []float32
		}{
			{dq, rec.q, layer(w.QNorm, l, hs), layer(g.QNorm, l, hs), rec.rq},
			{dk, rec.k, layer(w.KNorm, l, hs), layer(g.KNorm, l, hs), rec.rk},
		} {
			dx := scratch[:len(t.d)]
			clear(dx)
			rowsRMSNormBackward(dx, t.dg, t.d, t.x, t.g, t.rstd, hs)
			copy(t.d, dx)
		}
	}
	if c.QKVBias {
		sumRows(layer(g.Bq, l, qd), dq)
		sumRows(layer(g.Bk, l, kv), dk)
		sumRows(layer(g.Bv, l, kv), dv)
	}
}

// addRows adds b (n) to every row of x (M,n).
func addRows(x, b []float32) {
	for r := 0; r < len(x); r += len(b) {
		tensor.Axpy(1, b, x[r:r+len(b)])
	}
}

// sumRows adds the rows of x (M,n) to s (n).
func sumRows(s, x []float32) {
	for r := 0; r < len(x); r += len(s) {
		tensor.Axpy(1, x[r:r+len(s)], s)
	}
}
