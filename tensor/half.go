package tensor

import "math"

// Conversions between float32 and the 16-bit float formats weights are
// stored in. Widening is exact; narrowing rounds to nearest, ties to even.

// BF16ToF32 widens a bfloat16 (the top half of a float32) exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 rounds to the nearest bfloat16, ties to even; NaN stays NaN.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F16ToF32 widens an IEEE half exactly (subnormals, infinities and NaNs included).
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: mant × 2^-24, normalised.
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// F32ToF16 rounds to the nearest IEEE half, ties to even; values beyond the
// half range become infinities, NaN stays NaN.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign // below half the smallest subnormal
		}
		mant |= 0x800000
		shift := uint32(14 - e) // 13 + (1 - e)
		return sign | uint16(roundShift(mant, shift))
	}
	return sign | uint16(roundShift(uint32(e)<<23|mant, 13)) // a carry into the exponent is correct
}

// roundShift is x >> s rounded to nearest, ties to even.
func roundShift(x, s uint32) uint32 {
	q := x >> s
	rem := x & (1<<s - 1)
	half := uint32(1) << (s - 1)
	if rem > half || rem == half && q&1 == 1 {
		q++
	}
	return q
}

// Q8Block is the number of weights that share one scale in Q8_0.
const Q8Block = 32

// QuantizeQ8Block quantizes one block of Q8Block values as ggml's reference
// quantizer does: d = max|x|/127, q = round(x/d) (half away from zero); it
// returns d rounded to F16 (how Q8_0 stores it) as bits.
func QuantizeQ8Block(q []int8, x []float32) uint16 {
	x, q = x[:Q8Block], q[:Q8Block]
	var amax float32
	for _, v := range x {
		if a := math.Float32frombits(math.Float32bits(v) &^ (1 << 31)); a > amax { // |v|, without a branch on the sign
			amax = a
		}
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	for i, v := range x {
		q[i] = int8(roundHalfAway(v * id))
	}
	return F32ToF16(d)
}

// roundHalfAway is math.Round for |t| < 2³¹: t ± ½ (the sign of t) is exact
// in float64 and the conversion truncates toward zero, so halves go away
// from zero; no branch on the sign.
func roundHalfAway(t float32) int32 {
	r := float64(t)
	return int32(r + math.Copysign(0.5, r))
}
