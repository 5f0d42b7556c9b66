//go:build goexperiment.simd && amd64

package tensor

import (
	"sync"
)

// The SIMD matrix multiplication follows the BLIS loop structure (Van Zee &
// van de Geijn, "BLIS: A Framework for Rapidly Instantiating BLAS
// Functionality", ACM TOMS 41(3), 2015): C is cut into column panels as wide
// as a micro-kernel, K into blocks of at most kcMax, rows into strips of MR;
// the B panel of one K block stays in L1 while the strips of A stream by.
// B is packed when it is transposed, for the last partial column panel, and
// whenever C has packMinRows rows or more; A is read in place except for a
// partial last row strip. With up to lazyMaxRows rows (a training step's
// tokens, a prompt), the threads share out the column panels and each packs
// a panel's K block just before running all rows over it, so the packed
// block is written and read in L1; larger products pack the whole of B first
// and share out row blocks too. Either way every element of C is summed in
// the same order.
//
// gemmSIMD picks a path by shape (checked in this order):
//   - NT with M <= smallNT, NN with M <= smallNN: dotNT / axpyNN (decoding);
//   - NT with M <= batchNT on AVX-512 and B at least 64×64: dotNT over column
//     ranges on every thread (a batch of decoded sequences);
//   - M <= 8 on AVX-512: gemmFewRows (few_simd.go);
//   - TN with N <= 8: C^T = op(B)^T A through the wide kernels, transposed
//     back (attention's dV = P^T dO);
//   - NN/NT with N <= 8 and K >= 32: dot products against op(B)^T
//     (attention's P V);
//   - otherwise the blocked kernels: 4x32 (AVX-512) or 4x16 (AVX2) rows,
//     3x32 / 3x16 for a transposed A, 4x16 AVX-512 and 6x8 for narrow
//     column remainders.

const (
	kcMax     = 256 // K block: a 256 x 32 panel of B is 32 KiB, one L1
	mcDefault = 72  // rows per work item (a multiple of every MR): 72 x 256 floats of A fit in L2
	// Below this many flops a product runs on one thread: waking helpers
	// costs a few microseconds.
	parallelMinFlops = 1 << 20
	// With at least this many rows, B is packed even when it could be read
	// in place: a packed panel is contiguous, while rows of B a power-of-two
	// stride apart fall into few L1 sets and evict each other.
	packMinRows = 64
)

// With at most lazyMaxRows rows, B's panels are packed a K block at a time
// by the work item that uses them, just before it does, where the packed
// block stays in L1 (see gemmSIMD); larger products pack all of B first.
// A variable so that tests can send every product down either path.
var lazyMaxRows = 512

// bpackPool holds the lazy packing buffers of work items: a K block of one
// panel, 32 KiB, taken from the pool rather than cleared on the stack at
// every call.
var bpackPool = sync.Pool{New: func() any { return new([kcMax * 32]float32) }}

// Work items of at most transposeARows rows of a transposed A transpose
// each K block of it first (gemmBlock); a variable so that tests can turn
// it off (0). At most mcDefault, the size of atPool's buffers.
var transposeARows = mcDefault

// atPool holds the buffers in which work items transpose a block of a
// transposed A (gemmBlock): mcDefault rows of one K block, 72 KiB.
var atPool = sync.Pool{New: func() any { return new([mcDefault * kcMax]float32) }}

// Products with few rows take GEMV-like paths that read B in place.
const (
	smallNT = 4  // NT with M <= smallNT: dot products against rows of B
	batchNT = 32 // NT with M <= batchNT and B at least 64×64 (AVX-512): the same, on every thread
	smallNN = 2  // NN with M <= smallNN: axpys over rows of B
)

// panel is a range of C's columns computed by one micro-kernel width.
type panel struct {
	j0, w  int       // columns [j0, j0+w) of C
	nr     int       // kernel width (8, 16 or 32); w <= nr
	b      []float32 // B(k, j0+j) = b[k*sb+j]
	sb     int
	packed bool // b is a packed copy, filled by packPanels
	// lazy: b is the caller's op(B) source, packed K block by K block by
	// the work item that uses the panel (transB as given, ldb its stride).
	lazy   bool
	transB bool
	ldb    int
}

// mr is the number of rows the panel's kernel computes at once; cols
// selects the transposed-A kernels.
func (p *panel) mr(cols bool) int {
	switch {
	case p.nr == 8:
		return 6
	case cols && p.nr == 32, cols && p.nr == 16 && level < levelAVX512:
		return 3
	}
	return 4
}

// gemmJob holds one call's panels and packing buffer; jobs are pooled so a
// call allocates nothing, and run is bound once so ParallelFor gets a
// function value without a new closure.
type gemmJob struct {
	transA      bool
	transB      bool // the blocked path's: for packing the term's B
	M, K        int
	a           []float32
	lda         int
	beta        float32
	c           []float32
	ldc         int
	ps          []panel
	pack        []float32
	mc, pg      int
	lazy        bool // some panels are packed by the items (gemmBlock)
	run, dotRun func(lo, hi int)
	packRun     func(lo, hi int)
	packTransB  bool      // packPanels: the caller's B
	packSrc     []float32 //
	packLdb     int       //
	fewRun      func(lo, hi int)
	fewA, fewB  []float32 // gemmFewRows: packed op(A), caller's B
	fewTransB   bool
	fewN        int
	fewLdb      int
	dotB        []float32 // dot form: op(B)^T, N rows of K
	dotN, dotLd int
	term        *Term // GemmPlus's second product, run as more K blocks
}

var jobPool = sync.Pool{New: func() any {
	j := new(gemmJob)
	j.run, j.dotRun, j.fewRun, j.packRun = j.items, j.dotRows, j.fewPanels, j.packPanels
	return j
}}

// items computes work items [lo, hi): item it is row block it/pg of mc rows
// times panel group it%pg.
func (j *gemmJob) items(lo, hi int) {
	var bpack, at []float32
	if j.lazy || j.term != nil {
		buf := bpackPool.Get().(*[kcMax * 32]float32)
		defer bpackPool.Put(buf)
		bpack = buf[:]
	}
	if j.transA && j.mc <= transposeARows {
		buf := atPool.Get().(*[mcDefault * kcMax]float32)
		defer atPool.Put(buf)
		at = buf[:]
	}
	for it := lo; it < hi; it++ {
		r, g := it/j.pg, it%j.pg
		p0, p1 := g*len(j.ps)/j.pg, (g+1)*len(j.ps)/j.pg
		j.block(r*j.mc, min(j.M, (r+1)*j.mc), j.ps[p0:p1], bpack, at)
	}
	clearUpper() // this may run on a pool goroutine that runs scalar code next
}

// dotRowsSIMD is C = A·Bᵀ + beta·C in the dot form on the caller's
// goroutine, whatever the shape: the batched decoding path of gemmSIMD for
// callers that split the columns themselves (QMatrix.MulTOn over a team).
func dotRowsSIMD(M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	dotNT(M, N, K, a, lda, b, ldb, beta, c, ldc)
	clearUpper()
}

// dotRows computes rows [lo, hi) of C in the dot form.
func (j *gemmJob) dotRows(lo, hi int) {
	dotNT(hi-lo, j.dotN, j.K, j.a[lo*j.lda:], j.lda, j.dotB, j.dotLd, j.beta, j.c[lo*j.ldc:], j.ldc)
	clearUpper()
}

func (j *gemmJob) release() {
	j.a, j.c, j.dotB, j.fewB, j.packSrc, j.term = nil, nil, nil, nil, nil, nil
	jobPool.Put(j)
}

func gemmSIMD(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, parallel bool) {
	gemmSIMDTerm(transA, transB, M, N, K, a, lda, b, ldb, beta, c, ldc, parallel, nil)
}

// gemmSIMDTerm is gemmSIMD with GemmPlus's second product t (nil: none).
// The blocked path runs t as more K blocks of each work item (gemmBlock);
// the other paths, and a transposed A, run it as a second product after
// the first.
func gemmSIMDTerm(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, parallel bool, t *Term) {
	if t != nil && transA {
		gemmSIMD(transA, transB, M, N, K, a, lda, b, ldb, beta, c, ldc, parallel)
		t.second(transA, transB, M, N, c, ldc, parallel)
		return
	}
	if gemmSmall(transA, transB, M, N, K, a, lda, b, ldb, beta, c, ldc, parallel) {
		t.second(transA, transB, M, N, c, ldc, parallel)
		return
	}
	threads := 1
	if parallel && 2*M*N*K >= parallelMinFlops {
		threads = Threads()
	}
	j := jobPool.Get().(*gemmJob)
	defer j.release()
	j.transA, j.M, j.K, j.a, j.lda, j.beta, j.c, j.ldc = transA, M, K, a, lda, beta, c, ldc
	if j.narrow(transB, N, b, ldb, threads, parallel) {
		t.second(transA, transB, M, N, c, ldc, parallel)
		return
	}
	j.term, j.transB = t, transB
	j.makePanels(transB, N, b, ldb, threads)
	lazy, ps := j.lazy, j.ps

	// Work items: row blocks x groups of panels, enough of them to share out.
	target := 1
	if threads > 1 {
		target = chunksPerThread * threads
	}
	mc := mcDefault
	if lazy {
		// Each panel's K blocks are packed by the one item that computes
		// all rows against it: panels are shared out, rows are not, unless
		// there are too few panels to go round (each row block then packs
		// its own copy).
		mc = M
	}
	if nb := (M + mc - 1) / mc; nb*len(ps) < target {
		rb := (target + len(ps) - 1) / len(ps)
		mc = max(12, ((M+rb-1)/rb+11)/12*12)
	}
	rb := (M + mc - 1) / mc
	j.mc, j.pg = mc, min(len(ps), max(1, (target+rb-1)/rb))
	items := rb * j.pg
	if target > 1 && items > 1 {
		ParallelFor(items, 1, j.run)
	} else {
		j.items(0, items)
	}
	for i := range ps {
		ps[i].b = nil
	}
}

// makePanels cuts C's N columns into the micro-kernels' panels (j.ps) and
// packs those that the work items do not (eagerly, on the pool when B is
// tall), for j's M and K and B (b, ldb, transB) over threads.
func (j *gemmJob) makePanels(transB bool, N int, b []float32, ldb, threads int) {
	M, K := j.M, j.K
	nrMain := 16
	if level >= levelAVX512 {
		nrMain = 32
	}
	// Column panels: full main-width panels, then the rest either as one
	// padded main panel or, when it is at most half of one, as 8-wide panels.
	ps := j.ps[:0]
	packLen := 0
	lazy := M <= lazyMaxRows
	add := func(j0, w, nr int) {
		p := panel{j0: j0, w: w, nr: nr}
		if lazy && (transB || w < nr || M >= packMinRows) {
			p.b, p.sb, p.lazy, p.transB, p.ldb = b, nr, true, transB, ldb
		} else if transB || w < nr || M >= packMinRows {
			p.sb = nr
			packLen += K * nr
		} else {
			p.b, p.sb = b[j0:], ldb
		}
		ps = append(ps, p)
	}
	col := 0
	for ; N-col >= nrMain; col += nrMain {
		add(col, nrMain, nrMain)
	}
	if w := N - col; w > nrMain/2 {
		add(col, w, nrMain)
	} else if w > 8 && nrMain == 32 {
		add(col, w, 16) // AVX-512 4x16 tile, e.g. the last 12 of 172 columns
	} else {
		for ; col < N; col += 8 {
			add(col, min(8, N-col), 8)
		}
	}
	j.ps, j.lazy = ps, lazy
	if packLen > 0 {
		j.pack = grow(j.pack, packLen)
		off := 0
		for i := range ps {
			p := &ps[i]
			if p.b != nil {
				p.packed = false
				continue
			}
			p.b, p.packed = j.pack[off:off+K*p.nr], true
			off += K * p.nr
		}
		j.packTransB, j.packSrc, j.packLdb = transB, b, ldb
		if threads > 1 && packLen >= 1<<15 && len(ps) > 1 {
			// Packing a tall B (dW's K = 2048) is a sizable serial step otherwise.
			ParallelFor(len(ps), 1, j.packRun)
		} else {
			j.packPanels(0, len(ps))
		}
	}
}

// second adds t's product to C as a product of its own (t nil: nothing).
func (t *Term) second(transA, transB bool, M, N int, c []float32, ldc int, parallel bool) {
	if t != nil {
		gemmSIMD(transA, transB, M, N, t.K, t.A, t.LdA, t.B, t.LdB, 1, c, ldc, parallel)
	}
}

// gemmSmall runs the paths for products of a few rows that need no job:
// dot products or axpys over B in place. It reports whether it ran one.
func gemmSmall(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, parallel bool) bool {
	if !transA && transB && M <= smallNT {
		dotNT(M, N, K, a, lda, b, ldb, beta, c, ldc)
		return true
	}
	if !transA && transB && M <= batchNT && K >= 64 && N >= 64 && level >= levelAVX512 {
		// A batch of decoded rows times a row-major weight matrix (x·Wᵀ): dot
		// products read each row of B once for every row of A, where the
		// blocked kernel would first transpose B into panels for only a few
		// strips of rows. Columns are split between threads in chunks that
		// start at multiples of 4, where dotNT's groups of four start when it
		// runs alone: a row's result does not depend on the split.
		if parallel && 2*M*N*K >= parallelMinFlops && Threads() > 1 {
			ParallelFor((N+3)/4, 4, func(lo, hi int) {
				lo, hi = 4*lo, min(4*hi, N)
				dotNT(M, hi-lo, K, a, lda, b[lo*ldb:], ldb, beta, c[lo:], ldc)
				clearUpper()
			})
		} else {
			dotNT(M, N, K, a, lda, b, ldb, beta, c, ldc)
		}
		return true
	}
	if !transA && !transB && M <= smallNN {
		axpyNN(M, N, K, a, lda, b, ldb, beta, c, ldc)
		return true
	}
	return false
}

// narrow runs the paths for a few rows on AVX-512 and for a narrow C (see
// gemmSIMD) on j's operands; it reports whether it ran one.
func (j *gemmJob) narrow(transB bool, N int, b []float32, ldb, threads int, parallel bool) bool {
	transA, M, K, a, lda, beta, c, ldc := j.transA, j.M, j.K, j.a, j.lda, j.beta, j.c, j.ldc
	if M <= 8 && level >= levelAVX512 {
		gemmFewRows(transA, transB, M, N, K, a, lda, b, ldb, beta, c, ldc, j, threads)
		return true
	}
	transN, dotN := 8, 8
	if level >= levelAVX512 {
		transN, dotN = narrowTransN, narrowDotN
	}
	if transA && N <= transN && M >= 32 && M > N {
		// Narrow C from a transposed A (attention's P^T dO, a LoRA adapter's
		// dyᵀ·u): C^T = op(B)^T A is wide, so the wide kernels compute it
		// and it is transposed into C, 8×8 blocks at a time where N is a
		// multiple of 8. (C^T is wider than C is: its product, itself from a
		// transposed A when B is not transposed, does not come back here.)
		t := grow(j.pack, N*M)
		j.pack = t
		gemmSIMD(!transB, false, N, M, K, b, ldb, a, lda, 0, t, M, parallel)
		i := 0
		if N%8 == 0 {
			for ; i+8 <= M; i += 8 {
				for g := 0; g < N; g += 8 {
					transpose8(t[g*M+i:], M, c[i*ldc+g:], ldc, beta != 0)
				}
			}
		}
		clearUpper() // scalar code next
		for ; i < M; i++ {
			ci := c[i*ldc : i*ldc+N]
			for n := range ci {
				if beta == 0 {
					ci[n] = t[n*M+i]
				} else {
					ci[n] += t[n*M+i]
				}
			}
		}
		return true
	}
	if !transA && N <= dotN && K >= 32 {
		// Narrow C with a long K (attention's P V): dot products of rows of A
		// with the N rows of op(B)^T beat broadcasting into a half-empty tile.
		j.dotN, j.dotB, j.dotLd = N, b, ldb
		if !transB {
			j.pack = grow(j.pack, N*K)
			transposeTo(b, ldb, K, N, j.pack, K)
			j.dotB, j.dotLd = j.pack, K
		}
		if threads > 1 {
			ParallelFor(M, 8, j.dotRun)
		} else {
			j.dotRows(0, M)
		}
		return true
	}
	return false
}

// grow returns s resized to n, reallocating only when it is too small.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// narrowTransN and narrowDotN are the widest C that narrow computes through
// its transpose and by dot products on AVX-512 (8 on AVX2). BenchmarkGemmLoRANarrow (514 rows,
// 576 columns, LoRA ranks 16 and 32, alternating thresholds): with a
// transposed A (dB = dyᵀ·u) 78 µs against 152 at rank 16 and 139 against
// 212 at rank 32; without (x·Aᵀ, dy·B) 58 and 80 µs against 117 and 115 at
// rank 16, and no better than the blocked kernels at 32.
const (
	narrowTransN = 32
	narrowDotN   = 16
)
