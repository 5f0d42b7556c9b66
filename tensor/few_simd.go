//go:build goexperiment.simd && amd64

package tensor

import (
	"sync"

	"simd/archsimd"
)

// Products with at most 8 rows (attention's transposed dV and dK blocks,
// small batches) run the AVX-512 4x16 kernel on one or two strips per
// 16-column panel, with A packed once. A single strip reads B in place (each
// element is used once); for two strips the panel is packed so that its
// second pass hits L1 even when rows of B are a power of two apart (rows of
// a T x T attention matrix fall into a few L1 sets). An 8x16 tile would read
// B once, but its eight broadcasts, hoisted by the compiler's scheduler
// ahead of the multiply-adds, push two accumulators out of the 15 vector
// registers into memory on every step (measured 4x slower).

// fewPackPool holds panels of B packed by fewPanels (one per goroutine).
var fewPackPool = sync.Pool{New: func() any { return new([]float32) }}

// gemmFewRows computes C = op(A) op(B) + beta C for M <= 8 on AVX-512.
func gemmFewRows(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, j *gemmJob, threads int) {
	// op(A) packed k-major, eight rows wide, rows M..7 zero.
	j.fewA = grow(j.fewA, K*8)
	clear(j.fewA)
	if transA && M == 8 {
		for k := range K {
			archsimd.LoadFloat32x8Slice(a[k*lda : k*lda+8]).StoreSlice(j.fewA[k*8 : k*8+8])
		}
	} else if transA {
		for k := range K {
			for r, v := range a[k*lda : k*lda+M] {
				j.fewA[k*8+r] = v
			}
		}
	} else {
		for r := range M {
			for k, v := range a[r*lda : r*lda+K] {
				j.fewA[k*8+r] = v
			}
		}
	}
	np := (N + 15) / 16
	j.fewTransB, j.fewN, j.fewB, j.fewLdb = transB, N, b, ldb
	if threads > 1 && np > 1 {
		ParallelFor(np, 1, j.fewRun)
	} else {
		j.fewPanels(0, np)
	}
}

// fewPanels computes the 16-column panels [lo, hi) of a gemmFewRows call.
func (j *gemmJob) fewPanels(lo, hi int) {
	var tile [8 * 16]float32
	var pack []float32
	K, acc := j.K, j.beta != 0
	defer func() {
		if pack != nil {
			fewPackPool.Put(&pack)
		}
		clearUpper()
	}()
	for p := lo; p < hi; p++ {
		j0 := p * 16
		w := min(16, j.fewN-j0)
		bp, sb := j.fewB[j0:], j.fewLdb
		if j.fewTransB || w < 16 || j.M > 4 {
			if pack == nil {
				pack = grow(*fewPackPool.Get().(*[]float32), K*16)
			}
			packB(j.fewTransB, K, j0, w, 16, j.fewB, j.fewLdb, pack)
			bp, sb = pack, 16
		}
		ns := (j.M + 3) / 4
		if j.M%4 == 0 && w == 16 {
			k4x16wcols(ns, K, j.fewA, 8, bp, sb, j.c[j0:], j.ldc, acc)
			continue
		}
		k4x16wcols(ns, K, j.fewA, 8, bp, sb, tile[:], 16, false)
		for r := range j.M {
			crow := j.c[r*j.ldc+j0 : r*j.ldc+j0+w]
			for jj, v := range tile[r*16 : r*16+w] {
				if acc {
					crow[jj] += v
				} else {
					crow[jj] = v
				}
			}
		}
	}
}
