//go:build goexperiment.simd && amd64

package tensor

import (
	"math"
	"math/bits"

	"simd/archsimd"
)

// AVX2 vector ops. Reductions keep four accumulators (32 elements per step)
// so that the 4-cycle latency of an add or FMA does not serialize the loop;
// tails go through the zero-filling partial loads.

// loadPart8 loads s[:8], or the first len(s) < 8 values zero-filled. The
// partial case copies through a local array instead of using
// LoadFloat32x8SlicePart, whose pointer to a full [8]float32 past the end of
// an allocation trips the checkptr instrumentation of -race builds.
func loadPart8(s []float32) archsimd.Float32x8 {
	if len(s) >= 8 {
		return archsimd.LoadFloat32x8Slice(s)
	}
	var t [8]float32
	copy(t[:], s)
	return archsimd.LoadFloat32x8(&t)
}

// loadPart16 is loadPart8 for 16 lanes.
func loadPart16(s []float32) archsimd.Float32x16 {
	if len(s) >= 16 {
		return archsimd.LoadFloat32x16Slice(s)
	}
	var t [16]float32
	copy(t[:], s)
	return archsimd.LoadFloat32x16(&t)
}

// storePart8 stores the first min(8, len(s)) lanes of v to s.
func storePart8(v archsimd.Float32x8, s []float32) {
	if len(s) >= 8 {
		v.StoreSlice(s)
		return
	}
	var t [8]float32
	v.Store(&t)
	copy(s, t[:])
}

func hsum(v archsimd.Float32x8) float32 {
	h := v.GetLo().Add(v.GetHi())
	h = h.AddPairs(h)
	h = h.AddPairs(h)
	return h.GetElem(0)
}

func dotSIMD(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 archsimd.Float32x8
	i := 0
	for ; i+32 <= len(a); i += 32 {
		x, y := a[i:i+32], b[i:i+32]
		s0 = archsimd.LoadFloat32x8Slice(x).MulAdd(archsimd.LoadFloat32x8Slice(y), s0)
		s1 = archsimd.LoadFloat32x8Slice(x[8:]).MulAdd(archsimd.LoadFloat32x8Slice(y[8:]), s1)
		s2 = archsimd.LoadFloat32x8Slice(x[16:]).MulAdd(archsimd.LoadFloat32x8Slice(y[16:]), s2)
		s3 = archsimd.LoadFloat32x8Slice(x[24:]).MulAdd(archsimd.LoadFloat32x8Slice(y[24:]), s3)
	}
	for ; i < len(a); i += 8 {
		s0 = loadPart8(a[i:]).MulAdd(loadPart8(b[i:]), s0)
	}
	return hsum(s0.Add(s1).Add(s2.Add(s3)))
}

func axpySIMD(alpha float32, x, y []float32) {
	y = y[:len(x)]
	al := archsimd.BroadcastFloat32x8(alpha)
	i := 0
	for ; i+16 <= len(x); i += 16 {
		xs, ys := x[i:i+16], y[i:i+16]
		al.MulAdd(archsimd.LoadFloat32x8Slice(xs), archsimd.LoadFloat32x8Slice(ys)).StoreSlice(ys)
		al.MulAdd(archsimd.LoadFloat32x8Slice(xs[8:]), archsimd.LoadFloat32x8Slice(ys[8:])).StoreSlice(ys[8:])
	}
	for ; i < len(x); i += 8 {
		storePart8(al.MulAdd(loadPart8(x[i:]), loadPart8(y[i:])), y[i:])
	}
}

func scaleSIMD(alpha float32, x []float32) {
	al := archsimd.BroadcastFloat32x8(alpha)
	i := 0
	for ; i+8 <= len(x); i += 8 {
		archsimd.LoadFloat32x8Slice(x[i:]).Mul(al).StoreSlice(x[i:])
	}
	if i < len(x) {
		storePart8(loadPart8(x[i:]).Mul(al), x[i:])
	}
}

func addSIMD(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		archsimd.LoadFloat32x8Slice(a[i:]).Add(archsimd.LoadFloat32x8Slice(b[i:])).StoreSlice(dst[i:])
	}
	if i < len(dst) {
		storePart8(loadPart8(a[i:]).Add(loadPart8(b[i:])), dst[i:])
	}
}

func mulSIMD(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		archsimd.LoadFloat32x8Slice(a[i:]).Mul(archsimd.LoadFloat32x8Slice(b[i:])).StoreSlice(dst[i:])
	}
	if i < len(dst) {
		storePart8(loadPart8(a[i:]).Mul(loadPart8(b[i:])), dst[i:])
	}
}

func sumSIMD(x []float32) float32 {
	var s0, s1, s2, s3 archsimd.Float32x8
	i := 0
	for ; i+32 <= len(x); i += 32 {
		xs := x[i : i+32]
		s0 = s0.Add(archsimd.LoadFloat32x8Slice(xs))
		s1 = s1.Add(archsimd.LoadFloat32x8Slice(xs[8:]))
		s2 = s2.Add(archsimd.LoadFloat32x8Slice(xs[16:]))
		s3 = s3.Add(archsimd.LoadFloat32x8Slice(xs[24:]))
	}
	for ; i < len(x); i += 8 {
		s0 = s0.Add(loadPart8(x[i:]))
	}
	return hsum(s0.Add(s1).Add(s2.Add(s3)))
}

func sumSquaresSIMD(x []float32) float32 {
	var s0, s1, s2, s3 archsimd.Float32x8
	i := 0
	for ; i+32 <= len(x); i += 32 {
		xs := x[i : i+32]
		v := archsimd.LoadFloat32x8Slice(xs)
		s0 = v.MulAdd(v, s0)
		v = archsimd.LoadFloat32x8Slice(xs[8:])
		s1 = v.MulAdd(v, s1)
		v = archsimd.LoadFloat32x8Slice(xs[16:])
		s2 = v.MulAdd(v, s2)
		v = archsimd.LoadFloat32x8Slice(xs[24:])
		s3 = v.MulAdd(v, s3)
	}
	for ; i < len(x); i += 8 {
		v := loadPart8(x[i:])
		s0 = v.MulAdd(v, s0)
	}
	return hsum(s0.Add(s1).Add(s2.Add(s3)))
}

func maxSIMD(x []float32) float32 {
	m := float32(math.Inf(-1))
	i := 0
	if len(x) >= 8 {
		v := archsimd.LoadFloat32x8Slice(x)
		for i = 8; i+8 <= len(x); i += 8 {
			v = v.Max(archsimd.LoadFloat32x8Slice(x[i:]))
		}
		h := v.GetLo().Max(v.GetHi())
		var t [4]float32
		h.Store(&t)
		m = max(t[0], t[1], t[2], t[3])
	}
	for _, v := range x[i:] {
		if v > m {
			m = v
		}
	}
	return m
}

func argmaxSIMD(x []float32) int {
	m := maxSIMD(x)
	mv := archsimd.BroadcastFloat32x8(m)
	i := 0
	for ; i+8 <= len(x); i += 8 {
		if bm := archsimd.LoadFloat32x8Slice(x[i:]).Equal(mv).ToBits(); bm != 0 {
			return i + bits.TrailingZeros8(bm)
		}
	}
	for ; i < len(x); i++ {
		if x[i] == m {
			return i
		}
	}
	// Only reachable when x holds NaNs and no element equals the max.
	return 0
}

// exp8 is expf (exp.go) on eight lanes, with the same constants and ranges.
func exp8(x archsimd.Float32x8) archsimd.Float32x8 {
	xc := x.Max(archsimd.BroadcastFloat32x8(expLo)).Min(archsimd.BroadcastFloat32x8(expHi))
	n := xc.Mul(archsimd.BroadcastFloat32x8(expLog2e)).RoundToEven()
	r := n.MulAdd(archsimd.BroadcastFloat32x8(-expC1), xc)
	r = n.MulAdd(archsimd.BroadcastFloat32x8(-expC2), r)
	p := archsimd.BroadcastFloat32x8(expP0)
	p = p.MulAdd(r, archsimd.BroadcastFloat32x8(expP1))
	p = p.MulAdd(r, archsimd.BroadcastFloat32x8(expP2))
	p = p.MulAdd(r, archsimd.BroadcastFloat32x8(expP3))
	p = p.MulAdd(r, archsimd.BroadcastFloat32x8(expP4))
	p = p.MulAdd(r, archsimd.BroadcastFloat32x8(expP5))
	y := p.MulAdd(r.Mul(r), r).Add(archsimd.BroadcastFloat32x8(1))
	e := n.ConvertToInt32().Add(archsimd.BroadcastInt32x8(127)).ShiftAllLeft(23).AsFloat32x8()
	y = y.Mul(e)
	y = y.Masked(x.GreaterEqual(archsimd.BroadcastFloat32x8(expLo)))
	y = y.Merge(archsimd.BroadcastFloat32x8(float32(math.Inf(1))), x.LessEqual(archsimd.BroadcastFloat32x8(expHi)))
	return y.Merge(x, x.Equal(x)) // NaN in, NaN out
}

var lanes8 = [8]int32{0, 1, 2, 3, 4, 5, 6, 7}

func expSubSIMD(dst, x []float32, m float32) float32 {
	x = x[:len(dst)]
	// exp8 inlined by hand, its constants broadcast once per call: as a call,
	// the loop spilled every live vector around it and ran 2x slower.
	mv := archsimd.BroadcastFloat32x8(m)
	lo, hi := archsimd.BroadcastFloat32x8(expLo), archsimd.BroadcastFloat32x8(expHi)
	log2e := archsimd.BroadcastFloat32x8(expLog2e)
	c1, c2 := archsimd.BroadcastFloat32x8(-expC1), archsimd.BroadcastFloat32x8(-expC2)
	p0, p1, p2 := archsimd.BroadcastFloat32x8(expP0), archsimd.BroadcastFloat32x8(expP1), archsimd.BroadcastFloat32x8(expP2)
	p3, p4, p5 := archsimd.BroadcastFloat32x8(expP3), archsimd.BroadcastFloat32x8(expP4), archsimd.BroadcastFloat32x8(expP5)
	one, bias := archsimd.BroadcastFloat32x8(1), archsimd.BroadcastInt32x8(127)
	inf := archsimd.BroadcastFloat32x8(float32(math.Inf(1)))
	var sum archsimd.Float32x8
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		v := archsimd.LoadFloat32x8Slice(x[i : i+8]).Sub(mv)
		xc := v.Max(lo).Min(hi)
		n := xc.Mul(log2e).RoundToEven()
		r := n.MulAdd(c1, xc)
		r = n.MulAdd(c2, r)
		p := p0.MulAdd(r, p1)
		p = p.MulAdd(r, p2)
		p = p.MulAdd(r, p3)
		p = p.MulAdd(r, p4)
		p = p.MulAdd(r, p5)
		y := p.MulAdd(r.Mul(r), r).Add(one)
		y = y.Mul(n.ConvertToInt32().Add(bias).ShiftAllLeft(23).AsFloat32x8())
		y = y.Masked(v.GreaterEqual(lo)).Merge(inf, v.LessEqual(hi)).Merge(v, v.Equal(v))
		y.StoreSlice(dst[i : i+8])
		sum = sum.Add(y)
	}
	if i < len(dst) {
		n := len(dst) - i
		e := exp8(loadPart8(x[i:]).Sub(mv))
		// Lanes past the end hold exp(0-m); keep them out of the sum.
		e = e.Masked(archsimd.LoadInt32x8(&lanes8).Less(archsimd.BroadcastInt32x8(int32(n))))
		storePart8(e, dst[i:])
		sum = sum.Add(e)
	}
	return hsum(sum)
}

// atLeastSIMD appends to dst the indices of x's values ≥ t.
func atLeastSIMD(x []float32, t float32, dst []int32) []int32 {
	tv := archsimd.BroadcastFloat32x8(t)
	i := 0
	for ; i+8 <= len(x); i += 8 {
		for bm := archsimd.LoadFloat32x8Slice(x[i:]).GreaterEqual(tv).ToBits(); bm != 0; bm &= bm - 1 {
			dst = append(dst, int32(i+bits.TrailingZeros8(bm)))
		}
	}
	for ; i < len(x); i++ {
		if x[i] >= t {
			dst = append(dst, int32(i))
		}
	}
	return dst
}
