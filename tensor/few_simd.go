//go:build goexperiment.simd && amd64

package tensor

import "sync"

// Products with at most 8 rows (attention's transposed dV and dK blocks,
// small batches) run the AVX-512 4x32 row kernel on one or two strips per
// 32-column panel, with op(A) packed once as eight rows (zero past M). A
// single strip reads B in place (each element is used once); for two, the
// panel is packed so that its second pass hits L1 even when rows of B are a
// power of two apart (rows of a T x T attention matrix fall into a few L1
// sets). An 8x16 tile would read B once, but its eight broadcasts, hoisted
// by the compiler's scheduler ahead of the multiply-adds, push accumulators
// out of the 15 vector registers into memory on every step (measured 4x
// slower); a 4x16 tile has only four FMA chains, one per 4-cycle latency.

// fewPackPool holds panels of B packed by fewPanels (one per goroutine).
var fewPackPool = sync.Pool{New: func() any { return new([]float32) }}

// gemmFewRows computes C = op(A) op(B) + beta C for M <= 8 on AVX-512.
func gemmFewRows(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, j *gemmJob, threads int) {
	// op(A) packed row-major: fewA[r*K+k] = op(A)[r,k], rows M..7 zero.
	j.fewA = grow(j.fewA, 8*K)
	clear(j.fewA[M*K:])
	for r := range M {
		row := j.fewA[r*K : r*K+K]
		if transA {
			for k := range row {
				row[k] = a[k*lda+r]
			}
		} else {
			copy(row, a[r*lda:r*lda+K])
		}
	}
	np := (N + 31) / 32
	j.fewTransB, j.fewN, j.fewB, j.fewLdb = transB, N, b, ldb
	if threads > 1 && np > 1 {
		ParallelFor(np, 1, j.fewRun)
	} else {
		j.fewPanels(0, np)
	}
}

// fewPanels computes the 32-column panels [lo, hi) of a gemmFewRows call.
func (j *gemmJob) fewPanels(lo, hi int) {
	var tile [8 * 32]float32
	var pack []float32
	K, acc := j.K, j.beta != 0
	ns := (j.M + 3) / 4
	defer func() {
		if pack != nil {
			fewPackPool.Put(&pack)
		}
		clearUpper()
	}()
	for p := lo; p < hi; p++ {
		j0 := p * 32
		w := min(32, j.fewN-j0)
		bp, sb := j.fewB[j0:], j.fewLdb
		if j.fewTransB || w < 32 || ns > 1 {
			if pack == nil {
				pack = grow(*fewPackPool.Get().(*[]float32), K*32)
			}
			packB(j.fewTransB, K, j0, w, 32, j.fewB, j.fewLdb, pack)
			bp, sb = pack, 32
		}
		if j.M%4 == 0 && w == 32 {
			k4x32rows(ns, K, j.fewA, K, bp, sb, j.c[j0:], j.ldc, acc)
			continue
		}
		k4x32rows(ns, K, j.fewA, K, bp, sb, tile[:], 32, false)
		clearUpper() // scalar code next
		for r := range j.M {
			crow := j.c[r*j.ldc+j0 : r*j.ldc+j0+w]
			for jj, v := range tile[r*32 : r*32+w] {
				if acc {
					crow[jj] += v
				} else {
					crow[jj] = v
				}
			}
		}
	}
}
