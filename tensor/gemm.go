package tensor

import "fmt"

// Gemm computes C = op(A) op(B) + beta*C with BLAS row-major semantics:
// op(A) is M x K, op(B) is K x N and C is M x N with row stride ldc. Without
// transA, A is stored M x K with row stride lda; with transA it is stored
// K x M (op(A) = A^T). B likewise: K x N, or N x K with transB. With
// beta == 0, C is overwritten without being read (NaNs in C are ignored).
// C must not overlap A or B. Large products are split over Threads()
// threads with ParallelFor; the result does not depend on the thread count.
//
// Bad shapes or slices too short for them are programmer errors and panic
// with a message naming the operand.
func Gemm(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, M, N, K, a, lda, b, ldb, c, ldc)
	gemm(transA, transB, M, N, K, a, lda, b, ldb, beta, c, ldc, true)
}

// GemmSerial is Gemm on the caller's goroutine only, for callers that
// parallelize around it (for example over attention heads).
func GemmSerial(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, M, N, K, a, lda, b, ldb, c, ldc)
	gemm(transA, transB, M, N, K, a, lda, b, ldb, beta, c, ldc, false)
}

// Term is the second product of GemmPlus: op(A) is M x K and op(B) is
// K x N, stored as Gemm's operands are and transposed like the first pair.
type Term struct {
	K   int
	A   []float32
	LdA int
	B   []float32
	LdB int
}

// GemmPlus computes C = op(A)·op(B) + op(t.A)·op(t.B) + beta·C: the product
// of the concatenations [op(A) op(t.A)] and [op(B); op(t.B)], such as a
// LoRA adapter's low-rank (x·Aᵀ)·Bᵀ beside a base layer's x·Wᵀ. Where the
// blocked kernels take both products (no transposed A, more than 32 rows, a
// term of fewer than 32 terms), the term runs on each column panel of C
// right after the first product's last K block, as more K blocks, while
// the panel's rows are in L1 — not as a second pass over C — and the sums
// are those of Gemm followed by Gemm of the term with beta 1. Elsewhere it
// is those two calls.
func GemmPlus(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, t Term) {
	checkGemm(transA, transB, M, N, K, a, lda, b, ldb, c, ldc)
	checkGemm(transA, transB, M, N, t.K, t.A, t.LdA, t.B, t.LdB, c, ldc)
	if level > levelGo && M > 0 && N > 0 && K > 0 && t.K > 0 && (beta == 0 || beta == 1) {
		gemmSIMDTerm(transA, transB, M, N, K, a, lda, b, ldb, beta, c, ldc, true, &t)
		clearUpper()
		return
	}
	gemm(transA, transB, M, N, K, a, lda, b, ldb, beta, c, ldc, true)
	gemm(transA, transB, M, N, t.K, t.A, t.LdA, t.B, t.LdB, 1, c, ldc, true)
}

func gemm(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, parallel bool) {
	if M == 0 || N == 0 {
		return
	}
	if K == 0 || (beta != 0 && beta != 1) {
		scaleC(M, N, beta, c, ldc)
		if K == 0 {
			return
		}
		beta = 1
	}
	if level > levelGo {
		gemmSIMD(transA, transB, M, N, K, a, lda, b, ldb, beta, c, ldc, parallel)
		clearUpper()
		return
	}
	if !parallel || Threads() == 1 || 2*M*N*K < 1<<20 {
		gemmGo(transA, transB, M, N, K, a, lda, b, ldb, beta, c, ldc)
		return
	}
	ParallelFor(M, 8, func(i0, i1 int) {
		var ai []float32
		if transA {
			ai = a[i0:] // columns i0.. of the stored K x M matrix
		} else {
			ai = a[i0*lda:] // rows i0..
		}
		gemmGo(transA, transB, i1-i0, N, K, ai, lda, b, ldb, beta, c[i0*ldc:], ldc)
	})
}

// checkGemm panics when a shape is negative, a leading dimension is smaller
// than its row, or a slice is too short for the rows it must hold.
func checkGemm(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if M < 0 || N < 0 || K < 0 {
		panic(fmt.Sprintf("tensor.Gemm: negative shape M=%d N=%d K=%d", M, N, K))
	}
	checkOperand("A", transA, M, K, a, lda)
	checkOperand("B", transB, K, N, b, ldb)
	checkOperand("C", false, M, N, c, ldc)
}

// checkOperand checks a rows x cols operand stored with row stride ld, or
// stored transposed (cols x rows) when trans.
func checkOperand(name string, trans bool, rows, cols int, s []float32, ld int) {
	if trans {
		rows, cols = cols, rows
	}
	if rows == 0 || cols == 0 {
		return
	}
	if ld < cols {
		panic(fmt.Sprintf("tensor.Gemm: %s is stored %dx%d but its leading dimension is %d < %d", name, rows, cols, ld, cols))
	}
	if need := (rows-1)*ld + cols; len(s) < need {
		panic(fmt.Sprintf("tensor.Gemm: %s is stored %dx%d with leading dimension %d and needs %d values, has %d", name, rows, cols, ld, need, len(s)))
	}
}

// scaleC sets C = beta*C; beta == 0 writes zeros without reading C.
func scaleC(M, N int, beta float32, c []float32, ldc int) {
	for i := range M {
		row := c[i*ldc : i*ldc+N]
		if beta == 0 {
			clear(row)
			continue
		}
		if beta != 1 {
			Scale(beta, row)
		}
	}
}

// gemmGo is the portable matrix multiplication, used when the CPU or the
// build has no SIMD; beta is 0 or 1 here.
func gemmGo(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	var col []float32 // column i of a transposed A
	if transA {
		col = make([]float32, K)
	}
	for i := range M {
		ci := c[i*ldc : i*ldc+N]
		if beta == 0 {
			clear(ci)
		}
		var ai []float32 // row i of op(A)
		if transA {
			for k := range col {
				col[k] = a[k*lda+i]
			}
			ai = col
		} else {
			ai = a[i*lda : i*lda+K]
		}
		if transB {
			// C[i,j] += op(A)[i,:] . B[j,:], both contiguous.
			for j := range ci {
				ci[j] += dotGo(ai, b[j*ldb:j*ldb+K])
			}
			continue
		}
		// C[i,:] += op(A)[i,k] B[k,:] over contiguous rows of B.
		for k, av := range ai {
			axpyGo(av, b[k*ldb:k*ldb+N], ci)
		}
	}
}

// dotGo is the portable dot product with four partial sums for
// instruction-level parallelism.
func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
