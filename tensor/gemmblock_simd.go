//go:build goexperiment.simd && amd64

package tensor

// block computes rows [i0, i1) of C for the given panels. A lazy panel's
// K block is packed into bpack. With a transposed A and at non-nil (room for
// mcDefault rows of a K block), each K block of the rows is first
// transposed into at, so that the row kernels run instead of the
// transposed-A ones, which read three values a cache line apart at every k;
// the sums are the same, in the same order. GemmPlus's term runs on each
// panel right after A·B's last K block, while that panel's rows of C are
// in L1: more K blocks of the same strips, the term's B packed into bpack.
func (j *gemmJob) block(i0, i1 int, ps []panel, bpack, at []float32) {
	var sc stripScratch
	K := j.K
	nk := (K + kcMax - 1) / kcMax
	for kb := range nk {
		pc, pe := kb*K/nk, (kb+1)*K/nk
		kc := pe - pc
		acc := kb > 0 || j.beta != 0
		op := blockA{j.transA, j.a[pc:], j.lda, 0}
		if j.transA {
			op.a = j.a[pc*j.lda:]
			if at != nil && i1-i0 <= mcDefault {
				transposeTo(op.a[i0:], j.lda, kc, i1-i0, at, kc)
				op = blockA{false, at, kc, i0}
			}
		}
		for pi := range ps {
			p := &ps[pi]
			bp, sb := p.b, p.sb
			if p.lazy {
				src := p.b[pc:]
				if !p.transB {
					src = p.b[pc*p.ldb:]
				}
				bp, sb = bpack[:kc*p.nr], p.nr
				packB(p.transB, kc, p.j0, p.w, p.nr, src, p.ldb, bp)
			} else {
				bp = p.b[pc*p.sb:]
			}
			j.strips(p, i0, i1, kc, op, bp, sb, acc, &sc)
			if t := j.term; t != nil && kb == nk-1 {
				nt := (t.K + kcMax - 1) / kcMax
				for tb := range nt {
					tc, te := tb*t.K/nt, (tb+1)*t.K/nt
					src := t.B[tc:]
					if !j.transB {
						src = t.B[tc*t.LdB:]
					}
					bp = bpack[:(te-tc)*p.nr]
					packB(j.transB, te-tc, p.j0, p.w, p.nr, src, t.LdB, bp)
					j.strips(p, i0, i1, te-tc, blockA{false, t.A[tc:], t.LdA, 0}, bp, p.nr, true, &sc)
				}
			}
		}
	}
}

// blockA is op(A) from the first k of a K block: op(A)(i, k) is
// a[k*la+i] when transposed, else a[(i-base)*la+k].
type blockA struct {
	trans    bool
	a        []float32
	la, base int
}

// from is op(A) from row i.
func (o blockA) from(i int) []float32 {
	if o.trans {
		return o.a[i:]
	}
	return o.a[(i-o.base)*o.la:]
}

// stripScratch holds a partial tile of C and a partial strip of A.
type stripScratch struct {
	tile  [6 * 32]float32 // partial tiles are computed here, then copied
	apack [8 * kcMax]float32
}

// strips adds rows [i0, i1) of op(A)·B over one K block of kc terms into
// panel p's columns of C (overwrites them unless acc): whole strips of the
// panel's kernel straight into C, partial ones through sc.
func (j *gemmJob) strips(p *panel, i0, i1, kc int, op blockA, bp []float32, sb int, acc bool, sc *stripScratch) {
	c, ldc := j.c, j.ldc
	mr := p.mr(op.trans)
	tile, apack := sc.tile[:], sc.apack[:]
	i := i0
	if ns := (i1 - i0) / mr; p.w == p.nr && ns > 0 {
		kernel(p.nr, op.trans, ns, kc, op.from(i0), op.la, bp, sb, c[i0*ldc+p.j0:], ldc, acc)
		i += ns * mr
	}
	// Partial tiles: computed into tile, then the valid part copied.
	for ; i < i1; i += mr {
		rows := min(mr, i1-i)
		switch {
		case rows == mr:
			kernel(p.nr, op.trans, 1, kc, op.from(i), op.la, bp, sb, tile, p.nr, false)
		case op.trans:
			clear(apack[:kc*mr])
			for k := range kc {
				copy(apack[k*mr:k*mr+rows], op.a[k*op.la+i:k*op.la+i+rows])
			}
			kernel(p.nr, true, 1, kc, apack, mr, bp, sb, tile, p.nr, false)
		default:
			clear(apack[:kc*mr])
			for r := range rows {
				copy(apack[r*kc:r*kc+kc], op.from(i + r)[:kc])
			}
			kernel(p.nr, false, 1, kc, apack, kc, bp, sb, tile, p.nr, false)
		}
		clearUpper() // scalar code next
		for r := range rows {
			crow := c[(i+r)*ldc+p.j0 : (i+r)*ldc+p.j0+p.w]
			trow := tile[r*p.nr : r*p.nr+p.w]
			if acc {
				for j, v := range trow {
					crow[j] += v
				}
			} else {
				copy(crow, trow)
			}
		}
	}
}

// kernel runs the micro-kernel of width nr on ns strips; cols selects the
// transposed-A form (sa is then the stride between k steps, else between rows).
func kernel(nr int, cols bool, ns, kc int, a []float32, sa int, b []float32, sb int, c []float32, ldc int, acc bool) {
	switch {
	case nr == 32 && cols:
		k3x32cols(ns, kc, a, sa, b, sb, c, ldc, acc)
	case nr == 32:
		k4x32rows(ns, kc, a, sa, b, sb, c, ldc, acc)
	case nr == 16 && cols && level >= levelAVX512:
		k4x16wcols(ns, kc, a, sa, b, sb, c, ldc, acc)
	case nr == 16 && level >= levelAVX512:
		k4x16wrows(ns, kc, a, sa, b, sb, c, ldc, acc)
	case nr == 16 && cols:
		k3x16cols(ns, kc, a, sa, b, sb, c, ldc, acc)
	case nr == 16:
		k4x16rows(ns, kc, a, sa, b, sb, c, ldc, acc)
	case cols:
		k6x8cols(ns, kc, a, sa, b, sb, c, ldc, acc)
	default:
		k6x8rows(ns, kc, a, sa, b, sb, c, ldc, acc)
	}
}
