//go:build goexperiment.simd && amd64

package tensor

import (
	"simd/archsimd"
	"sync"
	"unsafe"
)

// Kernels for QMatrix.MulT on few activation rows. Each weight row is one
// sequential stream, read once from memory (a second activation row finds
// it in cache): measured on the 2-core EPYC, one row at a time streamed F16
// weights at 24–28 GB/s on one thread, four interleaved rows at 17 GB/s.
//
// F16 and BF16 are widened with integer operations (archsimd has no
// VCVTPH2PS): the 16 bits are sign-extended to 32 and shifted into a float32's
// place. For BF16 (shift 16) that is the exact value. For F16 (shift 13, then
// sign and exponent-mantissa bits masked) it is the value times 2^-112 — exact
// for normal and subnormal halves alike — and the sum is scaled back by 2^112.
// Loads go through unsafe pointers after one bounds check per row, which keeps
// bounds checks and spills out of the loops.

func qRowsSIMD(m *QMatrix, y, x []float32, a *q8Acts, M, lo, hi int, beta float32) {
	wide := level >= levelAVX512
	n, nb := m.Cols, m.Cols/Q8Block
	h := unsafe.Slice((*int16)(unsafe.Pointer(unsafe.SliceData(m.h))), len(m.h))
	o := lo
	var half func(x []float32, w []int16) archsimd.Float32x8
	scale := archsimd.BroadcastFloat32x4(1)
	switch {
	case !wide:
	case m.DType == F16 && n%32 == 0:
		half, scale = rowF16acc, archsimd.BroadcastFloat32x4(0x1p112)
	case m.DType == BF16 && n%32 == 0:
		half = rowBF16acc
	}
	if wide && m.pieces() > 1 && (half != nil || m.DType == Q8_0) {
		qRowsLong(m, y, x, a, h, half, scale, M, lo, hi, beta)
		return
	}
	if half != nil {
		// Four rows, each streamed whole, then reduced together (as Q8_0's
		// below): F16 rows of 576 on one thread 25 → 31 GB/s (BenchmarkQMulT).
		// A row alone (rowF16w, rowBF16w) is reduced in the same order, so
		// its sum does not depend on how the rows were shared out.
		for ; o+4 <= hi; o += 4 {
			w := h[o*n : (o+4)*n]
			for r := range M {
				xr := x[r*n:][:n]
				v := hsum4(half(xr, w[:n]), half(xr, w[n:2*n]), half(xr, w[2*n:3*n]), half(xr, w[3*n:]))
				st4(y[r*m.Rows+o:], v.Mul(scale), beta != 0)
			}
		}
	}
	if wide && m.DType == Q8_0 {
		// Four rows, each streamed whole, then reduced together: 10% faster
		// than one reduction per row for rows of 576.
		for ; o+4 <= hi; o += 4 {
			for r := range M {
				xs, xe := a.s[r*n:][:n], a.e[8*r*nb:][:8*nb]
				v := hsum4(rowQ8acc(xs, xe, m.q[o*n:][:n], m.d[o*nb:][:nb]), rowQ8acc(xs, xe, m.q[(o+1)*n:][:n], m.d[(o+1)*nb:][:nb]),
					rowQ8acc(xs, xe, m.q[(o+2)*n:][:n], m.d[(o+2)*nb:][:nb]), rowQ8acc(xs, xe, m.q[(o+3)*n:][:n], m.d[(o+3)*nb:][:nb]))
				st4(y[r*m.Rows+o:], v, beta != 0)
			}
		}
	}
	for ; o < hi; o++ {
		qRowSIMD(m, y, x, a, h, M, o, beta)
	}
}

// qRowsLong is qRowsSIMD for a matrix stored in column pieces (AVX-512):
// piece by piece, rows lo..hi of the piece (one sequential stream) are
// multiplied by the M activation rows' piece, which stays in cache. A row's
// eight-lane sums are added piece by piece in column order and reduced as
// qRowsSIMD reduces them, four rows together or one alone in the same
// order, so the bits do not depend on how rows are shared out or on M.
func qRowsLong(m *QMatrix, y, x []float32, a *q8Acts, h []int16, half func(x []float32, w []int16) archsimd.Float32x8, scale archsimd.Float32x4, M, lo, hi int, beta float32) {
	n, nb := m.Cols, m.Cols/Q8Block
	pb := longAccPool.Get().(*[]float32)
	defer longAccPool.Put(pb)
	if cap(*pb) < 8*M*(hi-lo) {
		*pb = make([]float32, 8*M*(hi-lo))
	}
	acc := (*pb)[:8*M*(hi-lo)]
	for p := range m.pieces() {
		for o := lo; o < hi; o++ {
			off, c0, w := m.piece(o, p)
			for r := range M {
				var v archsimd.Float32x8
				if half != nil {
					v = half(x[r*n+c0:][:w], h[off:][:w])
				} else {
					v = rowQ8acc(a.s[r*n+c0:][:w], a.e[8*(r*nb+c0/Q8Block):][:8*w/Q8Block], m.q[off:][:w], m.d[off/Q8Block:][:w/Q8Block])
				}
				p := acc[8*((o-lo)*M+r):][:8]
				if c0 > 0 {
					v = v.Add(archsimd.LoadFloat32x8Slice(p))
				}
				v.StoreSlice(p)
			}
		}
	}
	sum := func(o, r int) archsimd.Float32x8 { return archsimd.LoadFloat32x8Slice(acc[8*((o-lo)*M+r):]) }
	o := lo
	for ; o+4 <= hi; o += 4 {
		for r := range M {
			v := hsum4(sum(o, r), sum(o+1, r), sum(o+2, r), sum(o+3, r))
			st4(y[r*m.Rows+o:], v.Mul(scale), beta != 0)
		}
	}
	for ; o < hi; o++ {
		for r := range M {
			s := hsumPairs(sum(o, r)) * scale.GetElem(0)
			if beta != 0 {
				s += y[r*m.Rows+o]
			}
			y[r*m.Rows+o] = s
		}
	}
}

var longAccPool = sync.Pool{New: func() any { return new([]float32) }}

// qRowSIMD is row o of y for every activation row, one weight row at a time.
func qRowSIMD(m *QMatrix, y, x []float32, a *q8Acts, h []int16, M, o int, beta float32) {
	wide := level >= levelAVX512
	n, nb := m.Cols, m.Cols/Q8Block
	for r := range M {
		var s float32
		for p := range m.pieces() { // one piece but for long rows on AVX2
			off, c0, w := m.piece(o, p)
			b0, nbw := r*nb+c0/Q8Block, w/Q8Block
			switch {
			case m.DType == Q8_0 && wide:
				s += hsumPairs(rowQ8acc(a.s[r*n+c0:][:w], a.e[8*b0:][:8*nbw], m.q[off:][:w], m.d[off/Q8Block:][:nbw]))
			case m.DType == Q8_0:
				s += rowQ8(a.q[r*n+c0:][:w], a.d[b0:][:nbw], m.q[off:][:w], m.d[off/Q8Block:][:nbw])
			case m.DType == F32:
				s += rowF32(x[r*n+c0:][:w], m.f[off:][:w], wide)
			default:
				s += rowHalf(x[r*n+c0:][:w], h[off:][:w], m.DType == F16, wide)
			}
		}
		if beta != 0 {
			s += y[r*m.Rows+o]
		}
		y[r*m.Rows+o] = s
	}
}

// rowQ8acc streams a Q8_0 weight row (q, d) against a quantized activation
// row (xs, its block scales each repeated eight times in xe), AVX-512, and
// returns the sums folded to eight lanes. Two blocks (64 weights) at a time:
// the unsigned |w| times x with w's sign (VPMADDUBSW; no pair of products
// reaches the int16 limit, as |w| ≤ 128 and |x| ≤ 127), the pairs summed
// again to int32 (VPMADDWD by ones), one int32 per four weights; converted
// and multiplied by the two blocks' scales lane by lane. BenchmarkQMulT, one
// thread: rows of 576 21–22 GB/s, of 2048 26, against 18–19 and 21–22 for
// int8 widened to int16 and one VPMADDWD (archsimd has no VNNI VPDPBUSD).
// Not inlined: four inlined copies in qRowsSIMD's loop ran at half the speed
// on rows of 2048.
//
//go:noinline
func rowQ8acc(xs []int8, xe []float32, q []int8, d []float32) archsimd.Float32x8 {
	var s0, s1 archsimd.Float32x16
	nb := len(d)
	_, _, _ = xs[:nb*Q8Block], xe[:nb*8], q[:nb*Q8Block]
	pq, px := unsafe.Pointer(unsafe.SliceData(q)), unsafe.Pointer(unsafe.SliceData(xs))
	pe, pd := unsafe.Pointer(unsafe.SliceData(xe)), unsafe.Pointer(unsafe.SliceData(d))
	ones := archsimd.BroadcastInt16x32(1)
	idx := archsimd.LoadUint32x16(&q8PairLanes)
	var zero archsimd.Int8x64
	// pair adds blocks b and b+1's products, scaled, to the 16 lanes of s.
	pair := func(b int, s archsimd.Float32x16) archsimd.Float32x16 {
		o := b * Q8Block
		w := archsimd.LoadInt8x64((*[64]int8)(unsafe.Add(pq, o)))
		x := archsimd.LoadInt8x64((*[64]int8)(unsafe.Add(px, o)))
		x = zero.Sub(x).Merge(x, w.Less(zero))
		p := w.Abs().AsUint8x64().DotProductPairsSaturated(x).DotProductPairs(ones).ConvertToFloat32()
		// d[b], d[b+1] as one float64, broadcast, then spread to 8 lanes each.
		sc := archsimd.BroadcastFloat64x8(*(*float64)(unsafe.Add(pd, 4*b))).AsFloat32x16().Permute(idx)
		return p.MulAdd(sc.Mul(archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(pe, 32*b)))), s)
	}
	b := 0
	for ; b+4 <= nb; b += 4 {
		s0 = pair(b, s0)
		s1 = pair(b+2, s1)
	}
	if b+2 <= nb {
		s0 = pair(b, s0)
		b += 2
	}
	v := fold(s0.Add(s1))
	if b < nb { // a last lone block, on 256 bits
		w := archsimd.LoadInt8x32((*[32]int8)(unsafe.Add(pq, b*Q8Block)))
		x := archsimd.LoadInt8x32((*[32]int8)(unsafe.Add(px, b*Q8Block))).CopySign(w)
		p := w.Abs().AsUint8x32().DotProductPairsSaturated(x).DotProductPairs(archsimd.BroadcastInt16x16(1)).ConvertToFloat32()
		v = p.MulAdd(archsimd.BroadcastFloat32x8(d[b]).Mul(archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(pe, 32*b)))), v)
	}
	return v
}

// q8PairLanes spreads two scales, alternating in 16 lanes, to eight lanes each.
var q8PairLanes = [16]uint32{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}

// rowF32 is x·w for one float32 weight row.
func rowF32(x, w []float32, wide bool) float32 {
	if !wide {
		return dotSIMD(x, w)
	}
	var s0, s1 archsimd.Float32x16
	n := len(x) &^ 31
	_ = w[:len(x)]
	px, pw := unsafe.Pointer(unsafe.SliceData(x)), unsafe.Pointer(unsafe.SliceData(w))
	for k := 0; k < n; k += 32 {
		p, q := unsafe.Add(pw, 4*k), unsafe.Add(px, 4*k)
		s0 = archsimd.LoadFloat32x16((*[16]float32)(p)).MulAdd(archsimd.LoadFloat32x16((*[16]float32)(q)), s0)
		s1 = archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(p, 64))).MulAdd(archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(q, 64))), s1)
	}
	s := hsumPairs(fold(s0.Add(s1)))
	for k := n; k < len(x); k++ {
		s += x[k] * w[k]
	}
	return s
}

// rowHalf is x·w for one F16 or BF16 weight row w (bits as int16).
func rowHalf(x []float32, w []int16, f16, wide bool) float32 {
	var s float32
	var k int
	switch {
	case wide && f16:
		k, s = rowF16w(x, w)
	case wide:
		k, s = rowBF16w(x, w)
	default:
		k, s = rowHalf8(x, w, f16)
	}
	if k == len(x) {
		return s
	}
	tab := f16Table()
	for i := k; i < len(x); i++ {
		if f16 {
			s += tab[uint16(w[i])] * x[i]
		} else {
			s += BF16ToF32(uint16(w[i])) * x[i]
		}
	}
	return s
}

// rowF16w covers the first len(x)&^31 columns of an F16 row (AVX-512).
func rowF16w(x []float32, w []int16) (int, float32) {
	return len(x) &^ 31, hsumPairs(rowF16acc(x, w)) * 0x1p112
}

// rowF16acc streams the first len(x)&^31 columns of an F16 row against x and
// returns the sums (times 2^-112) folded to eight lanes. Not inlined, as
// rowQ8acc.
//
//go:noinline
func rowF16acc(x []float32, w []int16) archsimd.Float32x8 {
	mk := archsimd.BroadcastInt32x16(-0x70002000) // 0x8FFFE000: sign, exponent, mantissa
	var s0, s1 archsimd.Float32x16
	n := len(x) &^ 31
	_ = w[:n]
	px, pw := unsafe.Pointer(unsafe.SliceData(x)), unsafe.Pointer(unsafe.SliceData(w))
	for k := 0; k < n; k += 32 {
		p, q := unsafe.Add(pw, 2*k), unsafe.Add(px, 4*k)
		w0 := archsimd.LoadInt16x16((*[16]int16)(p)).ExtendToInt32().ShiftAllLeft(13).And(mk).AsFloat32x16()
		w1 := archsimd.LoadInt16x16((*[16]int16)(unsafe.Add(p, 32))).ExtendToInt32().ShiftAllLeft(13).And(mk).AsFloat32x16()
		s0 = w0.MulAdd(archsimd.LoadFloat32x16((*[16]float32)(q)), s0)
		s1 = w1.MulAdd(archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(q, 64))), s1)
	}
	return fold(s0.Add(s1))
}

// rowBF16w covers the first len(x)&^31 columns of a BF16 row (AVX-512).
func rowBF16w(x []float32, w []int16) (int, float32) {
	return len(x) &^ 31, hsumPairs(rowBF16acc(x, w))
}

// rowBF16acc is rowF16acc for a BF16 row (the sums unscaled).
//
//go:noinline
func rowBF16acc(x []float32, w []int16) archsimd.Float32x8 {
	var s0, s1 archsimd.Float32x16
	n := len(x) &^ 31
	_ = w[:n]
	px, pw := unsafe.Pointer(unsafe.SliceData(x)), unsafe.Pointer(unsafe.SliceData(w))
	for k := 0; k < n; k += 32 {
		p, q := unsafe.Add(pw, 2*k), unsafe.Add(px, 4*k)
		w0 := archsimd.LoadInt16x16((*[16]int16)(p)).ExtendToInt32().ShiftAllLeft(16).AsFloat32x16()
		w1 := archsimd.LoadInt16x16((*[16]int16)(unsafe.Add(p, 32))).ExtendToInt32().ShiftAllLeft(16).AsFloat32x16()
		s0 = w0.MulAdd(archsimd.LoadFloat32x16((*[16]float32)(q)), s0)
		s1 = w1.MulAdd(archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(q, 64))), s1)
	}
	return fold(s0.Add(s1))
}

// rowHalf8 covers the first len(x)&^15 columns of an F16 or BF16 row (AVX2).
func rowHalf8(x []float32, w []int16, f16 bool) (int, float32) {
	shift, mask, scale := uint64(16), int32(-1), float32(1)
	if f16 {
		shift, mask, scale = 13, -0x70002000, 0x1p112
	}
	mk := archsimd.BroadcastInt32x8(mask)
	var s0, s1 archsimd.Float32x8
	n := len(x) &^ 15
	_ = w[:n]
	px, pw := unsafe.Pointer(unsafe.SliceData(x)), unsafe.Pointer(unsafe.SliceData(w))
	for k := 0; k < n; k += 16 {
		p, q := unsafe.Add(pw, 2*k), unsafe.Add(px, 4*k)
		w0 := archsimd.LoadInt16x8((*[8]int16)(p)).ExtendToInt32().ShiftAllLeft(shift).And(mk).AsFloat32x8()
		w1 := archsimd.LoadInt16x8((*[8]int16)(unsafe.Add(p, 16))).ExtendToInt32().ShiftAllLeft(shift).And(mk).AsFloat32x8()
		s0 = w0.MulAdd(archsimd.LoadFloat32x8((*[8]float32)(q)), s0)
		s1 = w1.MulAdd(archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(q, 32))), s1)
	}
	return n, hsumPairs(s0.Add(s1)) * scale
}

// rowQ8 is the product of a quantized activation row (xq widened to int16,
// block scales xd) with a Q8_0 weight row (q, d) on 256-bit vectors (AVX2).
func rowQ8(xq []int16, xd []float32, q []int8, d []float32) float32 {
	var s0 archsimd.Float32x8
	nb := len(d)
	_, _, _ = xq[:nb*Q8Block], xd[:nb], q[:nb*Q8Block]
	pq, px := unsafe.Pointer(unsafe.SliceData(q)), unsafe.Pointer(unsafe.SliceData(xq))
	for b := range nb {
		p, r := unsafe.Add(pq, b*Q8Block), unsafe.Add(px, 2*b*Q8Block)
		lo := archsimd.LoadInt8x16((*[16]int8)(p)).ExtendToInt16().DotProductPairs(archsimd.LoadInt16x16((*[16]int16)(r)))
		hi := archsimd.LoadInt8x16((*[16]int8)(unsafe.Add(p, 16))).ExtendToInt16().DotProductPairs(archsimd.LoadInt16x16((*[16]int16)(unsafe.Add(r, 32))))
		s0 = lo.Add(hi).ConvertToFloat32().MulAdd(archsimd.BroadcastFloat32x8(d[b]*xd[b]), s0)
	}
	return hsumPairs(s0)
}

// hsumPairs is the sum of v's eight lanes in hsum4's order, so that a row
// reduced alone (F16, BF16, Q8_0) gets the bits it gets in a block of four.
func hsumPairs(v archsimd.Float32x8) float32 {
	var t [8]float32
	v.Store(&t)
	return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]))
}

// widenRowSIMD writes row i of m (F16, BF16 or Q8_0) as float32 into dst
// (AVX-512), for the panels of a many-row product.
func widenRowSIMD(m *QMatrix, i int, dst []float32) {
	for p := range m.pieces() {
		off, c0, n := m.piece(i, p)
		widenSIMD(m, off, dst[c0:c0+n])
	}
}

// widenSIMD writes the len(dst) stored values of m from offset off on as
// float32 into dst.
func widenSIMD(m *QMatrix, off int, dst []float32) {
	n := len(dst)
	k := 0
	if m.DType == Q8_0 {
		q, d := m.q[off:][:n], m.d[off/Q8Block:][:n/Q8Block]
		for b := range d {
			s := archsimd.BroadcastFloat32x16(d[b])
			for h := 0; h < Q8Block; h += 16 {
				k = b*Q8Block + h
				archsimd.LoadInt8x16Slice(q[k : k+16]).ExtendToInt32().ConvertToFloat32().Mul(s).StoreSlice(dst[k : k+16])
			}
		}
		return
	}
	w := unsafe.Slice((*int16)(unsafe.Pointer(unsafe.SliceData(m.h))), len(m.h))[off:][:n]
	if m.DType == F16 {
		mk, s := archsimd.BroadcastInt32x16(-0x70002000), archsimd.BroadcastFloat32x16(0x1p112)
		for ; k+16 <= n; k += 16 {
			archsimd.LoadInt16x16Slice(w[k : k+16]).ExtendToInt32().ShiftAllLeft(13).And(mk).AsFloat32x16().Mul(s).StoreSlice(dst[k : k+16])
		}
	} else {
		for ; k+16 <= n; k += 16 {
			archsimd.LoadInt16x16Slice(w[k : k+16]).ExtendToInt32().ShiftAllLeft(16).AsFloat32x16().StoreSlice(dst[k : k+16])
		}
	}
	for ; k < n; k++ {
		if m.DType == F16 {
			dst[k] = F16ToF32(uint16(w[k]))
		} else {
			dst[k] = BF16ToF32(uint16(w[k]))
		}
	}
}
