package safetensors

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// halfValue is the IEEE 754 binary16 definition, in float64.
func halfValue(h uint16) float64 {
	s := 1.0
	if h&0x8000 != 0 {
		s = -1
	}
	e, m := int(h>>10)&0x1f, float64(h&0x3ff)
	switch {
	case e == 0x1f && m == 0:
		return s * math.Inf(1)
	case e == 0x1f:
		return math.NaN()
	case e == 0:
		return s * math.Ldexp(m, -24)
	}
	return s * math.Ldexp(1+m/1024, e-15)
}

func TestF16ToF32Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		got, want := float64(F16ToF32(h)), halfValue(h)
		if !(got == want || math.IsNaN(got) && math.IsNaN(want)) || math.Signbit(got) != math.Signbit(want) && !math.IsNaN(want) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, got, want)
		}
		if !math.IsNaN(want) && F32ToF16(float32(got)) != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, F32ToF16(float32(got)))
		}
	}
}

func TestBF16Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := BF16ToF32(h)
		if math.IsNaN(float64(f)) {
			if !math.IsNaN(float64(BF16ToF32(F32ToBF16(f)))) {
				t.Fatalf("NaN %#04x lost", h)
			}
			continue
		}
		if F32ToBF16(f) != h {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x", h, F32ToBF16(f))
		}
	}
}

// nearest rounds f to the nearest of the sorted non-negative finite values
// of a 16-bit format (decoded by value), ties to the even code, and
// checks the result against enc. Beyond the largest finite value it wants
// infinity once f is at least halfway to the next power step (IEEE's rule).
func checkRounding(t *testing.T, name string, f float32, enc func(float32) uint16, dec func(uint16) float64, codes []uint16, inf uint16) {
	t.Helper()
	x := math.Abs(float64(f))
	i := sort.Search(len(codes), func(i int) bool { return dec(codes[i]) >= x })
	var want uint16
	switch {
	case i == len(codes):
		want = inf
	case dec(codes[i]) == x || i == 0:
		want = codes[i]
	default:
		lo, hi := codes[i-1], codes[i]
		dl, dh := x-dec(lo), dec(hi)-x
		switch {
		case dl < dh:
			want = lo
		case dh < dl:
			want = hi
		case lo&1 == 0:
			want = lo
		default:
			want = hi
		}
	}
	if f < 0 {
		want |= 0x8000
	}
	if got := enc(f); got != want {
		t.Fatalf("%s(%g = %#08x) = %#04x, want %#04x", name, f, math.Float32bits(f), got, want)
	}
}

func TestRoundingToNearestEven(t *testing.T) {
	var half, bf []uint16
	for i := range 0x7c00 { // non-negative finite halves in value order
		half = append(half, uint16(i))
	}
	for i := range 0x7f80 {
		bf = append(bf, uint16(i))
	}
	bfv := func(h uint16) float64 { return float64(BF16ToF32(h)) }
	// Overflow: infinity stands for 2^16, the next value were the exponent
	// unbounded, so halves round to infinity from the midpoint 65520 up.
	maxHalf := func(h uint16) float64 {
		if h == 0x7c00 {
			return 65536
		}
		return halfValue(h)
	}
	half = append(half, 0x7c00)
	r := rand.New(rand.NewPCG(1, 2))
	cases := []float32{0, 1, 65504, 65519.99, 65520, 1e-8, 2.98e-8, 2.9802322e-8, 5.96e-8, 6.1e-5, 3.4e38}
	for range 200000 {
		cases = append(cases, math.Float32frombits(r.Uint32()&0x7fffffff)) // any finite or not
		cases = append(cases, float32(r.NormFloat64()*math.Pow(2, float64(r.IntN(40)-30))))
	}
	for _, f := range cases {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			continue
		}
		checkRounding(t, "F32ToF16", f, F32ToF16, maxHalf, half, 0x7c00)
		if math.Abs(float64(f)) < float64(BF16ToF32(0x7f7f)) {
			checkRounding(t, "F32ToBF16", f, F32ToBF16, bfv, bf, 0x7f80)
		}
	}
}
