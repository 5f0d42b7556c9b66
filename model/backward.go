package model

import (
	"fspo/tensor"
)

// Backward propagates the gradients set with SetGrad / SetTokenGrads
// (dObjective/dlogp per completion token) through the pass and adds the
// weight gradients to g. Rows without a gradient contribute nothing.
func (p *Pass) Backward(g *Params) { p.backward(g, nil) }

// BackwardAdapter is Backward for a model with an attached adapter whose
// base is frozen: it adds the adapter's gradients to g (of the adapter's
// shape, e.g. LoRA.Grads) and computes no gradient of the base weights.
func (p *Pass) BackwardAdapter(g *LoRA) {
	if p.frozen == nil {
		p.frozen = vectorParams(p.m.Config)
	}
	p.frozen.Zero(p.m.Config)
	p.backward(p.frozen, g)
}

// backward adds weight gradients to g, whose matrices may be nil (not
// wanted), and, with an adapter attached, the adapter's gradients to gl.
func (p *Pass) backward(g *Params, gl *LoRA) {
	m := p.m
	c := m.Config
	L, dim, qd, kv, hid, V := c.Layers, c.Dim, c.QDim(), c.KVDim(), c.Hidden, c.Vocab
	M, S := p.M, len(p.scored)
	w := m.W

	// classifier: d logp/d logits = onehot(target) − softmax(logits)
	p.dlogit = grow(p.dlogit, S*V)
	parallelFor(S, 16, func(lo, hi int) {
		for s := lo; s < hi; s++ {
			gs := p.dlogp[s]
			row, out := p.logits[s*V:(s+1)*V], p.dlogit[s*V:(s+1)*V]
			if gs == 0 {
				clear(out)
				continue
			}
			tensor.ExpSub(out, row, p.lse[s]) // softmax
			tensor.Scale(-gs, out)
			out[p.pk.Targets[p.scored[s]]] += gs
		}
	})
	p.dxf = grow(p.dxf, S*dim)
	clear(p.dxf)
	dcls := g.Wcls
	if c.SharedClassifier {
		dcls = g.Emb
	}
	if m.q != nil {
		if dcls != nil {
			panic(ErrReducedWeights) // Backward: only an adapter trains over a reduced base
		}
		m.reducedT().cls.MulT(p.dxf, p.dlogit, S, 1)
	} else {
		linearBackward(p.dxf, dcls, p.dlogit, p.xf, w.classifier(), S, dim, V)
	}
	// final RMSNorm of the scored rows, scattered into the residual gradient
	p.dx = grow(p.dx, M*dim)
	clear(p.dx)
	xl := p.xin[L]
	for s := 0; s < S; s++ {
		r := int(p.scored[s])
		rmsnormBackward(p.dx[r*dim:(r+1)*dim], g.RmsFinal, p.dxf[s*dim:(s+1)*dim], xl[r*dim:(r+1)*dim], w.RmsFinal, p.rstdf[s:s+1], dim)
	}

	p.dxn, p.dq = grow(p.dxn, M*dim), grow(p.dq, M*qd)
	p.dk, p.dv = grow(p.dk, M*kv), grow(p.dv, M*kv)
	p.dao = grow(p.dao, M*qd)
	p.dhb, p.dh1, p.dh3 = grow(p.dhb, M*hid), grow(p.dh1, M*hid), grow(p.dh3, M*hid)
	for l := L - 1; l >= 0; l-- {
		p.layerBackward(g, gl, l)
	}
	// embedding: scatter-add the rows' gradients to their tokens
	for r := 0; r < M && g.Emb != nil; r++ {
		t := int(p.pk.Tokens[r])
		er, dr := g.Emb[t*dim:(t+1)*dim], p.dx[r*dim:(r+1)*dim]
		for i := range er {
			er[i] += dr[i]
		}
	}
}

// rowsRMSNormBackward adds the input gradient of an RMSNorm over rows of
// width n to dx and its gain gradient to dg, rows in parallel. Each block of
// rows sums its own part of dg; the parts are added in block order so the
// result does not depend on timing.
func rowsRMSNormBackward(dx, dg, dout, x, gain, rstd []float32, n int) {
	M := len(rstd)
	const block = 64
	nb := (M + block - 1) / block
	parts := make([]float32, nb*n)
	parallelFor(nb, 1, func(lo, hi int) {
		for bi := lo; bi < hi; bi++ {
			a, b := bi*block, min((bi+1)*block, M)
			rmsnormBackward(dx[a*n:b*n], parts[bi*n:(bi+1)*n], dout[a*n:b*n], x[a*n:b*n], gain, rstd[a:b], n)
		}
	})
	for bi := 0; bi < nb; bi++ {
		tensor.Axpy(1, parts[bi*n:(bi+1)*n], dg)
	}
}

// glayer is layer l of a gradient, nil when the gradient is not wanted.
func glayer(g []float32, l, size int) []float32 {
	if g == nil {
		return nil
	}
	return layer(g, l, size)
}

// vectorParams allocates the vector parameters of c (norm gains, biases)
// and none of its matrices.
func vectorParams(c Config) *Params {
	p := &Params{}
	for _, s := range c.shapes() {
		switch s.name {
		case "emb", "wq", "wk", "wv", "wo", "w1", "w2", "w3", "wcls":
			continue
		}
		*s.ptr(p) = make([]float32, s.size())
	}
	return p
}

// layerBackward propagates p.dx (the gradient of layer l's output) to the
// gradient of its input, adding the weight gradients to g and the adapter's
// to gl.
func (p *Pass) layerBackward(g *Params, gl *LoRA, l int) {
	m := p.m
	c := m.Config
	L, dim, qd, kv, hid := c.Layers, c.Dim, c.QDim(), c.KVDim(), c.Hidden
	M := p.M
	w := m.W
	if p.Recompute && l < L-1 { // the slot holds the last layer's from Score
		p.layerForward(l, false)
	}
	s := p.actSlot(l)
	// MLP: xout = xmid + hb·W2ᵀ; p.dx is dxout and becomes dxmid
	clear(p.dhb)
	p.linearBackwardLoRA(gl, l, s, projDown, "down", p.dhb, glayer(g.W2, l, dim*hid), p.dx, p.hb[s])
	parallelFor(M, 64, func(lo, hi int) {
		a, b := lo*hid, hi*hid
		tensor.SwiGLUBackward(p.dh1[a:b], p.dh3[a:b], p.dhb[a:b], p.h1[s][a:b], p.h3[s][a:b])
	})
	clear(p.dxn)
	p.linearBackwardLoRA(gl, l, s, projGate, "gate", p.dxn, glayer(g.W1, l, hid*dim), p.dh1, p.xnF[s])
	p.linearBackwardLoRA(gl, l, s, projUp, "up", p.dxn, glayer(g.W3, l, hid*dim), p.dh3, p.xnF[s])
	rowsRMSNormBackward(p.dx, layer(g.RmsFfn, l, dim), p.dxn, p.xmid[s], layer(w.RmsFfn, l, dim), p.rstdF[s], dim)

	// attention: xmid = xin + ao·Woᵀ; p.dx is dxmid and becomes dxin
	clear(p.dao)
	p.linearBackwardLoRA(gl, l, s, projO, "o", p.dao, glayer(g.Wo, l, dim*qd), p.dx, p.ao[s])
	m.attentionBackward(p, s, p.dao, p.dq, p.dk, p.dv)
	if c.QKNorm {
		p.dqk = grow(p.dqk, M*qd)
	}
	m.attnInputsBackward(g, p.dq, p.dk, p.dv, p.dqk, l, p.pk.Pos[:M], p.qkRec(s))
	clear(p.dxn)
	p.linearBackwardLoRA(gl, l, s, projQ, "q", p.dxn, glayer(g.Wq, l, qd*dim), p.dq, p.xnA[s])
	p.linearBackwardLoRA(gl, l, s, projK, "k", p.dxn, glayer(g.Wk, l, kv*dim), p.dk, p.xnA[s])
	p.linearBackwardLoRA(gl, l, s, projV, "v", p.dxn, glayer(g.Wv, l, kv*dim), p.dv, p.xnA[s])
	rowsRMSNormBackward(p.dx, layer(g.RmsAtt, l, dim), p.dxn, p.xin[l], layer(w.RmsAtt, l, dim), p.rstdA[s], dim)
}
