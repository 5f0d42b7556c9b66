//go:build goexperiment.simd && amd64

package tensor

import (
	"fmt"
	"simd/archsimd"
)

// Register-blocked micro-kernels of the SIMD matrix multiplication. Each
// computes one MR x NR tile of C from a kc-long slice of the K dimension:
//
//	C[r][j] (+)= sum_k A(r,k) * B(k,j),  r < MR, j < NR
//
// B is always read "k-major": row k of the panel is b[k*sb : k*sb+NR], which
// is either a packed panel (sb = NR) or the caller's row-major B itself
// (sb = ldb). A comes in two forms: "rows" kernels read A(r,k) = a[r*lda+k]
// (op(A) = A), "cols" kernels read A(r,k) = a[k*sa+r] (op(A) = A^T). Each
// call computes ns strips of MR rows one below the other, so the loop over
// strips costs no call. With acc the tile is added to C, otherwise C is
// overwritten without being read, so NaNs already in C do not leak into the
// result (BLAS beta = 0).
//
// The register budget decides the tile: the compiler allocates 15 vector
// registers (X15 is reserved) and its fused multiply-add overwrites a
// multiplicand, so a broadcast used twice costs a register copy. A 4x32 tile
// of Float32x16 keeps 8 accumulators, 2 B vectors and the broadcast in
// registers; 6x32 spills (checked with go build -gcflags=-S).
//
// A spill inside a k loop is a trap beyond its own cost: stack slots of
// 512-bit values are not 64-byte aligned, and when the slot straddles two
// cache lines the reload misses store forwarding. A 4x32 kernel for a
// transposed A spilled one broadcast and ran 3x slower or not depending only
// on the callers' frame sizes; hence the 3-row cols kernels. After changing
// a kernel, check its loop for (SP) operands in the -gcflags=-S listing.

// st16 stores v to c[:16], adding what is there when acc.
func st16(c []float32, v archsimd.Float32x16, acc bool) {
	if acc {
		v = v.Add(archsimd.LoadFloat32x16Slice(c))
	}
	v.StoreSlice(c)
}

// st8 stores v to c[:8], adding what is there when acc.
func st8(c []float32, v archsimd.Float32x8, acc bool) {
	if acc {
		v = v.Add(archsimd.LoadFloat32x8Slice(c))
	}
	v.StoreSlice(c)
}

// k4x32rows is the AVX-512 4x32 kernel with A given as rows: ns strips of
// 4 rows, each element of C a chain of FMAs in k order from zero, added to C
// when acc. It is f32Rows4x32 (gemmk_amd64.s): written in Go, the register
// allocator kept copies of the broadcasts and reloaded pointers from the
// stack every step (~45 instructions per 8 FMAs); the assembly runs two
// strips at a time, 16 FMAs per 2 loads of B and 8 broadcasts from memory.
// The slices' lengths are checked here once, for the assembly's reads and
// writes.
func k4x32rows(ns, kc int, a []float32, lda int, b []float32, sb int, c []float32, ldc int, acc bool) {
	if ns <= 0 {
		return
	}
	if len(a) < (4*ns-1)*lda+kc || (kc > 0 && len(b) < (kc-1)*sb+32) || len(c) < (4*ns-1)*ldc+32 {
		panic(fmt.Sprintf("tensor: k4x32rows: %d strips of %d, slices of %d, %d, %d (strides %d, %d, %d)", ns, kc, len(a), len(b), len(c), lda, sb, ldc))
	}
	var ap, bp *float32
	if len(a) > 0 {
		ap = &a[0]
	}
	if len(b) > 0 {
		bp = &b[0]
	}
	f32Rows4x32(ns, kc, ap, lda, bp, sb, &c[0], ldc, acc)
}

// f32Rows4x32 is k4x32rows without the checks (gemmk_amd64.s).
//
//go:noescape
func f32Rows4x32(ns, kc int, a *float32, lda int, b *float32, sb int, c *float32, ldc int, acc bool)

// k3x32cols is the AVX-512 kernel with A(r,k) = a[k*sa+r], three rows by
// 32 columns. With four rows (as the Go k4x32rows had) the register allocator spilled a
// broadcast every step; when that 64-byte stack slot straddled two cache
// lines the reload missed store forwarding and the kernel ran 3x slower,
// depending only on the caller's frame sizes. Three rows leave room.
func k3x32cols(ns, kc int, a []float32, sa int, b []float32, sb int, c []float32, ldc int, acc bool) {
	for s := range ns {
		var c00, c01, c10, c11, c20, c21 archsimd.Float32x16
		offA, offB := 3*s, 0
		for range kc {
			ak := a[offA : offA+3]
			bk := b[offB : offB+32]
			b0 := archsimd.LoadFloat32x16Slice(bk)
			b1 := archsimd.LoadFloat32x16Slice(bk[16:])
			x := archsimd.BroadcastFloat32x16(ak[0])
			c00 = x.MulAdd(b0, c00)
			c01 = x.MulAdd(b1, c01)
			x = archsimd.BroadcastFloat32x16(ak[1])
			c10 = x.MulAdd(b0, c10)
			c11 = x.MulAdd(b1, c11)
			x = archsimd.BroadcastFloat32x16(ak[2])
			c20 = x.MulAdd(b0, c20)
			c21 = x.MulAdd(b1, c21)
			offA += sa
			offB += sb
		}
		cs := c[3*s*ldc:]
		st16(cs, c00, acc)
		st16(cs[16:], c01, acc)
		st16(cs[ldc:], c10, acc)
		st16(cs[ldc+16:], c11, acc)
		st16(cs[2*ldc:], c20, acc)
		st16(cs[2*ldc+16:], c21, acc)
	}
}

// k4x16wrows is the AVX-512 4x16 kernel with A given as rows, for column
// remainders of 9 to 16 (four chains of FMAs, just enough for their latency).
func k4x16wrows(ns, kc int, a []float32, lda int, b []float32, sb int, c []float32, ldc int, acc bool) {
	for s := range ns {
		as := a[4*s*lda:]
		a0, a1, a2, a3 := as[:kc], as[lda:lda+kc], as[2*lda:2*lda+kc], as[3*lda:3*lda+kc]
		var c0, c1, c2, c3 archsimd.Float32x16
		off := 0
		for k := range a0 {
			bk := archsimd.LoadFloat32x16Slice(b[off : off+16])
			c0 = archsimd.BroadcastFloat32x16(a0[k]).MulAdd(bk, c0)
			c1 = archsimd.BroadcastFloat32x16(a1[k]).MulAdd(bk, c1)
			c2 = archsimd.BroadcastFloat32x16(a2[k]).MulAdd(bk, c2)
			c3 = archsimd.BroadcastFloat32x16(a3[k]).MulAdd(bk, c3)
			off += sb
		}
		cs := c[4*s*ldc:]
		st16(cs, c0, acc)
		st16(cs[ldc:], c1, acc)
		st16(cs[2*ldc:], c2, acc)
		st16(cs[3*ldc:], c3, acc)
	}
}

// k4x16wcols is k4x16wrows with A(r,k) = a[k*sa+r].
func k4x16wcols(ns, kc int, a []float32, sa int, b []float32, sb int, c []float32, ldc int, acc bool) {
	for s := range ns {
		var c0, c1, c2, c3 archsimd.Float32x16
		offA, offB := 4*s, 0
		for range kc {
			ak := a[offA : offA+4]
			bk := archsimd.LoadFloat32x16Slice(b[offB : offB+16])
			c0 = archsimd.BroadcastFloat32x16(ak[0]).MulAdd(bk, c0)
			c1 = archsimd.BroadcastFloat32x16(ak[1]).MulAdd(bk, c1)
			c2 = archsimd.BroadcastFloat32x16(ak[2]).MulAdd(bk, c2)
			c3 = archsimd.BroadcastFloat32x16(ak[3]).MulAdd(bk, c3)
			offA += sa
			offB += sb
		}
		cs := c[4*s*ldc:]
		st16(cs, c0, acc)
		st16(cs[ldc:], c1, acc)
		st16(cs[2*ldc:], c2, acc)
		st16(cs[3*ldc:], c3, acc)
	}
}

// k4x16rows is the AVX2 4x16 kernel with A given as rows.
func k4x16rows(ns, kc int, a []float32, lda int, b []float32, sb int, c []float32, ldc int, acc bool) {
	for s := range ns {
		as := a[4*s*lda:]
		a0, a1, a2, a3 := as[:kc], as[lda:lda+kc], as[2*lda:2*lda+kc], as[3*lda:3*lda+kc]
		var c00, c01, c10, c11, c20, c21, c30, c31 archsimd.Float32x8
		off := 0
		for k := range a0 {
			bk := b[off : off+16]
			b0 := archsimd.LoadFloat32x8Slice(bk)
			b1 := archsimd.LoadFloat32x8Slice(bk[8:])
			x := archsimd.BroadcastFloat32x8(a0[k])
			c00 = x.MulAdd(b0, c00)
			c01 = x.MulAdd(b1, c01)
			x = archsimd.BroadcastFloat32x8(a1[k])
			c10 = x.MulAdd(b0, c10)
			c11 = x.MulAdd(b1, c11)
			x = archsimd.BroadcastFloat32x8(a2[k])
			c20 = x.MulAdd(b0, c20)
			c21 = x.MulAdd(b1, c21)
			x = archsimd.BroadcastFloat32x8(a3[k])
			c30 = x.MulAdd(b0, c30)
			c31 = x.MulAdd(b1, c31)
			off += sb
		}
		st4x16(c[4*s*ldc:], ldc, acc, c00, c01, c10, c11, c20, c21, c30, c31)
	}
}

// k3x16cols is the AVX2 kernel with A(r,k) = a[k*sa+r], three rows by 16
// columns (four spilled a register, see k3x32cols).
func k3x16cols(ns, kc int, a []float32, sa int, b []float32, sb int, c []float32, ldc int, acc bool) {
	for s := range ns {
		var c00, c01, c10, c11, c20, c21 archsimd.Float32x8
		offA, offB := 3*s, 0
		for range kc {
			ak := a[offA : offA+3]
			bk := b[offB : offB+16]
			b0 := archsimd.LoadFloat32x8Slice(bk)
			b1 := archsimd.LoadFloat32x8Slice(bk[8:])
			x := archsimd.BroadcastFloat32x8(ak[0])
			c00 = x.MulAdd(b0, c00)
			c01 = x.MulAdd(b1, c01)
			x = archsimd.BroadcastFloat32x8(ak[1])
			c10 = x.MulAdd(b0, c10)
			c11 = x.MulAdd(b1, c11)
			x = archsimd.BroadcastFloat32x8(ak[2])
			c20 = x.MulAdd(b0, c20)
			c21 = x.MulAdd(b1, c21)
			offA += sa
			offB += sb
		}
		cs := c[3*s*ldc:]
		st8(cs, c00, acc)
		st8(cs[8:], c01, acc)
		st8(cs[ldc:], c10, acc)
		st8(cs[ldc+8:], c11, acc)
		st8(cs[2*ldc:], c20, acc)
		st8(cs[2*ldc+8:], c21, acc)
	}
}

func st4x16(c []float32, ldc int, acc bool, c00, c01, c10, c11, c20, c21, c30, c31 archsimd.Float32x8) {
	st8(c[0:], c00, acc)
	st8(c[8:], c01, acc)
	st8(c[ldc:], c10, acc)
	st8(c[ldc+8:], c11, acc)
	st8(c[2*ldc:], c20, acc)
	st8(c[2*ldc+8:], c21, acc)
	st8(c[3*ldc:], c30, acc)
	st8(c[3*ldc+8:], c31, acc)
}

// k6x8rows is the 6x8 kernel for narrow column panels (8 or fewer
// columns), A given as rows. Each broadcast is used once, so it needs no
// register copy; eight rows would need 8 accumulators + 8 broadcasts + B,
// more than the 15 registers, and spill accumulators every step.
func k6x8rows(ns, kc int, a []float32, lda int, b []float32, sb int, c []float32, ldc int, acc bool) {
	for s := range ns {
		as := a[6*s*lda:]
		a0, a1, a2 := as[:kc], as[lda:lda+kc], as[2*lda:2*lda+kc]
		a3, a4, a5 := as[3*lda:3*lda+kc], as[4*lda:4*lda+kc], as[5*lda:5*lda+kc]
		var c0, c1, c2, c3, c4, c5 archsimd.Float32x8
		off := 0
		for k := range a0 {
			bk := archsimd.LoadFloat32x8Slice(b[off : off+8])
			c0 = archsimd.BroadcastFloat32x8(a0[k]).MulAdd(bk, c0)
			c1 = archsimd.BroadcastFloat32x8(a1[k]).MulAdd(bk, c1)
			c2 = archsimd.BroadcastFloat32x8(a2[k]).MulAdd(bk, c2)
			c3 = archsimd.BroadcastFloat32x8(a3[k]).MulAdd(bk, c3)
			c4 = archsimd.BroadcastFloat32x8(a4[k]).MulAdd(bk, c4)
			c5 = archsimd.BroadcastFloat32x8(a5[k]).MulAdd(bk, c5)
			off += sb
		}
		st6x8(c[6*s*ldc:], ldc, acc, c0, c1, c2, c3, c4, c5)
	}
}

// k6x8cols is the 6x8 kernel with A(r,k) = a[k*sa+r].
func k6x8cols(ns, kc int, a []float32, sa int, b []float32, sb int, c []float32, ldc int, acc bool) {
	for s := range ns {
		var c0, c1, c2, c3, c4, c5 archsimd.Float32x8
		offA, offB := 6*s, 0
		for range kc {
			ak := a[offA : offA+6]
			bk := archsimd.LoadFloat32x8Slice(b[offB : offB+8])
			c0 = archsimd.BroadcastFloat32x8(ak[0]).MulAdd(bk, c0)
			c1 = archsimd.BroadcastFloat32x8(ak[1]).MulAdd(bk, c1)
			c2 = archsimd.BroadcastFloat32x8(ak[2]).MulAdd(bk, c2)
			c3 = archsimd.BroadcastFloat32x8(ak[3]).MulAdd(bk, c3)
			c4 = archsimd.BroadcastFloat32x8(ak[4]).MulAdd(bk, c4)
			c5 = archsimd.BroadcastFloat32x8(ak[5]).MulAdd(bk, c5)
			offA += sa
			offB += sb
		}
		st6x8(c[6*s*ldc:], ldc, acc, c0, c1, c2, c3, c4, c5)
	}
}

func st6x8(c []float32, ldc int, acc bool, c0, c1, c2, c3, c4, c5 archsimd.Float32x8) {
	st8(c[0:], c0, acc)
	st8(c[ldc:], c1, acc)
	st8(c[2*ldc:], c2, acc)
	st8(c[3*ldc:], c3, acc)
	st8(c[4*ldc:], c4, acc)
	st8(c[5*ldc:], c5, acc)
}
