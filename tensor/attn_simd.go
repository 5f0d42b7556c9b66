//go:build goexperiment.simd && amd64

package tensor

import "simd/archsimd"

// attendHead8SIMD is one head of AttendT for a head size of 8 (AVX-512):
// the row kernels of attnrows_simd.go, with no bounds checks in the loops
// and four sums per pass over values (eight spill).
func attendHead8SIMD(out, q, k, v []float32, ld, n int, scale float32, att []float32) {
	att = att[:AttendScratch(n)]
	scores8(att, q, k, ld, n, scale)
	inv := softmaxPadded(att, n)
	weighted8(out, att, v, ld, n)
	for d := range out[:8] {
		out[d] *= inv
	}
}

// attendHeadSIMD is one head of AttendT on 16 positions per vector (AVX-512),
// head size a multiple of 8, keys and values in float32 or in halves
// (AttendT16: widened as they are loaded, the same sums). att[:n] receives
// the scores, then their exponentials; att[n:] up to the next multiple of 16
// is -Inf, then 0, so the last partial block needs no special case in the
// softmax or the sum.
func attendHeadSIMD[T kvValue](out, q []float32, k, v []T, ld, n int, scale float32, att []float32) {
	hs := len(q)
	np := AttendScratch(n)
	att = att[:np]
	full := n &^ 15
	var tmp [128]float32 // the last partial block, widened (halves)
	// scores: att[p] = Σ_d scale·q[d]·k[d][p], 8 channels per pass
	for c := 0; c < hs; c += 8 {
		var qs [8]float32 // this pass's channels of q, scaled
		for j := range qs {
			qs[j] = q[c+j] * scale
		}
		kc := k[c*ld:]
		if full > 0 {
			_ = kc[7*ld+full-1] // the rows scores8x16 reads
			scoresBlocks(full/16, kc, ld, &qs[0], &att[0], c > 0)
		}
		src, sld := tailRows(kc, ld, full, n, &tmp)
		scoresTail(att[full:], &qs, src, sld, 0, n-full, c > 0)
	}
	inv := softmaxPadded(att, n)
	// out[d] = inv · Σ_p att[p]·v[d][p], 8 channels per pass over att
	for c := 0; c < hs; c += 8 {
		vc := v[c*ld:]
		var lanes [128]float32
		if full > 0 {
			_ = vc[7*ld+full-1] // the rows weighted8x16 reads
			weightedBlocks(full/16, vc, ld, &att[0], &lanes[0])
		}
		src, sld := tailRows(vc, ld, full, n, &tmp)
		weightedTail(out[c:c+8], &lanes, att[full:], src, sld, 0, n-full, inv)
	}
}

// attend3SIMD is attendHeadSIMD for three query heads sharing k and v (head
// h's q and out at h·hs, its scores at att[h·np:]): each block of keys and
// values is read once for the three heads instead of once a head — the
// reads from cache, not the arithmetic, bound a head's loops. Every value is
// formed by the same operations in the same order as attendHeadSIMD's, so
// the results are its bit for bit.
func attend3SIMD[T kvValue](out, q []float32, hs int, k, v []T, ld, n int, scale float32, att []float32) {
	np := AttendScratch(n)
	att = att[:3*np]
	full := n &^ 15
	var tmp [128]float32
	for c := 0; c < hs; c += 8 {
		var qs [24]float32 // this pass's channels of each head's q, scaled
		for h := range 3 {
			for j := range 8 {
				qs[8*h+j] = q[h*hs+c+j] * scale
			}
		}
		kc := k[c*ld:]
		if full > 0 {
			_ = kc[7*ld+full-1] // the rows scores3x8x16 reads
			scores3Blocks(full/16, kc, ld, &qs[0], &att[0], np, v[c*ld:], c > 0)
		}
		src, sld := tailRows(kc, ld, full, n, &tmp)
		for h := range 3 {
			scoresTail(att[h*np+full:(h+1)*np], (*[8]float32)(qs[8*h:]), src, sld, 0, n-full, c > 0)
		}
	}
	var inv [3]float32
	for h := range inv {
		inv[h] = softmaxPadded(att[h*np:(h+1)*np], n)
	}
	for c := 0; c < hs; c += 8 {
		vc := v[c*ld:]
		var lanes [3 * 128]float32
		if full > 0 {
			_ = vc[7*ld+full-1] // the rows weighted3x8x16 reads
			weighted3Blocks(full/16, vc, ld, &att[0], np, &lanes[0])
		}
		src, sld := tailRows(vc, ld, full, n, &tmp)
		for h := range 3 {
			weightedTail(out[h*hs+c:h*hs+c+8], (*[128]float32)(lanes[128*h:]), att[h*np+full:(h+1)*np], src, sld, 0, n-full, inv[h])
		}
	}
}

// tailRows returns eight channels' positions full..n-1 (rows ld apart from
// kc) as float32 rows src[j·sld:]: kc itself from full on, or, for halves,
// those positions widened into tmp (rows 16 apart).
func tailRows[T kvValue](kc []T, ld, full, n int, tmp *[128]float32) (src []float32, sld int) {
	switch kc := any(kc).(type) {
	case []float32:
		return kc[full:], ld
	case []uint16:
		if full == n {
			break
		}
		if 7*ld+full+16 <= len(kc) {
			widenTail8h(&kc[full], ld, &tmp[0])
			break
		}
		for j := range 8 {
			for i := range n - full {
				tmp[16*j+i] = F16ToF32(kc[j*ld+full+i])
			}
		}
	}
	return tmp[:], 16
}

// scoresBlocks, weightedBlocks, scores3Blocks and weighted3Blocks run the
// assembly kernel for k's or v's storage.
func scoresBlocks[T kvValue](n16 int, kc []T, ld int, q, att *float32, acc bool) {
	switch kc := any(kc).(type) {
	case []float32:
		scores8x16(n16, &kc[0], ld, q, att, acc)
	case []uint16:
		scores8x16h(n16, &kc[0], ld, q, att, acc)
	}
}

func weightedBlocks[T kvValue](n16 int, vc []T, ld int, att, out *float32) {
	switch vc := any(vc).(type) {
	case []float32:
		weighted8x16(n16, &vc[0], ld, att, out)
	case []uint16:
		weighted8x16h(n16, &vc[0], ld, att, out)
	}
}

func scores3Blocks[T kvValue](n16 int, kc []T, ld int, q, att *float32, np int, vc []T, acc bool) {
	switch kc := any(kc).(type) {
	case []float32:
		scores3x8x16(n16, &kc[0], ld, q, att, np, &any(vc).([]float32)[0], acc)
	case []uint16:
		scores3x8x16h(n16, &kc[0], ld, q, att, np, &any(vc).([]uint16)[0], acc)
	}
}

func weighted3Blocks[T kvValue](n16 int, vc []T, ld int, att *float32, np int, out *float32) {
	switch vc := any(vc).(type) {
	case []float32:
		weighted3x8x16(n16, &vc[0], ld, att, np, out)
	case []uint16:
		weighted3x8x16h(n16, &vc[0], ld, att, np, out)
	}
}

// scoresTail adds (sets when !acc) the scores of positions full..n-1 (the
// last partial block; none when full = n) for eight key channels kc (rows
// ld apart) and their scaled query values qs, in scores8x16's order.
func scoresTail(att []float32, qs *[8]float32, kc []float32, ld, full, n int, acc bool) {
	if full >= n {
		return
	}
	b := func(j int) archsimd.Float32x16 { return archsimd.BroadcastFloat32x16(qs[j]) }
	q0, q1, q2, q3, q4, q5, q6, q7 := b(0), b(1), b(2), b(3), b(4), b(5), b(6), b(7)
	p, m := full, n-full
	mk := tailMask(m)
	s := loadTail(kc[p:], m, mk).Mul(q0)
	t := loadTail(kc[ld+p:], m, mk).Mul(q1)
	s = loadTail(kc[2*ld+p:], m, mk).MulAdd(q2, s)
	t = loadTail(kc[3*ld+p:], m, mk).MulAdd(q3, t)
	s = loadTail(kc[4*ld+p:], m, mk).MulAdd(q4, s)
	t = loadTail(kc[5*ld+p:], m, mk).MulAdd(q5, t)
	s = loadTail(kc[6*ld+p:], m, mk).MulAdd(q6, s)
	t = loadTail(kc[7*ld+p:], m, mk).MulAdd(q7, t)
	s = s.Add(t)
	if acc {
		s = s.Add(archsimd.LoadFloat32x16Slice(att[p:]))
	}
	s.StoreSlice(att[p:])
}

// softmaxPadded fills att[n:AttendScratch(n)] with -Inf, replaces att[:n] by
// the exponentials of the scores less their maximum, and returns 1 over
// their sum.
func softmaxPadded(att []float32, n int) float32 {
	np := AttendScratch(n)
	for p := n; p < np; p++ {
		att[p] = negInf
	}
	return 1 / expSum16(att[:np], maxSIMD(att[:n]))
}

// weightedTail adds the positions full..n-1 to the eight value channels'
// lanes (weighted8x16's, for the full blocks), sums each channel's lanes
// and writes the eight sums times inv to out[:8].
func weightedTail(out []float32, lanes *[128]float32, att, vc []float32, ld, full, n int, inv float32) {
	ld16 := func(i int) archsimd.Float32x16 { return archsimd.LoadFloat32x16Slice(lanes[16*i : 16*i+16]) }
	s0, s1, s2, s3, s4, s5, s6, s7 := ld16(0), ld16(1), ld16(2), ld16(3), ld16(4), ld16(5), ld16(6), ld16(7)
	if full < n {
		p, m := full, n-full
		mk := tailMask(m)
		a := archsimd.LoadFloat32x16Slice(att[p:])
		s0 = loadTail(vc[p:], m, mk).MulAdd(a, s0)
		s1 = loadTail(vc[ld+p:], m, mk).MulAdd(a, s1)
		s2 = loadTail(vc[2*ld+p:], m, mk).MulAdd(a, s2)
		s3 = loadTail(vc[3*ld+p:], m, mk).MulAdd(a, s3)
		s4 = loadTail(vc[4*ld+p:], m, mk).MulAdd(a, s4)
		s5 = loadTail(vc[5*ld+p:], m, mk).MulAdd(a, s5)
		s6 = loadTail(vc[6*ld+p:], m, mk).MulAdd(a, s6)
		s7 = loadTail(vc[7*ld+p:], m, mk).MulAdd(a, s7)
	}
	r := hsum8(fold(s0), fold(s1), fold(s2), fold(s3), fold(s4), fold(s5), fold(s6), fold(s7))
	r.Mul(archsimd.BroadcastFloat32x8(inv)).StoreSlice(out[:8])
}

// scores8x16 adds eight key channels' scores for n16 blocks of 16 positions
// to att (sets them when !acc), and weighted8x16 sums eight value channels
// against att, its lanes to out[0:128]: attendHeadSIMD's main loops, the
// same operations in the same order (attn_amd64.s).
//
//go:noescape
func scores8x16(n16 int, k *float32, ld int, q *float32, att *float32, acc bool)

//go:noescape
func weighted8x16(n16 int, v *float32, ld int, att *float32, out *float32)

// scores3x8x16 and weighted3x8x16 are scores8x16 and weighted8x16 for three
// heads at once (attend3SIMD): head h's scores at att[h·np:], its q values
// at q[8h:] and its lanes at out[128h:] (attn_amd64.s).
//
//go:noescape
func scores3x8x16(n16 int, k *float32, ld int, q *float32, att *float32, np int, v *float32, acc bool)

//go:noescape
func weighted3x8x16(n16 int, v *float32, ld int, att *float32, np int, out *float32)

// The kernels above for halves (attn16_amd64.s): the same sums on the
// widened values, bit for bit.
//
//go:noescape
func scores8x16h(n16 int, k *uint16, ld int, q *float32, att *float32, acc bool)

//go:noescape
func weighted8x16h(n16 int, v *uint16, ld int, att *float32, out *float32)

//go:noescape
func scores3x8x16h(n16 int, k *uint16, ld int, q *float32, att *float32, np int, v *uint16, acc bool)

//go:noescape
func weighted3x8x16h(n16 int, v *uint16, ld int, att *float32, np int, out *float32)

// widenTail8h widens 16 halves of each of eight rows ld apart into
// dst[16j:16j+16].
//
//go:noescape
func widenTail8h(k *uint16, ld int, dst *float32)

// narrow16h rounds n16 blocks of 16 values to halves as F32ToF16Held does
// (NaNs to a NaN).
//
//go:noescape
func narrow16h(n16 int, src *float32, dst *uint16)

// widen16h widens n16 blocks of 16 halves from src into dst (VCVTPH2PS).
//
//go:noescape
func widen16h(n16 int, src *uint16, dst *float32)
