//go:build goexperiment.simd && amd64

package tensor

import (
	"simd/archsimd"
)

// axpyNN computes C = A B + beta C for a few rows of A (decoding): row i of
// C accumulates A[i,k] times row k of B, 64 columns at a time on AVX-512
// and 32 on AVX2, then 8 with the K loop unrolled by four for independent
// sums, then the last few in scalar code.
func axpyNN(M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := range M {
		ai := a[i*lda : i*lda+K]
		ci := c[i*ldc : i*ldc+N]
		n := 0
		if level >= levelAVX512 {
			for ; n+64 <= N; n += 64 {
				var s0, s1, s2, s3 archsimd.Float32x16
				if beta != 0 {
					s0 = archsimd.LoadFloat32x16Slice(ci[n : n+16])
					s1 = archsimd.LoadFloat32x16Slice(ci[n+16 : n+32])
					s2 = archsimd.LoadFloat32x16Slice(ci[n+32 : n+48])
					s3 = archsimd.LoadFloat32x16Slice(ci[n+48 : n+64])
				}
				off := n
				for _, av := range ai {
					bk := b[off : off+64]
					x := archsimd.BroadcastFloat32x16(av)
					s0 = x.MulAdd(archsimd.LoadFloat32x16Slice(bk[0:16]), s0)
					s1 = x.MulAdd(archsimd.LoadFloat32x16Slice(bk[16:32]), s1)
					s2 = x.MulAdd(archsimd.LoadFloat32x16Slice(bk[32:48]), s2)
					s3 = x.MulAdd(archsimd.LoadFloat32x16Slice(bk[48:64]), s3)
					off += ldb
				}
				s0.StoreSlice(ci[n : n+16])
				s1.StoreSlice(ci[n+16 : n+32])
				s2.StoreSlice(ci[n+32 : n+48])
				s3.StoreSlice(ci[n+48 : n+64])
			}
			if n+32 <= N {
				// 32 columns: even and odd k in separate sums, four FMA chains.
				var s0, s1, t0, t1 archsimd.Float32x16
				if beta != 0 {
					s0 = archsimd.LoadFloat32x16Slice(ci[n : n+16])
					s1 = archsimd.LoadFloat32x16Slice(ci[n+16 : n+32])
				}
				k, off := 0, n
				for ; k+2 <= len(ai); k += 2 {
					bk, bk1 := b[off:off+32], b[off+ldb:off+ldb+32]
					x, y := archsimd.BroadcastFloat32x16(ai[k]), archsimd.BroadcastFloat32x16(ai[k+1])
					s0 = x.MulAdd(archsimd.LoadFloat32x16Slice(bk[0:16]), s0)
					s1 = x.MulAdd(archsimd.LoadFloat32x16Slice(bk[16:32]), s1)
					t0 = y.MulAdd(archsimd.LoadFloat32x16Slice(bk1[0:16]), t0)
					t1 = y.MulAdd(archsimd.LoadFloat32x16Slice(bk1[16:32]), t1)
					off += 2 * ldb
				}
				if k < len(ai) {
					bk := b[off : off+32]
					x := archsimd.BroadcastFloat32x16(ai[k])
					s0 = x.MulAdd(archsimd.LoadFloat32x16Slice(bk[0:16]), s0)
					s1 = x.MulAdd(archsimd.LoadFloat32x16Slice(bk[16:32]), s1)
				}
				s0.Add(t0).StoreSlice(ci[n : n+16])
				s1.Add(t1).StoreSlice(ci[n+16 : n+32])
				n += 32
			}
			for N-n > 8 {
				// Up to 16 columns: whole vectors are loaded from B (the lanes
				// past N hold the next row, or zeros at the end of b) and only
				// the w valid lanes are stored.
				w := min(16, N-n)
				var s0, t0 archsimd.Float32x16
				if beta != 0 {
					s0 = loadPart16(ci[n : n+w])
				}
				k, off := 0, n
				for ; k+2 <= len(ai); k += 2 {
					s0 = archsimd.BroadcastFloat32x16(ai[k]).MulAdd(load16(b, off), s0)
					t0 = archsimd.BroadcastFloat32x16(ai[k+1]).MulAdd(load16(b, off+ldb), t0)
					off += 2 * ldb
				}
				if k < len(ai) {
					s0 = archsimd.BroadcastFloat32x16(ai[k]).MulAdd(load16(b, off), s0)
				}
				if s0 = s0.Add(t0); w == 16 {
					s0.StoreSlice(ci[n : n+16])
				} else {
					var t [16]float32
					s0.Store(&t)
					copy(ci[n:n+w], t[:w])
				}
				n += w
			}
		}
		for ; n+32 <= N; n += 32 {
			var s0, s1, s2, s3 archsimd.Float32x8
			if beta != 0 {
				s0 = archsimd.LoadFloat32x8Slice(ci[n:])
				s1 = archsimd.LoadFloat32x8Slice(ci[n+8:])
				s2 = archsimd.LoadFloat32x8Slice(ci[n+16:])
				s3 = archsimd.LoadFloat32x8Slice(ci[n+24:])
			}
			off := n
			for _, av := range ai {
				bk := b[off : off+32]
				x := archsimd.BroadcastFloat32x8(av)
				s0 = x.MulAdd(archsimd.LoadFloat32x8Slice(bk), s0)
				s1 = x.MulAdd(archsimd.LoadFloat32x8Slice(bk[8:]), s1)
				s2 = x.MulAdd(archsimd.LoadFloat32x8Slice(bk[16:]), s2)
				s3 = x.MulAdd(archsimd.LoadFloat32x8Slice(bk[24:]), s3)
				off += ldb
			}
			s0.StoreSlice(ci[n:])
			s1.StoreSlice(ci[n+8:])
			s2.StoreSlice(ci[n+16:])
			s3.StoreSlice(ci[n+24:])
		}
		for ; n+8 <= N; n += 8 {
			var s0, s1, s2, s3 archsimd.Float32x8
			if beta != 0 {
				s0 = archsimd.LoadFloat32x8Slice(ci[n : n+8])
			}
			k, off := 0, n
			for ; k+4 <= len(ai); k += 4 {
				s0 = archsimd.BroadcastFloat32x8(ai[k]).MulAdd(archsimd.LoadFloat32x8Slice(b[off:off+8]), s0)
				s1 = archsimd.BroadcastFloat32x8(ai[k+1]).MulAdd(archsimd.LoadFloat32x8Slice(b[off+ldb:off+ldb+8]), s1)
				s2 = archsimd.BroadcastFloat32x8(ai[k+2]).MulAdd(archsimd.LoadFloat32x8Slice(b[off+2*ldb:off+2*ldb+8]), s2)
				s3 = archsimd.BroadcastFloat32x8(ai[k+3]).MulAdd(archsimd.LoadFloat32x8Slice(b[off+3*ldb:off+3*ldb+8]), s3)
				off += 4 * ldb
			}
			for ; k < len(ai); k++ {
				s0 = archsimd.BroadcastFloat32x8(ai[k]).MulAdd(archsimd.LoadFloat32x8Slice(b[off:off+8]), s0)
				off += ldb
			}
			s0.Add(s1).Add(s2.Add(s3)).StoreSlice(ci[n : n+8])
		}
		if n < N {
			// Fewer than 8 columns left: scalar, as a partial vector load per k
			// would cost more.
			cr := ci[n:]
			clearUpper() // scalar code next
			if beta == 0 {
				clear(cr)
			}
			off := n
			for _, av := range ai {
				for jj, bv := range b[off : off+len(cr)] {
					cr[jj] += av * bv
				}
				off += ldb
			}
		}
	}
}
