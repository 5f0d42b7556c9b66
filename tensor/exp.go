package tensor

import "math"

// Single-precision exp after Cephes' expf.c (Stephen L. Moshier, Cephes
// Mathematical Library, 1984-2000): with n = round(x/ln2) and
// r = x - n*ln2 (ln2 split into C1 + C2 so that n*C1 is exact),
// exp(x) = 2^n * (1 + r + r^2 P(r)), |r| <= ln2/2, P of degree 5.
// Cephes reports a peak relative error of about 1.7e-7 over its range; the
// tests compare against math.Exp in float64. The SIMD version in
// vec_simd.go evaluates the same formula with fused multiply-adds.
const (
	expLog2e = 1.44269504088896341
	expC1    = 0.693359375
	expC2    = -2.12194440e-4
	expP0    = 1.9875691500e-4
	expP1    = 1.3981999507e-3
	expP2    = 8.3334519073e-3
	expP3    = 4.1665795894e-2
	expP4    = 1.6666665459e-1
	expP5    = 5.0000001201e-1
	// Below expLo the result is subnormal and flushed to 0; above expHi,
	// 2^n would overflow the exponent and the result is +Inf.
	expLo = -87.33654475 // ln(2^-126)
	expHi = 88.37626266  // 127.5*ln2
)

// expf is the scalar exp used by the portable path.
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x < expLo:
		return 0
	case x > expHi:
		return float32(math.Inf(1))
	}
	n := float32(math.RoundToEven(float64(x * expLog2e)))
	r := x - n*expC1
	r -= n * expC2
	p := float32(expP0)
	p = p*r + expP1
	p = p*r + expP2
	p = p*r + expP3
	p = p*r + expP4
	p = p*r + expP5
	y := p*(r*r) + r + 1
	return y * math.Float32frombits(uint32(int32(n)+127)<<23)
}
