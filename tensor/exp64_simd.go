//go:build goexperiment.simd && amd64

package tensor

// expScaledSIMD is ExpScaled's blocks of eight (exp64_amd64.s): from the
// start, while eight values remain and every argument of a block is within
// ±700, it writes dst and adds the exponentials to *sum in order; it
// returns how many values it did (a multiple of 8).
//
//go:noescape
func expScaledAsm(n8 int, dst, x *float32, m, s float32, sum *float64) int

func expScaledSIMD(dst, x []float32, m, s float32, sum *float64) int {
	if len(x) < 8 {
		return 0
	}
	return expScaledAsm(len(x)/8, &dst[0], &x[0], m, s, sum)
}

// divideByAsm divides n8 blocks of eight of p by d (exp64_amd64.s).
//
//go:noescape
func divideByAsm(n8 int, p *float32, d float64)

func divideBySIMD(p []float32, d float64) int {
	if len(p) < 8 {
		return 0
	}
	divideByAsm(len(p)/8, &p[0], d)
	return len(p) &^ 7
}
