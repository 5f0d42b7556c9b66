//go:build goexperiment.simd && amd64

package tensor

import "simd/archsimd"

var lanes16 = [16]int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

// tailMask selects the first m lanes.
func tailMask(m int) archsimd.Mask32x16 {
	return archsimd.LoadInt32x16(&lanes16).Less(archsimd.BroadcastInt32x16(int32(m)))
}

// loadTail loads the first m < 16 values of s, zeros in the other lanes:
// one masked vector load when s has 16 values (whatever lies past m is
// dropped, NaN included), else through loadPart16's copy, whose store and
// wider reload stall store forwarding.
func loadTail(s []float32, m int, mk archsimd.Mask32x16) archsimd.Float32x16 {
	if len(s) >= 16 {
		return archsimd.LoadFloat32x16Slice(s[:16]).Masked(mk)
	}
	return loadPart16(s[:m])
}

// scores8 sets p[j] = Σ_d x[d]·t[d*ld+j] for j < AttendScratch(n); lanes of
// the last block past n are 0 (t read zero-filled there).
func scores8(p, x, t []float32, ld, n int, scale float32) {
	var xs [8]float32 // x, scaled
	for d := range xs {
		xs[d] = x[d] * scale
	}
	b := func(d int) archsimd.Float32x16 { return archsimd.BroadcastFloat32x16(xs[d]) }
	x0, x1, x2, x3, x4, x5, x6, x7 := b(0), b(1), b(2), b(3), b(4), b(5), b(6), b(7)
	full := n &^ 15
	// rows resliced to one length so the loop needs no bounds checks
	t0, t1, t2, t3 := t[:full], t[ld:ld+full], t[2*ld:2*ld+full], t[3*ld:3*ld+full]
	t4, t5, t6, t7 := t[4*ld:4*ld+full], t[5*ld:5*ld+full], t[6*ld:6*ld+full], t[7*ld:7*ld+full]
	t1, t2, t3, t4, t5, t6, t7 = t1[:len(t0)], t2[:len(t0)], t3[:len(t0)], t4[:len(t0)], t5[:len(t0)], t6[:len(t0)], t7[:len(t0)]
	pp := p[:len(t0)]
	for j := 0; j+16 <= len(t0); j += 16 {
		s := archsimd.LoadFloat32x16Slice(t0[j : j+16]).Mul(x0)
		u := archsimd.LoadFloat32x16Slice(t1[j : j+16]).Mul(x1)
		s = archsimd.LoadFloat32x16Slice(t2[j:j+16]).MulAdd(x2, s)
		u = archsimd.LoadFloat32x16Slice(t3[j:j+16]).MulAdd(x3, u)
		s = archsimd.LoadFloat32x16Slice(t4[j:j+16]).MulAdd(x4, s)
		u = archsimd.LoadFloat32x16Slice(t5[j:j+16]).MulAdd(x5, u)
		s = archsimd.LoadFloat32x16Slice(t6[j:j+16]).MulAdd(x6, s)
		u = archsimd.LoadFloat32x16Slice(t7[j:j+16]).MulAdd(x7, u)
		s.Add(u).StoreSlice(pp[j : j+16])
	}
	scoresTail(p, &xs, t, ld, full, n, false)
}

// weighted8 returns out[d] = Σ_j w[j]·t[d*ld+j] over j < AttendScratch(n)
// (t read zero-filled past n), in two passes of four channels: eight sums
// and eight row pointers spill out of the registers.
func weighted8(out, w, t []float32, ld, n int) {
	a := weighted4(w, t, ld, n)
	b := weighted4(w, t[4*ld:], ld, n)
	a.StoreSlice(out[0:4])
	b.StoreSlice(out[4:8])
}

func weighted4(w, t []float32, ld, n int) archsimd.Float32x4 {
	var s0, s1, s2, s3 archsimd.Float32x16
	full := n &^ 15
	t0, t1, t2, t3 := t[:full], t[ld:ld+full], t[2*ld:2*ld+full], t[3*ld:3*ld+full]
	t1, t2, t3 = t1[:len(t0)], t2[:len(t0)], t3[:len(t0)]
	ww := w[:len(t0)]
	for j := 0; j+16 <= len(t0); j += 16 {
		a := archsimd.LoadFloat32x16Slice(ww[j : j+16])
		s0 = archsimd.LoadFloat32x16Slice(t0[j:j+16]).MulAdd(a, s0)
		s1 = archsimd.LoadFloat32x16Slice(t1[j:j+16]).MulAdd(a, s1)
		s2 = archsimd.LoadFloat32x16Slice(t2[j:j+16]).MulAdd(a, s2)
		s3 = archsimd.LoadFloat32x16Slice(t3[j:j+16]).MulAdd(a, s3)
	}
	if full < n {
		j, m := full, n-full
		mk := tailMask(m)
		a := archsimd.LoadFloat32x16Slice(w[j:])
		s0 = loadTail(t[j:], m, mk).MulAdd(a, s0)
		s1 = loadTail(t[ld+j:], m, mk).MulAdd(a, s1)
		s2 = loadTail(t[2*ld+j:], m, mk).MulAdd(a, s2)
		s3 = loadTail(t[3*ld+j:], m, mk).MulAdd(a, s3)
	}
	return hsum4(fold(s0), fold(s1), fold(s2), fold(s3))
}

func attnRowForwardSIMD(p, scr, out, q, kT, vT []float32, ld, n, ma, mb int, scale float32) {
	np := AttendScratch(n)
	p, scr = p[:np], scr[:np]
	scores8(scr, q, kT, ld, n, scale)
	for j := ma; j < mb; j++ {
		scr[j] = negInf
	}
	for j := n; j < np; j++ {
		scr[j] = negInf
	}
	softmax16(p, scr, maxSIMD(scr[:n]))
	weighted8(out, p, vT, ld, n)
}

func attnRowBackwardSIMD(ds, dq, p, do, kT, vT []float32, ld, n int, scale float32) {
	np := len(p)
	scores8(ds, do, vT, ld, n, 1) // dP
	var dv archsimd.Float32x16
	for j := 0; j < np; j += 16 {
		dv = archsimd.LoadFloat32x16Slice(p[j:]).MulAdd(archsimd.LoadFloat32x16Slice(ds[j:]), dv)
	}
	// ds = scale·p∘(dP − dot), formed in the pass that takes channels 0..3
	// of dq, which the pass for channels 4..7 then reads
	a := dsWeighted4(ds, p, hsum(fold(dv)), scale, kT, ld, n)
	b := weighted4(ds, kT[4*ld:], ld, n)
	a.StoreSlice(dq[0:4])
	b.StoreSlice(dq[4:8])
}

// dsWeighted4 replaces ds[:AttendScratch(n)] (dP) by scale·p∘(dP − dot) and
// returns its products with rows 0..3 of t, as weighted4.
func dsWeighted4(ds, p []float32, dot, scale float32, t []float32, ld, n int) archsimd.Float32x4 {
	var s0, s1, s2, s3 archsimd.Float32x16
	dv, sc := archsimd.BroadcastFloat32x16(dot), archsimd.BroadcastFloat32x16(scale)
	full := n &^ 15
	t0, t1, t2, t3 := t[:full], t[ld:ld+full], t[2*ld:2*ld+full], t[3*ld:3*ld+full]
	t1, t2, t3 = t1[:len(t0)], t2[:len(t0)], t3[:len(t0)]
	dd, pp := ds[:len(t0)], p[:len(t0)]
	for j := 0; j+16 <= len(t0); j += 16 {
		a := archsimd.LoadFloat32x16Slice(dd[j : j+16]).Sub(dv).Mul(archsimd.LoadFloat32x16Slice(pp[j : j+16])).Mul(sc)
		a.StoreSlice(dd[j : j+16])
		s0 = archsimd.LoadFloat32x16Slice(t0[j:j+16]).MulAdd(a, s0)
		s1 = archsimd.LoadFloat32x16Slice(t1[j:j+16]).MulAdd(a, s1)
		s2 = archsimd.LoadFloat32x16Slice(t2[j:j+16]).MulAdd(a, s2)
		s3 = archsimd.LoadFloat32x16Slice(t3[j:j+16]).MulAdd(a, s3)
	}
	if full < n {
		j, m := full, n-full
		mk := tailMask(m)
		a := archsimd.LoadFloat32x16Slice(ds[j:]).Sub(dv).Mul(archsimd.LoadFloat32x16Slice(p[j:])).Mul(sc)
		a.StoreSlice(ds[j:])
		s0 = loadTail(t[j:], m, mk).MulAdd(a, s0)
		s1 = loadTail(t[ld+j:], m, mk).MulAdd(a, s1)
		s2 = loadTail(t[2*ld+j:], m, mk).MulAdd(a, s2)
		s3 = loadTail(t[3*ld+j:], m, mk).MulAdd(a, s3)
	}
	return hsum4(fold(s0), fold(s1), fold(s2), fold(s3))
}

// attnColsAccumSIMD: per block of 16 keys, the rows t ≥ j0 in two passes of
// four channels (four sums and four broadcasts stay in registers).
func attnColsAccumSIMD(dT []float32, ld int, w []float32, ldw int, g []float32, ldg, T int) {
	for j0 := 0; j0 < T; j0 += 16 {
		for c := 0; c < 8; c += 4 {
			var s0, s1, s2, s3 archsimd.Float32x16
			for t := j0; t < T; t++ {
				x := archsimd.LoadFloat32x16Slice(w[t*ldw+j0:])
				gt := g[t*ldg+c : t*ldg+c+4]
				s0 = x.MulAdd(archsimd.BroadcastFloat32x16(gt[0]), s0)
				s1 = x.MulAdd(archsimd.BroadcastFloat32x16(gt[1]), s1)
				s2 = x.MulAdd(archsimd.BroadcastFloat32x16(gt[2]), s2)
				s3 = x.MulAdd(archsimd.BroadcastFloat32x16(gt[3]), s3)
			}
			st16(dT[c*ld+j0:], s0, true)
			st16(dT[(c+1)*ld+j0:], s1, true)
			st16(dT[(c+2)*ld+j0:], s2, true)
			st16(dT[(c+3)*ld+j0:], s3, true)
		}
	}
}

// expSum16 replaces p (a multiple of 16 long) by exp(p − m), -Inf entries
// becoming 0, and returns the sum: expf (exp.go) on 16 lanes.
// Inputs are scores minus their maximum, so at most 0; the overflow branch
// of expf is not needed, and NaN is kept.
func expSum16(p []float32, m float32) float32 {
	// The constants are broadcast inside the loop (from memory, a load each):
	// hoisted, thirteen of them with the temporaries overflow the 15 vector
	// registers and the spills made the loop 2x slower.
	mv := archsimd.BroadcastFloat32x16(m)
	var sum archsimd.Float32x16
	for j := 0; j+16 <= len(p); j += 16 {
		v := archsimd.LoadFloat32x16Slice(p[j : j+16]).Sub(mv)
		lo := archsimd.BroadcastFloat32x16(expLo)
		xc := v.Max(lo)
		n := xc.Mul(archsimd.BroadcastFloat32x16(expLog2e)).RoundToEvenScaled(0)
		r := n.MulAdd(archsimd.BroadcastFloat32x16(-expC1), xc)
		r = n.MulAdd(archsimd.BroadcastFloat32x16(-expC2), r)
		q := archsimd.BroadcastFloat32x16(expP0).MulAdd(r, archsimd.BroadcastFloat32x16(expP1))
		q = q.MulAdd(r, archsimd.BroadcastFloat32x16(expP2))
		q = q.MulAdd(r, archsimd.BroadcastFloat32x16(expP3))
		q = q.MulAdd(r, archsimd.BroadcastFloat32x16(expP4))
		q = q.MulAdd(r, archsimd.BroadcastFloat32x16(expP5))
		y := q.MulAdd(r.Mul(r), r).Add(archsimd.BroadcastFloat32x16(1))
		y = y.Mul(n.ConvertToInt32().Add(archsimd.BroadcastInt32x16(127)).ShiftAllLeft(23).AsFloat32x16())
		y = y.Masked(v.GreaterEqual(lo)).Merge(v, v.Equal(v))
		y.StoreSlice(p[j : j+16])
		sum = sum.Add(y)
	}
	return hsum(fold(sum))
}

// softmax16 sets dst to exp(s − m) / Σ exp(s − m) for s (a multiple of 16
// long, overwritten by exp(s − m)), -Inf entries becoming 0.
func softmax16(dst, p []float32, m float32) {
	dst = dst[:len(p)]
	inv := archsimd.BroadcastFloat32x16(1 / expSum16(p, m))
	for j := 0; j+16 <= len(p); j += 16 {
		archsimd.LoadFloat32x16Slice(p[j : j+16]).Mul(inv).StoreSlice(dst[j : j+16])
	}
}
