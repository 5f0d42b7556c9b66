package model

import (
	"fmt"
	"sync/atomic"

	"fspo/tensor"
)

// Pass is the record of one batched forward pass (the activations backward
// needs) and its results: the log-probability of every completion token.
// Reuse a Pass across steps to reuse its memory.
type Pass struct {
	// Recompute keeps only each layer's input through the forward pass and
	// recomputes the layer's activations in Backward (activation
	// checkpointing): memory for one layer's activations instead of all,
	// for about one more forward pass of time. Set it before Score.
	Recompute bool

	m  *Model
	pk packed
	M  int // B*T rows

	xin              [][]float32 // per layer + final: residual stream entering layer l (M,dim)
	xnA, rstdA       [][]float32 // attention RMSNorm output (M,dim), 1/rms (M)
	q, k, v          [][]float32 // after RoPE: (M,q_dim), (M,kv), (M,kv)
	qn, kn, rq, rk   [][]float32 // with QKNorm: q, k heads before their norm, 1/rms (qkRecord)
	att              [][]float32 // attention probabilities (B,H,T,attLd), only allowed entries meaningful
	attLd            int         // row stride of att: T, or T rounded up to 16 for the row kernels
	rows             bool        // attention on the row kernels (attrows.go)
	kT, vT           [][]float32 // with rows: keys and values per (b, kv head) transposed, (B,KVH,hs,attLd)
	dS               []float32   // with rows: score-gradient scratch, one (T,attLd) slot per chunk
	slot             atomic.Int32
	ao               [][]float32 // attention output before Wo (M,q_dim)
	xmid             [][]float32 // residual after attention (M,dim)
	xnF, rstdF       [][]float32 // MLP RMSNorm output, 1/rms
	h1, h3, hb       [][]float32 // (M,hidden): gate pre-activation, up, silu(h1)*h3
	scored           []int32     // rows with a target (S)
	xf, rstdf        []float32   // final RMSNorm of scored rows (S,dim), (S)
	logits, lse      []float32   // (S,vocab), (S)
	logp             []float32   // (S) log-prob of each scored row's target
	rowToScored      []int32     // (M) index into scored, or -1
	dlogp            []float32   // (S) dObjective/dlogp, set before Backward
	dx, dxn, dq, dk  []float32
	dv, dao, dhb     []float32
	dh1, dh3, dlogit []float32
	dxf, dqk         []float32
	lu               [][]float32 // with an adapter: Scale·x·Aᵀ per (layer, target), (M, rank)
	du               []float32   // adapter gradient scratch (M, rank)
	frozen           *Params     // BackwardAdapter's sink for the base's vector gradients
	xout             []float32   // with Recompute: a recomputed layer's output, discarded
}

// Score runs the batched forward pass over exs, keeping what Backward needs.
// pass may be nil or a Pass to reuse.
func (m *Model) Score(exs []Example, pass *Pass) (*Pass, error) {
	if pass == nil {
		pass = &Pass{}
	}
	p := pass
	p.m = m
	if err := m.pack(exs, &p.pk); err != nil {
		return nil, fmt.Errorf("score: %w", err)
	}
	c := m.Config
	L, dim, qd, kv, hid, H := c.Layers, c.Dim, c.QDim(), c.KVDim(), c.Hidden, c.Heads
	B, T := p.pk.B, p.pk.T
	M := B * T
	p.M = M
	alloc := func(s [][]float32, n, per int) [][]float32 {
		if len(s) != n {
			s = make([][]float32, n)
		}
		for i := range s {
			s[i] = grow(s[i], per)
		}
		return s
	}
	p.xin = alloc(p.xin, L+1, M*dim)
	S := L // slots of per-layer activations
	if p.Recompute {
		S = 1
	}
	p.xnA, p.rstdA = alloc(p.xnA, S, M*dim), alloc(p.rstdA, S, M)
	p.q, p.k, p.v = alloc(p.q, S, M*qd), alloc(p.k, S, M*kv), alloc(p.v, S, M*kv)
	if c.QKNorm {
		p.qn, p.kn = alloc(p.qn, S, M*qd), alloc(p.kn, S, M*kv)
		p.rq, p.rk = alloc(p.rq, S, M*H), alloc(p.rk, S, M*c.KVHeads)
	}
	p.rows = m.attRowsFast()
	p.attLd = T
	if p.rows {
		p.attLd = tensor.AttendScratch(T)
		p.kT, p.vT = alloc(p.kT, S, B*c.KVHeads*c.HeadSize()*p.attLd), alloc(p.vT, S, B*c.KVHeads*c.HeadSize()*p.attLd)
	}
	p.att = alloc(p.att, S, B*H*T*p.attLd)
	p.ao, p.xmid = alloc(p.ao, S, M*qd), alloc(p.xmid, S, M*dim)
	p.xnF, p.rstdF = alloc(p.xnF, S, M*dim), alloc(p.rstdF, S, M)
	p.h1, p.h3, p.hb = alloc(p.h1, S, M*hid), alloc(p.h3, S, M*hid), alloc(p.hb, S, M*hid)

	x := p.xin[0]
	for r := 0; r < M; r++ {
		t := p.pk.Tokens[r]
		m.embedRow(x[r*dim:], int(t))
	}
	for l := 0; l < L; l++ {
		p.layerForward(l, true)
	}
	m.classify(p)
	return p, nil
}

// qkRecord of layer l; nil without QKNorm.
func (p *Pass) qkRec(l int) *qkRecord {
	if !p.m.Config.QKNorm {
		return nil
	}
	return &qkRecord{p.qn[l], p.kn[l], p.rq[l], p.rk[l]}
}

// rows is the part of r for rows [lo,hi), with h query and kvh key heads per row.
func (r *qkRecord) rows(lo, hi, h, kvh int) *qkRecord {
	if r == nil {
		return nil
	}
	qd, kv := len(r.q)/len(r.rq)*h, len(r.k)/len(r.rk)*kvh
	return &qkRecord{r.q[lo*qd : hi*qd], r.k[lo*kv : hi*kv], r.rq[lo*h : hi*h], r.rk[lo*kvh : hi*kvh]}
}

// rowsRMSNorm normalizes the rows of x in parallel.
func (m *Model) rowsRMSNorm(out, rstd, x, g []float32) {
	dim := m.Config.Dim
	parallelFor(len(rstd), 64, func(lo, hi int) {
		rmsnormForward(out[lo*dim:hi*dim], rstd[lo:hi], x[lo*dim:hi*dim], g, dim, m.Config.NormEps)
	})
}

// classify computes log-probs of the targets at the scored rows only.
func (m *Model) classify(p *Pass) {
	c := m.Config
	dim, V := c.Dim, c.Vocab
	p.scored = p.scored[:0]
	p.rowToScored = growInt(p.rowToScored, p.M)
	for r := 0; r < p.M; r++ {
		p.rowToScored[r] = -1
		if p.pk.Targets[r] >= 0 {
			p.rowToScored[r] = int32(len(p.scored))
			p.scored = append(p.scored, int32(r))
		}
	}
	S := len(p.scored)
	p.xf, p.rstdf = grow(p.xf, S*dim), grow(p.rstdf, S)
	p.logits, p.lse, p.logp = grow(p.logits, S*V), grow(p.lse, S), grow(p.logp, S)
	xl := p.xin[c.Layers]
	parallelFor(S, 64, func(lo, hi int) {
		for s := lo; s < hi; s++ {
			r := int(p.scored[s])
			rmsnormForward(p.xf[s*dim:(s+1)*dim], p.rstdf[s:s+1], xl[r*dim:(r+1)*dim], m.W.RmsFinal, dim, c.NormEps)
		}
	})
	m.classifyRows(p.logits, p.xf, S, projector{})
	parallelFor(S, 16, func(lo, hi int) {
		scratch := make([]float32, V)
		for s := lo; s < hi; s++ {
			r := int(p.scored[s])
			p.logp[s], p.lse[s] = logSoftmaxAt(p.logits[s*V:(s+1)*V], scratch, int(p.pk.Targets[r]))
		}
	})
	p.dlogp = grow(p.dlogp, S)
	clear(p.dlogp)
}

// Tokens returns the per-token log-probs of completion j of example i.
func (p *Pass) Tokens(i, j int) []float32 {
	start := int(p.pk.spans[i][j])
	n := p.completionLen(i, j)
	s := p.rowToScored[start]
	return p.logp[s : int(s)+n]
}

func (p *Pass) completionLen(i, j int) int { return p.pk.spanLen[i][j] }

// Sum is the summed log-prob of completion j of example i.
func (p *Pass) Sum(i, j int) float64 {
	var s float64
	for _, v := range p.Tokens(i, j) {
		s += float64(v)
	}
	return s
}

// SetGrad sets dObjective/dlogp for every token of completion j of example i
// to g (a loss on summed log-probs gives each token the same weight).
func (p *Pass) SetGrad(i, j int, g float32) {
	start := p.rowToScored[p.pk.spans[i][j]]
	n := p.completionLen(i, j)
	for s := int(start); s < int(start)+n; s++ {
		p.dlogp[s] = g
	}
}

// SetTokenGrads sets dObjective/dlogp per token of completion j of example i.
func (p *Pass) SetTokenGrads(i, j int, g []float32) {
	start := p.rowToScored[p.pk.spans[i][j]]
	copy(p.dlogp[start:int(start)+p.completionLen(i, j)], g)
}

// actSlot is the index of layer l's activations: l, or 0 when recomputing.
func (p *Pass) actSlot(l int) int {
	if p.Recompute {
		return 0
	}
	return l
}

// scratchOut is a buffer for a recomputed layer's output.
func (p *Pass) scratchOut(n int) []float32 {
	p.xout = grow(p.xout, n)
	return p.xout
}

// layerForward runs layer l on p.xin[l] into its activation slot and, when
// writeOut, its output p.xin[l+1].
func (p *Pass) layerForward(l int, writeOut bool) {
	m := p.m
	c := m.Config
	dim, qd, kv, hid, H := c.Dim, c.QDim(), c.KVDim(), c.Hidden, c.Heads
	M := p.M
	w := m.W
	s := p.actSlot(l)
	xin, xmid := p.xin[l], p.xmid[s]
	// attention block: xmid = xin + Wo·attn(rope(Wq·n), rope(Wk·n), Wv·n), n = rmsnorm(xin)
	m.rowsRMSNorm(p.xnA[s], p.rstdA[s], xin, layer(w.RmsAtt, l, dim))
	p.projectLoRA(projQ, l, s, "q", p.q[s], p.xnA[s], 0)
	p.projectLoRA(projK, l, s, "k", p.k[s], p.xnA[s], 0)
	p.projectLoRA(projV, l, s, "v", p.v[s], p.xnA[s], 0)
	parallelFor(M, 64, func(lo, hi int) {
		m.attnInputsForward(p.q[s][lo*qd:hi*qd], p.k[s][lo*kv:hi*kv], p.v[s][lo*kv:hi*kv], l, p.pk.Pos[lo:hi], p.qkRec(s).rows(lo, hi, H, c.KVHeads))
	})
	m.attentionForward(p, s)
	copy(xmid, xin)
	p.projectLoRA(projO, l, s, "o", xmid, p.ao[s], 1)
	// MLP block: xout = xmid + W2·(silu(W1·n) ∘ W3·n), n = rmsnorm(xmid)
	m.rowsRMSNorm(p.xnF[s], p.rstdF[s], xmid, layer(w.RmsFfn, l, dim))
	p.projectLoRA(projGate, l, s, "gate", p.h1[s], p.xnF[s], 0)
	p.projectLoRA(projUp, l, s, "up", p.h3[s], p.xnF[s], 0)
	parallelFor(M, 64, func(lo, hi int) {
		tensor.SwiGLU(p.hb[s][lo*hid:hi*hid], p.h1[s][lo*hid:hi*hid], p.h3[s][lo*hid:hi*hid])
	})
	xout := p.xin[l+1]
	if !writeOut { // recomputing for Backward: the layer's output is kept already
		xout = p.scratchOut(M * dim)
	}
	copy(xout, xmid)
	p.projectLoRA(projDown, l, s, "down", xout, p.hb[s], 1)
}
