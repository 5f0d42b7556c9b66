//go:build goexperiment.simd && amd64

package tensor

import (
	"fmt"
	"simd/archsimd"
)

// packPanels packs the panels [lo, hi) of the job that are marked packed.
func (j *gemmJob) packPanels(lo, hi int) {
	for i := lo; i < hi; i++ {
		if p := &j.ps[i]; p.packed {
			packB(j.packTransB, j.K, p.j0, p.w, p.nr, j.packSrc, j.packLdb, p.b)
		}
	}
	clearUpper()
}

// packRows32 copies k rows of 32 floats, ld apart, to dst (gemmk_amd64.s).
//
//go:noescape
func packRows32(k int, src *float32, ld int, dst *float32)

// packB writes columns [j0, j0+w) of op(B) into dst k-major with row length
// nr, zero-padding columns w..nr-1.
func packB(transB bool, K, j0, w, nr int, b []float32, ldb int, dst []float32) {
	if !transB && w == nr && nr == 32 && level >= levelAVX512 {
		if K > 0 && (len(b) < (K-1)*ldb+j0+32 || len(dst) < K*32) {
			panic(fmt.Sprintf("tensor: packB: %d rows of 32 from %d floats (stride %d, column %d) to %d", K, len(b), ldb, j0, len(dst)))
		}
		if K > 0 {
			packRows32(K, &b[j0], ldb, &dst[0])
		}
		return
	}
	if !transB && w == nr {
		// Whole rows of the panel: vector moves, not a memmove call per row.
		for k := range K {
			src, row := b[k*ldb+j0:k*ldb+j0+nr], dst[k*nr:k*nr+nr]
			for j := 0; j+8 <= len(row); j += 8 {
				archsimd.LoadFloat32x8Slice(src[j : j+8]).StoreSlice(row[j : j+8])
			}
		}
		return
	}
	if !transB {
		for k := range K {
			row := dst[k*nr : k*nr+nr]
			copy(row, b[k*ldb+j0:k*ldb+j0+w])
			clear(row[w:])
		}
		return
	}
	if w < nr {
		clear(dst)
	}
	transposeTo(b[j0*ldb:], ldb, w, K, dst, nr)
}

// transpose8 writes the transpose of the 8x8 block t[n*ld+i] (n, i < 8) to
// c[i*ldc+n], adding to c when acc. Three rounds of shuffles (VSHUFPS twice,
// then VPERM2F128) instead of 64 scalar moves.
func transpose8(t []float32, ld int, c []float32, ldc int, acc bool) {
	r0, r1 := archsimd.LoadFloat32x8Slice(t[0:8]), archsimd.LoadFloat32x8Slice(t[ld:ld+8])
	r2, r3 := archsimd.LoadFloat32x8Slice(t[2*ld:2*ld+8]), archsimd.LoadFloat32x8Slice(t[3*ld:3*ld+8])
	r4, r5 := archsimd.LoadFloat32x8Slice(t[4*ld:4*ld+8]), archsimd.LoadFloat32x8Slice(t[5*ld:5*ld+8])
	r6, r7 := archsimd.LoadFloat32x8Slice(t[6*ld:6*ld+8]), archsimd.LoadFloat32x8Slice(t[7*ld:7*ld+8])
	// Per 128-bit half: [r0_0 r0_1 r1_0 r1_1], [r0_2 r0_3 r1_2 r1_3], ...
	a0, a1 := r0.SelectFromPairGrouped(0, 1, 4, 5, r1), r0.SelectFromPairGrouped(2, 3, 6, 7, r1)
	a2, a3 := r2.SelectFromPairGrouped(0, 1, 4, 5, r3), r2.SelectFromPairGrouped(2, 3, 6, 7, r3)
	a4, a5 := r4.SelectFromPairGrouped(0, 1, 4, 5, r5), r4.SelectFromPairGrouped(2, 3, 6, 7, r5)
	a6, a7 := r6.SelectFromPairGrouped(0, 1, 4, 5, r7), r6.SelectFromPairGrouped(2, 3, 6, 7, r7)
	// Per half: column j of rows 0-3 ([r0_j r1_j r2_j r3_j]), and of rows 4-7.
	b0, b1 := a0.SelectFromPairGrouped(0, 2, 4, 6, a2), a0.SelectFromPairGrouped(1, 3, 5, 7, a2)
	b2, b3 := a1.SelectFromPairGrouped(0, 2, 4, 6, a3), a1.SelectFromPairGrouped(1, 3, 5, 7, a3)
	b4, b5 := a4.SelectFromPairGrouped(0, 2, 4, 6, a6), a4.SelectFromPairGrouped(1, 3, 5, 7, a6)
	b6, b7 := a5.SelectFromPairGrouped(0, 2, 4, 6, a7), a5.SelectFromPairGrouped(1, 3, 5, 7, a7)
	// Low halves hold columns 0-3, high halves columns 4-7.
	st8(c[0:], b0.Select128FromPair(0, 2, b4), acc)
	st8(c[ldc:], b1.Select128FromPair(0, 2, b5), acc)
	st8(c[2*ldc:], b2.Select128FromPair(0, 2, b6), acc)
	st8(c[3*ldc:], b3.Select128FromPair(0, 2, b7), acc)
	st8(c[4*ldc:], b0.Select128FromPair(1, 3, b4), acc)
	st8(c[5*ldc:], b1.Select128FromPair(1, 3, b5), acc)
	st8(c[6*ldc:], b2.Select128FromPair(1, 3, b6), acc)
	st8(c[7*ldc:], b3.Select128FromPair(1, 3, b7), acc)
}

// load16 loads b[off:off+16], zero-filling past the end of b.
func load16(b []float32, off int) archsimd.Float32x16 {
	if off+16 <= len(b) {
		return archsimd.LoadFloat32x16Slice(b[off : off+16])
	}
	return loadPart16(b[off:])
}

// transposeTo writes the transpose of the rows × cols matrix src[r*lds+c]
// to dst[c*ldd+r]: 8×8 blocks through transpose8, the edges scalar.
func transposeTo(src []float32, lds, rows, cols int, dst []float32, ldd int) {
	r8, c8 := rows/8*8, cols/8*8
	for c := 0; c < c8; c += 8 {
		for r := 0; r < r8; r += 8 {
			transpose8(src[r*lds+c:], lds, dst[c*ldd+r:], ldd, false)
		}
	}
	clearUpper() // scalar code next
	for c := range cols {
		r0 := r8
		if c >= c8 {
			r0 = 0
		}
		for r := r0; r < rows; r++ {
			dst[c*ldd+r] = src[r*lds+c]
		}
	}
}
