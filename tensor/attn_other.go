//go:build !(goexperiment.simd && amd64)

package tensor

func attendHead8SIMD(out, q, k, v []float32, ld, n int, scale float32, att []float32) {
	panic("tensor: SIMD kernels are not built")
}

func attendHeadSIMD[T kvValue](out, q []float32, k, v []T, ld, n int, scale float32, att []float32) {
	panic("tensor: SIMD kernels are not built")
}

func attend3SIMD[T kvValue](out, q []float32, hs int, k, v []T, ld, n int, scale float32, att []float32) {
	panic("tensor: SIMD kernels are not built")
}

func widen16h(n16 int, src *uint16, dst *float32) {
	panic("tensor: SIMD kernels are not built")
}

func widenTail8h(k *uint16, ld int, dst *float32) {
	panic("tensor: SIMD kernels are not built")
}

func narrow16h(n16 int, src *float32, dst *uint16) {
	panic("tensor: SIMD kernels are not built")
}
