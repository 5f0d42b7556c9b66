//go:build goexperiment.simd && amd64

package optim

import "simd/archsimd"

// useVec enables the 8-wide AVX loops. They perform the same IEEE float32
// operations in the same order as the scalar loops (no fused multiply-add),
// so both give bit-identical results; the test checks this.
var useVec = archsimd.X86.AVX()

// adamwVec runs the AdamW update over the longest prefix whose length is a
// multiple of 8 and returns that length (0 when the vector path is off or
// the lerp takes its high-weight form, β1 <= 0.5, which only the scalar
// loop implements).
func adamwVec(p, g, m, v []float32, k *adamwConsts) int {
	if !useVec || k.lerpHigh {
		return 0
	}
	n := len(p) &^ 7
	g, m, v = g[:n], m[:n], v[:n]
	decay := archsimd.BroadcastFloat32x8(k.decay)
	w1 := archsimd.BroadcastFloat32x8(k.w1)
	beta2 := archsimd.BroadcastFloat32x8(k.beta2)
	w2 := archsimd.BroadcastFloat32x8(k.w2)
	eps := archsimd.BroadcastFloat32x8(k.eps)
	negStep := archsimd.BroadcastFloat32x8(k.negStep)
	bc2Sqrt := archsimd.BroadcastFloat32x8(k.bc2Sqrt)
	doDecay := k.decay != 1
	for i := 0; i < n; i += 8 {
		pi := archsimd.LoadFloat32x8Slice(p[i:])
		if doDecay {
			pi = pi.Mul(decay)
		}
		gi := archsimd.LoadFloat32x8Slice(g[i:])
		mi := archsimd.LoadFloat32x8Slice(m[i:])
		mi = mi.Add(w1.Mul(gi.Sub(mi)))
		vi := archsimd.LoadFloat32x8Slice(v[i:]).Mul(beta2).Add(w2.Mul(gi).Mul(gi))
		denom := vi.Sqrt().Div(bc2Sqrt).Add(eps)
		pi = pi.Add(negStep.Mul(mi).Div(denom))
		mi.StoreSlice(m[i:])
		vi.StoreSlice(v[i:])
		pi.StoreSlice(p[i:])
	}
	return n
}

// rmspropVec runs the RMSprop update over the longest prefix whose length
// is a multiple of 8 and returns that length (0 when the vector path is off
// or, with Centered, the lerp takes its high-weight form, α <= 0.5).
func rmspropVec(p, g, sq, buf, avg []float32, k *rmspropConsts) int {
	if !useVec || (avg != nil && k.lerpHigh) {
		return 0
	}
	n := len(p) &^ 7
	g, sq = g[:n], sq[:n]
	alpha := archsimd.BroadcastFloat32x8(k.alpha)
	w := archsimd.BroadcastFloat32x8(k.w)
	eps := archsimd.BroadcastFloat32x8(k.eps)
	mom := archsimd.BroadcastFloat32x8(k.momentum)
	negLR := archsimd.BroadcastFloat32x8(k.negLR)
	wd := archsimd.BroadcastFloat32x8(k.wd)
	doDecay := k.wd != 0
	for i := 0; i < n; i += 8 {
		pi := archsimd.LoadFloat32x8Slice(p[i:])
		gi := archsimd.LoadFloat32x8Slice(g[i:])
		if doDecay {
			gi = gi.Add(wd.Mul(pi))
		}
		s := archsimd.LoadFloat32x8Slice(sq[i:]).Mul(alpha).Add(w.Mul(gi).Mul(gi))
		s.StoreSlice(sq[i:])
		var d archsimd.Float32x8
		if avg != nil {
			a := archsimd.LoadFloat32x8Slice(avg[i:])
			a = a.Add(w.Mul(gi.Sub(a)))
			a.StoreSlice(avg[i:])
			// s + (−a·a) in the scalar loop equals s − a·a exactly.
			d = s.Sub(a.Mul(a)).Sqrt()
		} else {
			d = s.Sqrt()
		}
		d = d.Add(eps)
		if buf != nil {
			b := archsimd.LoadFloat32x8Slice(buf[i:]).Mul(mom).Add(gi.Div(d))
			b.StoreSlice(buf[i:])
			pi = pi.Add(negLR.Mul(b))
		} else {
			pi = pi.Add(negLR.Mul(gi).Div(d))
		}
		pi.StoreSlice(p[i:])
	}
	return n
}
