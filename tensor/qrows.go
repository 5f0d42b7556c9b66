package tensor

import "sync"

// The activations of a few rows' Q8_0 products, quantized, and the portable
// row kernel of QMatrix.MulT.

// q8Acts holds activation rows quantized to Q8_0 blocks: the int8 values
// (s), the same widened to int16 (q, for the AVX2 multiply-add), each block's
// scale (d) and, for the AVX-512 kernel, each scale repeated eight times
// (e: a block's lanes after its pairs of pairs are summed); on AVX-512,
// each block's -128·Σx for the kernels over strips (c: the start of the
// integer sum with weights stored +128).
type q8Acts struct {
	s []int8
	q []int16
	d []float32
	e []float32
	c []int32
}

var q8ActPool = sync.Pool{New: func() any { return &q8Acts{} }}

func quantizeActs(x []float32, M, cols int) *q8Acts {
	a := q8ActPool.Get().(*q8Acts)
	n := M * cols
	if cap(a.q) < n {
		a.s, a.q, a.d, a.e, a.c = make([]int8, n), make([]int16, n), make([]float32, n/Q8Block), make([]float32, n/Q8Block*8), make([]int32, n/Q8Block)
	}
	a.s, a.q, a.d, a.e, a.c = a.s[:n], a.q[:n], a.d[:n/Q8Block], a.e[:n/Q8Block*8], a.c[:n/Q8Block]
	// The AVX-512 kernels read s, d and e; the AVX2 and portable ones q and d.
	// On AVX-512 the blocks are quantized on vectors (the same values,
	// TestQuantizeBlockSIMD): the scalar loop took 1.3 µs for a row of 576,
	// a tenth of a 576 × 576 product's time on one thread.
	wide := level >= levelAVX512
	for b := range a.d {
		q := a.s[b*Q8Block:][:Q8Block]
		if wide {
			var sum int32
			a.d[b], sum = quantizeBlockSIMD(q, x[b*Q8Block:])
			a.c[b] = -128 * sum
		} else {
			a.d[b] = F16ToF32(QuantizeQ8Block(q, x[b*Q8Block:]))
			dst := a.q[b*Q8Block:][:Q8Block]
			for i, v := range q {
				dst[i] = int16(v)
			}
		}
		for i := range 8 {
			a.e[8*b+i] = a.d[b]
		}
	}
	return a
}

// qRowsGo computes outputs lo..hi-1 of every activation row (portable).
func qRowsGo(m *QMatrix, y, x []float32, a *q8Acts, M, lo, hi int, beta float32) {
	t := f16Table()
	nb := m.Cols / Q8Block
	for o := lo; o < hi; o++ {
		for r := range M {
			var s float32
			for p := range m.pieces() {
				w, c0, n := m.piece(o, p)
				xr := x[r*m.Cols+c0:][:n]
				switch m.DType {
				case F32:
					for k, v := range m.f[w : w+n] {
						s += v * xr[k]
					}
				case F16:
					for k, h := range m.h[w : w+n] {
						s += t[h] * xr[k]
					}
				case BF16:
					for k, h := range m.h[w : w+n] {
						s += BF16ToF32(h) * xr[k]
					}
				case Q8_0:
					for b := range n / Q8Block {
						var is int32
						xb := r*nb + c0/Q8Block + b
						wq, xq := m.q[w+b*Q8Block:][:Q8Block], a.q[xb*Q8Block:][:Q8Block]
						for k := range wq {
							is += int32(wq[k]) * int32(xq[k])
						}
						s += float32(is) * (m.d[w/Q8Block+b] * a.d[xb])
					}
				}
			}
			if beta != 0 {
				s += y[r*m.Rows+o]
			}
			y[r*m.Rows+o] = s
		}
	}
}
