//go:build goexperiment.simd && amd64

package tensor

import "simd/archsimd"

// dotNT computes C = A B^T + beta C when the rows of A and of B are both
// contiguous in k (decoding's x W^T, and attention's P V once V is
// transposed): every output is a dot product. Four rows of B meet four rows
// of A per pass where K is a multiple of 16 (dot4x4, in assembly: 16 sums in
// registers, half a load per FMA), then two (dot2x4w), then one; every sum
// is formed in dot1x4w's order, so a row's bits do not depend on the rows
// beside it. (Written with archsimd, passes wider than one row of A measured
// 2x slower: the live vectors exceeded the registers the compiler used.)
func dotNT(M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	wide := level >= levelAVX512 && K >= 16
	acc := beta != 0
	if wide && K%16 == 0 && M >= 4 && N >= 4 {
		// the last element of A and of C that dot4x4 (assembly) touches
		_, _ = a[(M-1)*lda+K-1], c[(M-1)*ldc+N-1]
	}
	n := 0
	if K == 8 {
		// Head size 8 (decoding's q K^T): a whole dot product is one vector
		// multiply, and eight of them reduce into one vector of outputs.
		for ; n+8 <= N; n += 8 {
			bn := b[n*ldb:]
			for i := range M {
				x := archsimd.LoadFloat32x8Slice(a[i*lda:][:8])
				h := hsum8(
					archsimd.LoadFloat32x8Slice(bn[:8]).Mul(x),
					archsimd.LoadFloat32x8Slice(bn[ldb:][:8]).Mul(x),
					archsimd.LoadFloat32x8Slice(bn[2*ldb:][:8]).Mul(x),
					archsimd.LoadFloat32x8Slice(bn[3*ldb:][:8]).Mul(x),
					archsimd.LoadFloat32x8Slice(bn[4*ldb:][:8]).Mul(x),
					archsimd.LoadFloat32x8Slice(bn[5*ldb:][:8]).Mul(x),
					archsimd.LoadFloat32x8Slice(bn[6*ldb:][:8]).Mul(x),
					archsimd.LoadFloat32x8Slice(bn[7*ldb:][:8]).Mul(x))
				st8(c[i*ldc+n:], h, acc)
			}
		}
	}
	for ; n+4 <= N; n += 4 {
		b0, b1, b2, b3 := b[n*ldb:][:K], b[(n+1)*ldb:][:K], b[(n+2)*ldb:][:K], b[(n+3)*ldb:][:K]
		i := 0
		if wide && K%16 == 0 {
			pf := b0 // the next group of B, or this one again at the end
			if n+8 <= N {
				pf = b[(n+4)*ldb:]
			}
			for ; i+4 <= M; i += 4 {
				dot4x4(K/16, &a[i*lda], lda, &b0[0], ldb, &c[i*ldc+n], ldc, acc, &pf[0])
			}
		}
		for ; wide && i+2 <= M; i += 2 {
			r0, r1 := dot2x4w(a[i*lda:][:K], a[(i+1)*lda:][:K], b0, b1, b2, b3)
			st4(c[i*ldc+n:], r0, acc)
			st4(c[(i+1)*ldc+n:], r1, acc)
		}
		for ; i < M; i++ {
			a0 := a[i*lda:][:K]
			var r0 archsimd.Float32x4
			if wide {
				r0 = dot1x4w(a0, b0, b1, b2, b3)
			} else {
				r0 = dot1x4(a0, b0, b1, b2, b3)
			}
			st4(c[i*ldc+n:], r0, acc)
		}
	}
	for ; n < N; n++ {
		bn := b[n*ldb:][:K]
		for i := range M {
			s := dotSIMD(a[i*lda:][:K], bn)
			if acc {
				s += c[i*ldc+n]
			}
			c[i*ldc+n] = s
		}
	}
}

// st4 stores v to c[:4], adding what is there when acc.
func st4(c []float32, v archsimd.Float32x4, acc bool) {
	if acc {
		v = v.Add(archsimd.LoadFloat32x4Slice(c))
	}
	v.StoreSlice(c)
}

// hsum8 returns the vector of the horizontal sums of s0..s7.
func hsum8(s0, s1, s2, s3, s4, s5, s6, s7 archsimd.Float32x8) archsimd.Float32x8 {
	// Within each 128-bit half: [sum s0, sum s1, sum s2, sum s3] of that half.
	q0 := s0.AddPairsGrouped(s1).AddPairsGrouped(s2.AddPairsGrouped(s3))
	q1 := s4.AddPairsGrouped(s5).AddPairsGrouped(s6.AddPairsGrouped(s7))
	lo := q0.Select128FromPair(0, 2, q1) // low halves of q0, q1
	hi := q0.Select128FromPair(1, 3, q1) // high halves of q0, q1
	return lo.Add(hi)
}

// hsum4 returns the horizontal sums of s0..s3 as one vector.
func hsum4(s0, s1, s2, s3 archsimd.Float32x8) archsimd.Float32x4 {
	// Per 128-bit half: [sum s0, sum s1, sum s2, sum s3] over that half.
	q := s0.AddPairsGrouped(s1).AddPairsGrouped(s2.AddPairsGrouped(s3))
	return q.GetLo().Add(q.GetHi())
}

// fold adds the two 256-bit halves of v.
func fold(v archsimd.Float32x16) archsimd.Float32x8 { return v.GetLo().Add(v.GetHi()) }

// dot1x4 returns [a0.b0, a0.b1, a0.b2, a0.b3] (AVX2).
func dot1x4(a0, b0, b1, b2, b3 []float32) archsimd.Float32x4 {
	b0, b1, b2, b3 = b0[:len(a0)], b1[:len(a0)], b2[:len(a0)], b3[:len(a0)]
	var s0, s1, s2, s3 archsimd.Float32x8
	k := 0
	for ; k+8 <= len(a0); k += 8 {
		x := archsimd.LoadFloat32x8Slice(a0[k : k+8])
		s0 = archsimd.LoadFloat32x8Slice(b0[k:k+8]).MulAdd(x, s0)
		s1 = archsimd.LoadFloat32x8Slice(b1[k:k+8]).MulAdd(x, s1)
		s2 = archsimd.LoadFloat32x8Slice(b2[k:k+8]).MulAdd(x, s2)
		s3 = archsimd.LoadFloat32x8Slice(b3[k:k+8]).MulAdd(x, s3)
	}
	if k < len(a0) {
		x := loadPart8(a0[k:])
		s0 = loadPart8(b0[k:]).MulAdd(x, s0)
		s1 = loadPart8(b1[k:]).MulAdd(x, s1)
		s2 = loadPart8(b2[k:]).MulAdd(x, s2)
		s3 = loadPart8(b3[k:]).MulAdd(x, s3)
	}
	return hsum4(s0, s1, s2, s3)
}

// dot1x4w is dot1x4 on 16 lanes (AVX-512).
func dot1x4w(a0, b0, b1, b2, b3 []float32) archsimd.Float32x4 {
	b0, b1, b2, b3 = b0[:len(a0)], b1[:len(a0)], b2[:len(a0)], b3[:len(a0)]
	var s0, s1, s2, s3 archsimd.Float32x16
	k := 0
	for ; k+16 <= len(a0); k += 16 {
		x := archsimd.LoadFloat32x16Slice(a0[k : k+16])
		s0 = archsimd.LoadFloat32x16Slice(b0[k:k+16]).MulAdd(x, s0)
		s1 = archsimd.LoadFloat32x16Slice(b1[k:k+16]).MulAdd(x, s1)
		s2 = archsimd.LoadFloat32x16Slice(b2[k:k+16]).MulAdd(x, s2)
		s3 = archsimd.LoadFloat32x16Slice(b3[k:k+16]).MulAdd(x, s3)
	}
	if k < len(a0) {
		x := loadPart16(a0[k:])
		s0 = loadPart16(b0[k:]).MulAdd(x, s0)
		s1 = loadPart16(b1[k:]).MulAdd(x, s1)
		s2 = loadPart16(b2[k:]).MulAdd(x, s2)
		s3 = loadPart16(b3[k:]).MulAdd(x, s3)
	}
	return hsum4(fold(s0), fold(s1), fold(s2), fold(s3))
}

// dot4x4 is four rows of A (lda apart) against four of B (ldb apart,
// from b), n16 blocks of 16 each, to C[i][0:4] (ldc apart; added to it
// when acc) with dot1x4w's bits (gemmk_amd64.s); pf's four rows, ldb
// apart, are prefetched.
//
//go:noescape
func dot4x4(n16 int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc bool, pf *float32)

// dot2x4Acc is dot2x4w's main loop over n16 blocks of 16 (gemmk_amd64.s):
// the eight sums' lanes, s00..s03 then s10..s13, to out[0:128].
//
//go:noescape
func dot2x4Acc(n16 int, a0, a1, b0, b1, b2, b3 *float32, out *float32)

// dot2x4w returns the 2×4 dot products of a0, a1 with b0..b3 as two
// vectors, r[i] = [ai.b0, ai.b1, ai.b2, ai.b3] (AVX-512): each B vector
// feeds two multiply-adds where dot1x4w's feeds one, and the eight sums, four
// B vectors and one A vector still fit in the registers the compiler uses.
// Every sum is formed in the same order as dot1x4w's, so a row's results do
// not depend on the row it is paired with.
func dot2x4w(a0, a1, b0, b1, b2, b3 []float32) (r0, r1 archsimd.Float32x4) {
	K := len(a0)
	a1 = a1[:K]
	b0, b1, b2, b3 = b0[:K], b1[:K], b2[:K], b3[:K]
	k := K &^ 15
	var sums [128]float32
	if k > 0 {
		dot2x4Acc(k/16, &a0[0], &a1[0], &b0[0], &b1[0], &b2[0], &b3[0], &sums[0])
	}
	ld := func(i int) archsimd.Float32x16 { return archsimd.LoadFloat32x16Slice(sums[16*i : 16*i+16]) }
	s00, s01, s02, s03, s10, s11, s12, s13 := ld(0), ld(1), ld(2), ld(3), ld(4), ld(5), ld(6), ld(7)
	if k < K {
		y0, y1, y2, y3 := loadPart16(b0[k:]), loadPart16(b1[k:]), loadPart16(b2[k:]), loadPart16(b3[k:])
		x := loadPart16(a0[k:])
		s00, s01, s02, s03 = y0.MulAdd(x, s00), y1.MulAdd(x, s01), y2.MulAdd(x, s02), y3.MulAdd(x, s03)
		x = loadPart16(a1[k:])
		s10, s11, s12, s13 = y0.MulAdd(x, s10), y1.MulAdd(x, s11), y2.MulAdd(x, s12), y3.MulAdd(x, s13)
	}
	return hsum4(fold(s00), fold(s01), fold(s02), fold(s03)), hsum4(fold(s10), fold(s11), fold(s12), fold(s13))
}
