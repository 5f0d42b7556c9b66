package tensor

import (
	"math/rand/v2"
	"time"
)

// MeasureGemm times Gemm on random M x N x K operands (op(A) = A^T with
// transA, op(B) = B^T with transB, beta = 1, packed leading dimensions)
// with the given number of threads, repeating for at least minDur after one
// warm-up call, and returns the rate in GFLOP/s (2*M*N*K flops per call).
// The previous thread count is restored before it returns.
func MeasureGemm(transA, transB bool, M, N, K, threads int, minDur time.Duration) (gflops float64) {
	saved := Threads()
	SetThreads(threads)
	defer SetThreads(saved)
	r := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = r.Float32() - 0.5
		}
		return s
	}
	a, b, c := fill(M*K), fill(K*N), fill(M*N)
	lda, ldb := K, N
	if transA {
		lda = M
	}
	if transB {
		ldb = K
	}
	call := func() { Gemm(transA, transB, M, N, K, a, lda, b, ldb, 1, c, N) }
	call()
	calls := 0
	start := time.Now()
	for time.Since(start) < minDur || calls == 0 {
		call()
		calls++
	}
	return 2 * float64(M) * float64(N) * float64(K) * float64(calls) / time.Since(start).Seconds() / 1e9
}
