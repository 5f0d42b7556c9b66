package model

import (
	"fspo/tensor"
)

// Attention on the row kernels of package tensor (head size 8, AVX-512): per
// (row b, kv head) the keys and values are transposed once to (hs, attLd),
// then every query row is one pass over its visible keys for the scores and
// one for the output, with no blocked matrix products and no packing. The
// same shapes and results as attentionForward / attentionBackward.

func (m *Model) attRowsFast() bool {
	return tensor.AttnRowsFast() && m.Config.HeadSize() == tensor.AttnRowsHS
}

// transposeKV writes rows [0,T) of the kv head's channels of src (stride kv)
// to dst (hs, ld), zeroing the padding columns T..ld.
func transposeKV(dst, src []float32, T, kv, hs, ld int) {
	for d := 0; d < hs; d++ {
		row := dst[d*ld : (d+1)*ld]
		for t := 0; t < T; t++ {
			row[t] = src[t*kv+d]
		}
		clear(row[T:])
	}
}

func (m *Model) attentionForwardRows(p *Pass, l int) {
	B, T, H, KVH, qd, kv, hs, group, scale := m.attDims(p)
	ld := p.attLd
	q, k, v, att, ao := p.q[l], p.k[l], p.v[l], p.att[l], p.ao[l]
	parallelFor(B*KVH, 1, func(lo, hi int) {
		scr := make([]float32, ld) // the scores of one row, in L1
		for task := lo; task < hi; task++ {
			b, kh := task/KVH, task%KVH
			kT, vT := p.kT[l][task*hs*ld:(task+1)*hs*ld], p.vT[l][task*hs*ld:(task+1)*hs*ld]
			transposeKV(kT, k[b*T*kv+kh*hs:], T, kv, hs, ld)
			transposeKV(vT, v[b*T*kv+kh*hs:], T, kv, hs, ld)
			for h := kh * group; h < (kh+1)*group; h++ {
				P := att[(b*H+h)*T*ld : (b*H+h+1)*T*ld]
				for t := 0; t < T; t++ {
					a, s := p.keyRanges(b*T+t, t) // keys [0,a) and [s,t]: [a,s) masked
					o := (b*T+t)*qd + h*hs
					tensor.AttnRowForward(P[t*ld:(t+1)*ld], scr, ao[o:o+hs], q[o:o+hs], kT, vT, ld, t+1, a, s, scale)
				}
			}
		}
	})
}

// attentionBackwardRows is attentionBackward on the row kernels.
func (m *Model) attentionBackwardRows(p *Pass, l int, dao, dq, dk, dv []float32) {
	B, T, H, KVH, qd, kv, hs, group, scale := m.attDims(p)
	ld := p.attLd
	q, att := p.q[l], p.att[l]
	// scratch per chunk: dS (T, ld), then dKᵀ and dVᵀ (hs, ld) each
	per := T*ld + 2*hs*ld
	slots := 4*tensor.Threads() + 1
	p.dS = grow(p.dS, slots*per)
	p.slot.Store(0)
	parallelFor(B*KVH, 1, func(lo, hi int) {
		sl := int(p.slot.Add(1)-1) % slots
		scr := p.dS[sl*per : (sl+1)*per]
		dS, dkT, dvT := scr[:T*ld], scr[T*ld:T*ld+hs*ld], scr[T*ld+hs*ld:]
		for task := lo; task < hi; task++ {
			b, kh := task/KVH, task%KVH
			kT, vT := p.kT[l][task*hs*ld:(task+1)*hs*ld], p.vT[l][task*hs*ld:(task+1)*hs*ld]
			clear(dkT)
			clear(dvT)
			for h := kh * group; h < (kh+1)*group; h++ {
				P := att[(b*H+h)*T*ld : (b*H+h+1)*T*ld]
				for t := 0; t < T; t++ {
					o := (b*T+t)*qd + h*hs
					tensor.AttnRowBackward(dS[t*ld:(t+1)*ld], dq[o:o+hs], P[t*ld:(t+1)*ld], dao[o:o+hs], kT, vT, ld, t+1, scale)
				}
				o := b*T*qd + h*hs
				tensor.AttnColsAccum(dvT, ld, P, ld, dao[o:], qd, T)
				tensor.AttnColsAccum(dkT, ld, dS, ld, q[o:], qd, T)
			}
			for t := 0; t < T; t++ {
				r := (b*T+t)*kv + kh*hs
				for d := 0; d < hs; d++ {
					dk[r+d], dv[r+d] = dkT[d*ld+t], dvT[d*ld+t]
				}
			}
		}
	})
}
