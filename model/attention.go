package model

import (
	"math"

	"fspo/tensor"
)

// Grouped-query causal attention over packed rows (Vaswani et al. 2017;
// Ainslie et al. 2023 for the grouping). Query t of a row sees the keys
// [0, Lo[t]) and [Seg[t], t] of the same row.
//   q (B,T,H,hs), k, v (B,T,KVH,hs) -> att (B,H,T,T), out (B,T,H,hs)

// keyRanges returns the two key ranges [0,a) and [b,t] of row r.
func (p *Pass) keyRanges(r, t int) (a, b int) {
	a, b = int(p.pk.Lo[r]), int(p.pk.Seg[r])
	if a > b {
		a = b
	}
	return a, b
}

// attention works per (row b, kv head) on blocks of query rows: for the block
// [t0,t1) only keys [0,t1) can be seen, so the score block is (t1-t0)×t1.
const attBlock = 64

// attDims returns the sizes every attention pass works with: rows B and
// positions T of the pass, query and key/value heads, the query and
// key/value widths, the head size, the query heads per key/value head and
// the score scale 1/√hs.
func (m *Model) attDims(p *Pass) (B, T, H, KVH, qd, kv, hs, group int, scale float32) {
	c := m.Config
	hs = c.HeadSize()
	return p.pk.B, p.pk.T, c.Heads, c.KVHeads, c.QDim(), c.KVDim(), hs, c.Heads / c.KVHeads, float32(1 / math.Sqrt(float64(hs)))
}

func (m *Model) attentionForward(p *Pass, l int) {
	if p.rows {
		m.attentionForwardRows(p, l)
		return
	}
	B, T, H, KVH, qd, kv, hs, group, scale := m.attDims(p)
	q, k, v, att, ao := p.q[l], p.k[l], p.v[l], p.att[l], p.ao[l]
	parallelFor(B*KVH, 1, func(lo, hi int) {
		for task := lo; task < hi; task++ {
			b, kh := task/KVH, task%KVH
			kb, vb := k[b*T*kv+kh*hs:], v[b*T*kv+kh*hs:]
			for h := kh * group; h < (kh+1)*group; h++ {
				P := att[(b*H+h)*T*T : (b*H+h+1)*T*T] // (T,T) row-major
				qb, ob := q[b*T*qd+h*hs:], ao[b*T*qd+h*hs:]
				for t0 := 0; t0 < T; t0 += attBlock {
					t1 := min(t0+attBlock, T)
					// S[t0:t1, 0:t1] = Q[t0:t1] · K[0:t1]ᵀ
					tensor.GemmSerial(false, true, t1-t0, t1, hs, qb[t0*qd:], qd, kb, kv, 0, P[t0*T:], T)
					for t := t0; t < t1; t++ {
						row := P[t*T : t*T+t1]
						a, s := p.keyRanges(b*T+t, t)
						tensor.Scale(scale, row[:a])
						tensor.Scale(scale, row[s:t+1])
						mx := float32(math.Inf(-1))
						if a > 0 {
							mx = tensor.Max(row[:a])
						}
						mx = max(mx, tensor.Max(row[s:t+1]))
						sum := tensor.ExpSub(row[:a], row[:a], mx) + tensor.ExpSub(row[s:t+1], row[s:t+1], mx)
						clear(row[a:s])
						clear(row[t+1:])
						tensor.Scale(1/sum, row[:t+1])
					}
					// O[t0:t1] = P[t0:t1, 0:t1] · V[0:t1]
					tensor.GemmSerial(false, false, t1-t0, hs, t1, P[t0*T:], T, vb, kv, 0, ob[t0*qd:], qd)
				}
			}
		}
	})
}

// attentionBackward: from dao (M,qd) writes dq (M,qd) and dk, dv (M,kv).
//
//	dP = dO·Vᵀ;  dV += Pᵀ·dO;  dS = P∘(dP − rowsum(P∘dP));  dQ = scale·dS·K;  dK += scale·dSᵀ·Q
func (m *Model) attentionBackward(p *Pass, l int, dao, dq, dk, dv []float32) {
	if p.rows {
		m.attentionBackwardRows(p, l, dao, dq, dk, dv)
		return
	}
	B, T, H, KVH, qd, kv, hs, group, scale := m.attDims(p)
	q, k, v, att := p.q[l], p.k[l], p.v[l], p.att[l]
	clear(dk)
	clear(dv)
	parallelFor(B*KVH, 1, func(lo, hi int) {
		dS := make([]float32, attBlock*T)
		for task := lo; task < hi; task++ {
			b, kh := task/KVH, task%KVH
			kb, vb := k[b*T*kv+kh*hs:], v[b*T*kv+kh*hs:]
			dkb, dvb := dk[b*T*kv+kh*hs:], dv[b*T*kv+kh*hs:]
			for h := kh * group; h < (kh+1)*group; h++ {
				P := att[(b*H+h)*T*T : (b*H+h+1)*T*T]
				qb, dqb, dob := q[b*T*qd+h*hs:], dq[b*T*qd+h*hs:], dao[b*T*qd+h*hs:]
				for t0 := 0; t0 < T; t0 += attBlock {
					t1 := min(t0+attBlock, T)
					n := t1 - t0
					Pb := P[t0*T:]
					// dV[0:t1] += P[t0:t1,0:t1]ᵀ · dO[t0:t1]
					tensor.GemmSerial(true, false, t1, hs, n, Pb, T, dob[t0*qd:], qd, 1, dvb, kv)
					// dP = dO[t0:t1] · V[0:t1]ᵀ  (into dS)
					tensor.GemmSerial(false, true, n, t1, hs, dob[t0*qd:], qd, vb, kv, 0, dS, T)
					for t := t0; t < t1; t++ {
						tensor.SoftmaxBackward(dS[(t-t0)*T:(t-t0)*T+t1], Pb[(t-t0)*T:(t-t0)*T+t1], scale)
					}
					// dQ[t0:t1] = dS · K[0:t1];  dK[0:t1] += dSᵀ · Q[t0:t1]
					tensor.GemmSerial(false, false, n, hs, t1, dS, T, kb, kv, 0, dqb[t0*qd:], qd)
					tensor.GemmSerial(true, false, t1, hs, n, dS, T, qb[t0*qd:], qd, 1, dkb, kv)
				}
			}
		}
	})
}
