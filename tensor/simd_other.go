//go:build !(goexperiment.simd && amd64)

package tensor

// Without GOEXPERIMENT=simd on amd64 only the portable kernels exist; the
// SIMD entry points below are never called because level stays levelGo.

func detectLevel() int { return levelGo }

func gemmSIMD(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, parallel bool) {
	panic("tensor: SIMD kernels are not built")
}

func gemmSIMDTerm(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, parallel bool, t *Term) {
	panic("tensor: SIMD kernels are not built")
}

func dotSIMD(a, b []float32) float32         { panic("tensor: SIMD kernels are not built") }
func axpySIMD(alpha float32, x, y []float32) { panic("tensor: SIMD kernels are not built") }
func scaleSIMD(alpha float32, x []float32)   { panic("tensor: SIMD kernels are not built") }
func addSIMD(dst, a, b []float32)            { panic("tensor: SIMD kernels are not built") }
func mulSIMD(dst, a, b []float32)            { panic("tensor: SIMD kernels are not built") }
func sumSIMD(x []float32) float32            { panic("tensor: SIMD kernels are not built") }
func sumSquaresSIMD(x []float32) float32     { panic("tensor: SIMD kernels are not built") }
func maxSIMD(x []float32) float32            { panic("tensor: SIMD kernels are not built") }
func argmaxSIMD(x []float32) int             { panic("tensor: SIMD kernels are not built") }
func atLeastSIMD(x []float32, t float32, dst []int32) []int32 {
	panic("tensor: SIMD kernels are not built")
}
func expSubSIMD(dst, x []float32, m float32) float32 { panic("tensor: SIMD kernels are not built") }
func negateSIMD(dst, x []float32) int                { panic("tensor: SIMD kernels are not built") }
func swigluSIMD(out, h1, h3 []float32) int           { panic("tensor: SIMD kernels are not built") }
func swigluBackSIMD(dh1, dh3, dout, h1, h3 []float32) int {
	panic("tensor: SIMD kernels are not built")
}
func softmaxBackSIMD(d, p []float32, negDot, scale float32) int {
	panic("tensor: SIMD kernels are not built")
}

func clearUpper() {}

func dotRowsSIMD(M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	panic("tensor: SIMD kernels are not built")
}

func qRowsSIMD(m *QMatrix, y, x []float32, a *q8Acts, M, lo, hi int, beta float32) {
	panic("tensor: SIMD kernels are not built")
}

func widenRowSIMD(m *QMatrix, i int, dst []float32) { panic("tensor: SIMD kernels are not built") }

func q8TilesOK() bool { return false }

func (m *QMatrix) mulQ8Tiles(t *Team, y, x []float32, M int, beta float32) {
	panic("tensor: SIMD kernels are not built")
}

func q8StripsSIMD(m *QMatrix, y []float32, a *q8Acts, M, lo, hi int, beta float32) {
	panic("tensor: SIMD kernels are not built")
}

func bf16TilesOK(cols int) bool { return false }

func (m *QMatrix) mulBF16Tiles(y, x []float32, M int, beta float32) {
	panic("tensor: SIMD kernels are not built")
}

func quantizeBlockSIMD(q []int8, x []float32) (float32, int32) {
	panic("tensor: SIMD kernels are not built")
}

func expScaledSIMD(dst, x []float32, m, s float32, sum *float64) int {
	panic("tensor: SIMD kernels are not built")
}

func divideBySIMD(p []float32, d float64) int { panic("tensor: SIMD kernels are not built") }

func halfDotOK(m *QMatrix) bool { return false }

func (m *QMatrix) mulHalfDot(t *Team, y, x []float32, M int, beta float32) {
	panic("tensor: SIMD kernels are not built")
}
