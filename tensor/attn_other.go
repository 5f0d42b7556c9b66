//go:build !(goexperiment.simd && amd64)

package tensor

func attendHeadSIMD(out, q, k, v []float32, ld, n int, scale float32, att []float32) {
	panic("tensor: SIMD kernels are not built")
}

func attend3SIMD(out, q []float32, hs int, k, v []float32, ld, n int, scale float32, att []float32) {
	panic("tensor: SIMD kernels are not built")
}
