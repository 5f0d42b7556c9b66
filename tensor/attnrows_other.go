//go:build !(goexperiment.simd && amd64)

package tensor

func attnRowForwardSIMD(p, scr, out, q, kT, vT []float32, ld, n, ma, mb int, scale float32) {
	panic("tensor: SIMD kernels are not built")
}

func attnRowBackwardSIMD(ds, dq, p, do, kT, vT []float32, ld, n int, scale float32) {
	panic("tensor: SIMD kernels are not built")
}

func attnColsAccumSIMD(dT []float32, ld int, w []float32, ldw int, g []float32, ldg, T int) {
	panic("tensor: SIMD kernels are not built")
}
