package model

import "fspo/tensor"

// gemm computes C(MxN) = op(A)·op(B) + beta·C in row-major BLAS terms.
// It is a variable so the engine can run on the tensor package's kernels.
var gemm = tensor.Gemm

func naiveGemm(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < M; i++ {
		for j := 0; j < N; j++ {
			var s float32
			for k := 0; k < K; k++ {
				var av, bv float32
				if transA {
					av = a[k*lda+i]
				} else {
					av = a[i*lda+k]
				}
				if transB {
					bv = b[j*ldb+k]
				} else {
					bv = b[k*ldb+j]
				}
				s += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = s
			} else {
				c[i*ldc+j] = beta*c[i*ldc+j] + s
			}
		}
	}
}

// linear: y (M,out) = x (M,in) · Wᵀ, W (out,in).
func linear(y, x, w []float32, M, in, out int) {
	gemm(false, true, M, out, in, x, in, w, in, 0, y, out)
}

// linearBackward: dx (M,in) += dy (M,out) · W;  dW (out,in) += dyᵀ · x.
func linearBackward(dx, dw, dy, x, w []float32, M, in, out int) {
	if dx != nil {
		gemm(false, false, M, in, out, dy, out, w, in, 1, dx, in)
	}
	gemm(true, false, out, in, M, dy, out, x, in, 1, dw, in)
}

// parallelFor runs fn over [0,n) in chunks on the engine's threads.
var parallelFor = tensor.ParallelFor
