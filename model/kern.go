package model

import "fspo/tensor"

// gemm computes C(MxN) = op(A)·op(B) + beta·C in row-major BLAS terms, on
// the tensor package's kernels.
var gemm = tensor.Gemm

// linear: y (M,out) = x (M,in) · Wᵀ, W (out,in).
func linear(y, x, w []float32, M, in, out int) {
	gemm(false, true, M, out, in, x, in, w, in, 0, y, out)
}

// linearBackward: dx (M,in) += dy (M,out) · W;  dW (out,in) += dyᵀ · x.
func linearBackward(dx, dw, dy, x, w []float32, M, in, out int) {
	if dx != nil {
		gemm(false, false, M, in, out, dy, out, w, in, 1, dx, in)
	}
	if dw != nil {
		gemm(true, false, out, in, M, dy, out, x, in, 1, dw, in)
	}
}

// parallelFor runs fn over [0,n) in chunks on the engine's threads.
var parallelFor = tensor.ParallelFor
