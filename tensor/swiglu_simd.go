//go:build goexperiment.simd && amd64

package tensor

import "simd/archsimd"

// negateSIMD sets dst[i] = −x[i] eight at a time (a product with −1, exact)
// and returns how many it set.
func negateSIMD(dst, x []float32) int {
	x = x[:len(dst)]
	m := archsimd.BroadcastFloat32x8(-1)
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		archsimd.LoadFloat32x8Slice(x[i:]).Mul(m).StoreSlice(dst[i:])
	}
	return i
}

// swigluSIMD is SwiGLU's last loop eight at a time, out holding exp(−h1);
// it returns how many it set.
func swigluSIMD(out, h1, h3 []float32) int {
	h1, h3 = h1[:len(out)], h3[:len(out)]
	one := archsimd.BroadcastFloat32x8(1)
	i := 0
	for ; i+8 <= len(out); i += 8 {
		e := archsimd.LoadFloat32x8Slice(out[i:])
		z := archsimd.LoadFloat32x8Slice(h1[i:])
		z.Div(one.Add(e)).Mul(archsimd.LoadFloat32x8Slice(h3[i:])).StoreSlice(out[i:])
	}
	return i
}

// swigluBackSIMD is SwiGLUBackward's last loop eight at a time, dh1
// holding exp(−h1); it returns how many it set.
func swigluBackSIMD(dh1, dh3, dout, h1, h3 []float32) int {
	n := len(dh1)
	dh3, dout, h1, h3 = dh3[:n], dout[:n], h1[:n], h3[:n]
	one := archsimd.BroadcastFloat32x8(1)
	i := 0
	for ; i+8 <= n; i += 8 {
		z := archsimd.LoadFloat32x8Slice(h1[i:])
		d := archsimd.LoadFloat32x8Slice(dout[i:])
		sg := one.Div(one.Add(archsimd.LoadFloat32x8Slice(dh1[i:])))
		d.Mul(z).Mul(sg).StoreSlice(dh3[i:])
		slope := one.Add(z.Mul(one.Sub(sg)))
		d.Mul(archsimd.LoadFloat32x8Slice(h3[i:])).Mul(sg).Mul(slope).StoreSlice(dh1[i:])
	}
	return i
}

// softmaxBackSIMD is SoftmaxBackward's pass eight at a time, the last
// partial eight included: d = (p·d + negDot·p)·scale, the middle a fused
// multiply-add as Axpy's; it returns len(d).
func softmaxBackSIMD(d, p []float32, negDot, scale float32) int {
	p = p[:len(d)]
	nd, sc := archsimd.BroadcastFloat32x8(negDot), archsimd.BroadcastFloat32x8(scale)
	i := 0
	for ; i+8 <= len(d); i += 8 {
		pv := archsimd.LoadFloat32x8Slice(p[i:])
		nd.MulAdd(pv, pv.Mul(archsimd.LoadFloat32x8Slice(d[i:]))).Mul(sc).StoreSlice(d[i:])
	}
	if i < len(d) {
		pv := loadPart8(p[i:])
		storePart8(nd.MulAdd(pv, pv.Mul(loadPart8(d[i:]))).Mul(sc), d[i:])
	}
	return len(d)
}
