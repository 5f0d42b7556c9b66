//go:build goexperiment.simd && amd64

package tensor

import (
	"simd/archsimd"
	"sync"
)

// bf16dot4x4, bf16dot4x1, f16dot4x4 and f16dot4x1 are in halfdot_amd64.s.
//
//go:noescape
func bf16dot4x4(n32 int, a *uint16, lda int, b *uint16, ldb int, c *float32, ldc int, acc bool, pf *uint16)

//go:noescape
func bf16dot4x1(n32 int, a *uint16, b *uint16, ldb int, c *float32, acc bool, pf *uint16)

//go:noescape
func f16dot4x4(n16 int, a *float32, lda int, b *uint16, ldb int, c *float32, ldc int, acc bool, pf *uint16)

//go:noescape
func f16dot4x1(n16 int, a *float32, b *uint16, ldb int, c *float32, acc bool, pf *uint16)

// halfDotOK reports whether mulHalfDot runs for m: on AVX-512, a matrix of
// a multiple of 4 rows that is BF16 with rows (and row pieces) a multiple
// of 32 long on AVX512-BF16, or F16 with whole rows (not in pieces) a
// multiple of 16 long.
func halfDotOK(m *QMatrix) bool {
	if level < levelAVX512 || m.Rows%4 != 0 {
		return false
	}
	switch m.DType {
	case BF16:
		return haveBF16 && m.Cols%32 == 0 && pieceCols%32 == 0
	case F16:
		return m.Cols%16 == 0 && m.pieces() == 1
	}
	return false
}

// mulHalfDot is MulTOn for a BF16 or F16 matrix and a batch of activation
// rows (a decoding step of several sequences): every output is a dot
// product of a weight row read in place with an activation row, its 16
// lanes reduced at the end, four weight rows × four activation rows a
// kernel call; weight rows are shared out in groups of four over t (or
// every thread when t is nil). The panels (mulPanels) would first widen or
// repack the weights for only a few activation rows.
//   - BF16: the activations are rounded to BF16 (as mulBF16Tiles and
//     llama.cpp round them for BF16 weights), 32 columns a step by
//     VDPBF16PS (bf16dot4x4).
//   - F16: the weights are widened as they are loaded (f16dot4x4): the
//     bits of the panels' product where its Gemm takes dot products (at
//     least 64 rows and columns: dot4x4 over the widened rows).
//
// An output's sum does not depend on the split or on the other rows.
func (m *QMatrix) mulHalfDot(t *Team, y, x []float32, M int, beta float32) {
	K, N := m.Cols, m.Rows
	var xb []uint16
	if m.DType == BF16 {
		xp := bf16ActsPool.Get().(*[]uint16)
		defer bf16ActsPool.Put(xp)
		*xp = grown(*xp, M*K)
		xb = *xp
		for r := range M {
			roundBF16Row(xb[r*K:(r+1)*K], x[r*K:(r+1)*K])
		}
	}
	groups := N / 4
	rows := func(lo, hi int) { // groups [lo, hi)
		for p := range m.pieces() {
			acc := beta != 0 || p > 0
			for g := lo; g < hi; g++ {
				o := 4 * g
				off, c0, w := m.piece(o, p)
				next := off // the next group's rows, or these again at the end
				if g+1 < groups {
					next, _, _ = m.piece(o+4, p)
				}
				b, pf := &m.h[off], &m.h[next]
				r := 0
				if xb != nil {
					for ; r+4 <= M; r += 4 {
						bf16dot4x4(w/32, &xb[r*K+c0], K, b, w, &y[r*N+o], N, acc, pf)
					}
					for ; r < M; r++ {
						bf16dot4x1(w/32, &xb[r*K+c0], b, w, &y[r*N+o], acc, pf)
					}
					continue
				}
				for ; r+4 <= M; r += 4 {
					f16dot4x4(w/16, &x[r*K+c0], K, b, w, &y[r*N+o], N, acc, pf)
				}
				for ; r < M; r++ {
					f16dot4x1(w/16, &x[r*K+c0], b, w, &y[r*N+o], acc, pf)
				}
			}
		}
	}
	if t == nil {
		ParallelFor(groups, max(1, (1<<15)/K), rows)
		return
	}
	// Four items a matrix, two a thread: measured on a 16-user decoding
	// step of the 180M model (BF16, two threads), 26.3–26.4 ms with 2 or 4
	// items, 27.8 with 16 and 31.7 with mulF32On's 40–256 (F16: 33.7–34.0,
	// 35.1, 40.0) — long runs of rows stream better, and the F32 product's
	// split made no difference to it.
	n := min(groups, 4)
	t.For(n, func(_, i int) { rows(i*groups/n, (i+1)*groups/n) })
}

var bf16ActsPool = sync.Pool{New: func() any { return new([]uint16) }}

// roundBF16Row sets dst[i] to src[i] rounded to BF16 as F32ToBF16 rounds
// it (NaNs aside: garbage in a product anyway), 16 values a step.
func roundBF16Row(dst []uint16, src []float32) {
	i := 0
	for ; i+16 <= len(src); i += 16 {
		roundBF16x16(src[i : i+16]).StoreSlice(dst[i : i+16])
	}
	for ; i < len(src); i++ {
		dst[i] = F32ToBF16(src[i])
	}
}

// roundBF16x16 is x[:16] rounded to BF16 as F32ToBF16 rounds it (to
// nearest, ties to even; NaNs aside).
func roundBF16x16(x []float32) archsimd.Uint16x16 {
	one, half := archsimd.BroadcastUint32x16(1), archsimd.BroadcastUint32x16(0x7fff)
	b := archsimd.LoadFloat32x16Slice(x[:16]).AsUint32x16()
	return b.Add(half).Add(b.ShiftAllRight(16).And(one)).ShiftAllRight(16).TruncateToUint16()
}
