package tensor

// kvValue is how cached keys and values are stored: float32, or IEEE halves
// (uint16 bits), which halve the memory a cache holds and the bytes
// attention reads.
type kvValue interface{ float32 | uint16 }

// AttendT16 is AttendT over keys and values stored as IEEE halves: each
// value is widened exactly and every sum formed as AttendT forms it, so the
// result is AttendT's on the widened keys and values, bit for bit. With
// AVX-512 and a head size that is a multiple of 8 above 8, the kernels widen
// the halves as they load them (the cache is read at half the bytes);
// elsewhere each head's keys and values are widened into att first. att is
// scratch of at least AttendT16Scratch(nq, hs, n) values.
func AttendT16(out, q []float32, nq, hs int, k, v []uint16, ld, n int, scale float32, att []float32) {
	checkAttend("AttendT16", out, q, nq, hs, len(k), len(v), ld, n, len(att), AttendT16Scratch(nq, hs, n))
	if level >= levelAVX512 && hs%8 == 0 && hs > 8 {
		attendHeads(out, q, nq, hs, k, v, ld, n, scale, att)
		clearUpper()
		return
	}
	s, np := AttendTScratch(nq, n), AttendScratch(n)
	kw, vw := att[s:s+hs*np], att[s+hs*np:s+2*hs*np]
	for d := range hs {
		WidenF16(kw[d*np:d*np+n], k[d*ld:d*ld+n])
		WidenF16(vw[d*np:d*np+n], v[d*ld:d*ld+n])
	}
	AttendT(out, q, nq, hs, kw, vw, np, n, scale, att[:s])
}

// AttendT16Scratch is the scratch AttendT16 needs: AttendT's, and room for
// one head's keys and values widened.
func AttendT16Scratch(nq, hs, n int) int { return AttendTScratch(nq, n) + 2*hs*AttendScratch(n) }

// WidenF16 writes the IEEE halves of src as float32 into dst (exact:
// subnormals, infinities and NaNs included; len(dst) ≥ len(src)).
func WidenF16(dst []float32, src []uint16) { convert(dst, src, widen16h, F16ToF32) }

// NarrowF16 rounds src to IEEE halves into dst (nearest, ties to even),
// holding values beyond the half range at ±65504, the largest finite half,
// rather than making them infinite (NaN stays NaN).
func NarrowF16(dst []uint16, src []float32) { convert(dst, src, narrow16h, F32ToF16Held) }

// convert writes one(src[i]) into dst[i], blocks of 16 by the AVX-512
// kernel blocks (the same values).
func convert[S, D any](dst []D, src []S, blocks func(n16 int, s *S, d *D), one func(S) D) {
	dst = dst[:len(src)]
	k := 0
	if level >= levelAVX512 && len(src) >= 16 {
		k = len(src) &^ 15
		blocks(k/16, &src[0], &dst[0])
	}
	for ; k < len(src); k++ {
		dst[k] = one(src[k])
	}
}

// F32ToF16Held is F32ToF16 with values beyond the half range held at
// ±65504 (NarrowF16's rounding of one value).
func F32ToF16Held(x float32) uint16 { return F32ToF16(max(-65504, min(65504, x))) }
