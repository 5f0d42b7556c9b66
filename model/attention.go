package model

import (
	"math"
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

func (m *Model) attentionForward(p *Pass, l int) {
	c := m.Config
	B, T, H, KVH := p.pk.B, p.pk.T, c.Heads, c.KVHeads
	dim, kv, hs := c.Dim, c.KVDim(), c.HeadSize()
	group := H / KVH
	scale := float32(1 / math.Sqrt(float64(hs)))
	q, k, v, att, ao := p.q[l], p.k[l], p.v[l], p.att[l], p.ao[l]
	parallelFor(B*KVH, 1, func(lo, hi int) {
		for task := lo; task < hi; task++ {
			b, kh := task/KVH, task%KVH
			for h := kh * group; h < (kh+1)*group; h++ {
				for t := 0; t < T; t++ {
					r := b*T + t
					a, s := p.keyRanges(r, t)
					qr := q[r*dim+h*hs : r*dim+(h+1)*hs]
					arow := att[((b*H+h)*T+t)*T : ((b*H+h)*T+t+1)*T]
					mx := float32(math.Inf(-1))
					score := func(j int) {
						kr := k[(b*T+j)*kv+kh*hs : (b*T+j)*kv+(kh+1)*hs]
						var d float32
						for i := range qr {
							d += qr[i] * kr[i]
						}
						d *= scale
						arow[j] = d
						mx = max(mx, d)
					}
					for j := 0; j < a; j++ {
						score(j)
					}
					for j := s; j <= t; j++ {
						score(j)
					}
					var sum float32
					for j := 0; j < a; j++ {
						arow[j] = float32(math.Exp(float64(arow[j] - mx)))
						sum += arow[j]
					}
					for j := s; j <= t; j++ {
						arow[j] = float32(math.Exp(float64(arow[j] - mx)))
						sum += arow[j]
					}
					inv := 1 / sum
					out := ao[r*dim+h*hs : r*dim+(h+1)*hs]
					clear(out)
					acc := func(j int) {
						arow[j] *= inv
						pj := arow[j]
						vr := v[(b*T+j)*kv+kh*hs : (b*T+j)*kv+(kh+1)*hs]
						for i := range out {
							out[i] += pj * vr[i]
						}
					}
					for j := 0; j < a; j++ {
						acc(j)
					}
					for j := s; j <= t; j++ {
						acc(j)
					}
				}
			}
		}
	})
}

// attentionBackward: from dao (M,dim) writes dq (M,dim) and dk, dv (M,kv).
//
//	dP = dO·vᵀ;  dv += Pᵀ·dO;  dS = P∘(dP − rowsum(P∘dP));  dq = scale·dS·k;  dk += scale·dSᵀ·q
func (m *Model) attentionBackward(p *Pass, l int, dao, dq, dk, dv []float32) {
	c := m.Config
	B, T, H, KVH := p.pk.B, p.pk.T, c.Heads, c.KVHeads
	dim, kv, hs := c.Dim, c.KVDim(), c.HeadSize()
	group := H / KVH
	scale := float32(1 / math.Sqrt(float64(hs)))
	q, k, v, att := p.q[l], p.k[l], p.v[l], p.att[l]
	clear(dq)
	clear(dk)
	clear(dv)
	parallelFor(B*KVH, 1, func(lo, hi int) {
		dP := make([]float32, T)
		for task := lo; task < hi; task++ {
			b, kh := task/KVH, task%KVH
			for h := kh * group; h < (kh+1)*group; h++ {
				for t := 0; t < T; t++ {
					r := b*T + t
					a, s := p.keyRanges(r, t)
					arow := att[((b*H+h)*T+t)*T : ((b*H+h)*T+t+1)*T]
					do := dao[r*dim+h*hs : r*dim+(h+1)*hs]
					var dot float32
					pass1 := func(j int) {
						off := (b*T+j)*kv + kh*hs
						vr, dvr := v[off:off+hs], dv[off:off+hs]
						var d float32
						pj := arow[j]
						for i := range do {
							d += do[i] * vr[i]
							dvr[i] += pj * do[i]
						}
						dP[j] = d
						dot += pj * d
					}
					for j := 0; j < a; j++ {
						pass1(j)
					}
					for j := s; j <= t; j++ {
						pass1(j)
					}
					qr, dqr := q[r*dim+h*hs:r*dim+(h+1)*hs], dq[r*dim+h*hs:r*dim+(h+1)*hs]
					pass2 := func(j int) {
						ds := arow[j] * (dP[j] - dot) * scale
						off := (b*T+j)*kv + kh*hs
						kr, dkr := k[off:off+hs], dk[off:off+hs]
						for i := range qr {
							dqr[i] += ds * kr[i]
							dkr[i] += ds * qr[i]
						}
					}
					for j := 0; j < a; j++ {
						pass2(j)
					}
					for j := s; j <= t; j++ {
						pass2(j)
					}
				}
			}
		}
	})
}
