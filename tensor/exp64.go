package tensor

import "math"

// ExpScaled sets dst[i] = float32(math.Exp(float64((x[i]-m)*s))) and
// returns the sum of the float64 exponentials, added in index order: a
// softmax's middle at temperature 1/s in the bits of that plain loop (a
// sampler's draw depends on them). On AVX-512 eight exponentials are formed
// at a time with math.Exp's own steps on amd64 (its FMA form), so each one
// has math.Exp's bits; lanes whose argument lies outside ±700 (or is NaN)
// are left to math.Exp itself. dst may alias x.
func ExpScaled(dst, x []float32, m, s float32) float64 {
	sameLen("ExpScaled", len(dst), x)
	sum := 0.0
	for i := 0; i < len(x); {
		if level >= levelAVX512 {
			i += expScaledSIMD(dst[i:], x[i:], m, s, &sum)
			if i == len(x) {
				break
			}
		}
		e := math.Exp(float64((x[i] - m) * s))
		dst[i] = float32(e)
		sum += e
		i++
	}
	return sum
}

// DivideBy sets p[i] = float32(float64(p[i]) / d): a softmax's last step,
// exactly (one IEEE division a value).
func DivideBy(p []float32, d float64) {
	i := 0
	if level >= levelAVX512 {
		i = divideBySIMD(p, d)
	}
	for ; i < len(p); i++ {
		p[i] = float32(float64(p[i]) / d)
	}
}
