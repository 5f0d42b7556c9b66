package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemmPlus checks C = op(A)·op(B) + op(A2)·op(B2) + beta·C against the
// float64 triple loop (refGemm) on every level, and, where GemmPlus says so
// (the blocked path: no transposed A, more than 32 rows, a term of fewer
// than 32), for the bits of Gemm followed by Gemm of the term.
func TestGemmPlus(t *testing.T) {
	type plusCase struct {
		gemmCase
		K2 int
	}
	cs := []plusCase{
		{gemmCase{false, true, 67, 172, 64, 0, 0}, 8},   // a LoRA forward: x·Wᵀ + u·Bᵀ
		{gemmCase{false, false, 70, 172, 172, 3, 1}, 8}, // its dx += dy·W + du·A
		{gemmCase{false, true, 600, 100, 300, 0, 1}, 8}, // more rows than lazyMaxRows
		{gemmCase{false, false, 600, 70, 40, 2, 0}, 4},  // ... and a partial last panel
		{gemmCase{false, true, 45, 50, 30, 1, 0}, 300},  // a term of two K blocks
		{gemmCase{false, false, 37, 40, 300, 0, 1}, 31}, // three K blocks, then the term
		{gemmCase{true, false, 64, 40, 100, 0, 1}, 8},   // transposed A: two products
		{gemmCase{false, true, 3, 90, 64, 0, 0}, 8},     // decoding rows
		{gemmCase{false, true, 20, 90, 64, 0, 1}, 8},    // a batch of rows
		{gemmCase{false, false, 50, 8, 64, 0, 0}, 8},    // narrow C
		{gemmCase{false, true, 33, 9, 5, 0, 0.5}, 3},    // beta 0.5
		{gemmCase{false, false, 40, 12, 0, 0, 1}, 8},    // no terms in the first pair
	}
	forLevels(t, func(t *testing.T) {
		for ci, g := range cs {
			r := rand.New(rand.NewPCG(uint64(ci), 9))
			operands := func(K int) (a []float32, lda int, b []float32, ldb int) {
				ar, ac, br, bc := g.M, K, K, g.N
				if g.transA {
					ar, ac = K, g.M
				}
				if g.transB {
					br, bc = g.N, K
				}
				lda, ldb = ac+g.pad, bc+g.pad
				return randSlice(r, max(0, (ar-1)*lda+ac)), lda, randSlice(r, max(0, (br-1)*ldb+bc)), ldb
			}
			a, lda, b, ldb := operands(g.K)
			a2, lda2, b2, ldb2 := operands(g.K2)
			ldc := g.N + g.pad
			c0 := randSlice(r, (g.M-1)*ldc+g.N)
			if g.beta == 0 {
				for i := range c0 {
					c0[i] = float32(math.NaN()) // beta 0 must not read C
				}
			}
			want, mag := refGemm(g.transA, g.transB, g.M, g.N, g.K, a, lda, b, ldb, g.beta, c0, ldc)
			want2, mag2 := refGemm(g.transA, g.transB, g.M, g.N, g.K2, a2, lda2, b2, ldb2, 0, c0, ldc)
			c := append([]float32(nil), c0...)
			GemmPlus(g.transA, g.transB, g.M, g.N, g.K, a, lda, b, ldb, g.beta, c, ldc, Term{K: g.K2, A: a2, LdA: lda2, B: b2, LdB: ldb2})
			two := append([]float32(nil), c0...)
			Gemm(g.transA, g.transB, g.M, g.N, g.K, a, lda, b, ldb, g.beta, two, ldc)
			Gemm(g.transA, g.transB, g.M, g.N, g.K2, a2, lda2, b2, ldb2, 1, two, ldc)
			same := !g.transA && g.M > 32 && g.K2 < 32
			name := fmt.Sprintf("%v_K2%d", g.gemmCase, g.K2)
			bad := 0
			for i := range g.M {
				for j := range g.N {
					got, w := c[i*ldc+j], want[i*g.N+j]+want2[i*g.N+j]
					tol := float64(g.K+g.K2+2)*0x1p-24*(mag[i*g.N+j]+mag2[i*g.N+j]) + 1e-30
					if !(math.Abs(float64(got)-w) <= tol) || same && math.Float32bits(got) != math.Float32bits(two[i*ldc+j]) {
						if bad++; bad <= 3 {
							t.Errorf("%s: C[%d,%d] = %g, want %g (tol %g; Gemm twice: %g)", name, i, j, got, w, tol, two[i*ldc+j])
						}
					}
				}
				for j := g.N; j < ldc && i < g.M-1; j++ {
					if math.Float32bits(c[i*ldc+j]) != math.Float32bits(c0[i*ldc+j]) {
						t.Errorf("%s: padding C[%d,%d] changed to %g", name, i, j, c[i*ldc+j])
					}
				}
			}
		}
	})
}

// BenchmarkGemmPlus: a rank-8 LoRA term over the 180M model's gate
// projection for a training step's 514 rows (x·Wᵀ + u·Bᵀ, 576 → 1536) and
// over the down projection's input gradient (dy·W + du·A, 576 → 1536), by
// GemmPlus and by Gemm twice:
//
//	GOEXPERIMENT=simd go test ./tensor -run '^$' -bench GemmPlus -benchtime 200x -count 3
func BenchmarkGemmPlus(b *testing.B) {
	const M, r = 514, 8
	x, y := make([]float32, M*1536), make([]float32, M*1536)
	for i := range x {
		x[i] = float32(i%5) * 0.1
	}
	u := make([]float32, M*r)
	for _, c := range []struct {
		name   string
		transB bool
		K, N   int
		w, tb  []float32 // W: N×K with transB, else K×N; the term's B likewise (r rows)
		beta   float32   // a gradient adds to C
	}{
		{"forward", true, 576, 1536, make([]float32, 1536*576), make([]float32, 1536*r), 0},
		{"dx", false, 576, 1536, make([]float32, 576*1536), make([]float32, r*1536), 1},
	} {
		ldb, ldt := c.N, c.N
		if c.transB {
			ldb, ldt = c.K, r
		}
		b.Run(c.name+"/plus", func(b *testing.B) {
			for range b.N {
				GemmPlus(false, c.transB, M, c.N, c.K, x, c.K, c.w, ldb, c.beta, y, c.N, Term{K: r, A: u, LdA: r, B: c.tb, LdB: ldt})
			}
		})
		b.Run(c.name+"/two", func(b *testing.B) {
			for range b.N {
				Gemm(false, c.transB, M, c.N, c.K, x, c.K, c.w, ldb, c.beta, y, c.N)
				Gemm(false, c.transB, M, c.N, r, u, r, c.tb, ldt, 1, y, c.N)
			}
		})
	}
}

// BenchmarkGemmLoRANarrow: the narrow products of a LoRA adapter's step on
// the 180M model's 576-wide matrices (514 rows) at ranks 8, 16 and 32: u =
// x·Aᵀ, dA += duᵀ·x, du = dy·B and dB += dyᵀ·u, reported as GFLOP/s.
//
//	GOEXPERIMENT=simd go test ./tensor -run '^$' -bench GemmLoRANarrow -benchtime 400x
func BenchmarkGemmLoRANarrow(b *testing.B) {
	const M, in = 514, 576
	r := rand.New(rand.NewPCG(8, 8))
	x, dy := randSlice(r, M*in), randSlice(r, M*in)
	for _, rank := range []int{8, 16, 32} {
		w, u, g := randSlice(r, rank*in), randSlice(r, M*rank), make([]float32, rank*in)
		for _, c := range []struct {
			name string
			run  func()
		}{
			{"xA", func() { Gemm(false, true, M, rank, in, x, in, w, in, 0, u, rank) }},
			{"duX", func() { Gemm(true, false, rank, in, M, u, rank, x, in, 1, g, in) }},
			{"dyB", func() { Gemm(false, false, M, rank, in, dy, in, w, rank, 0, u, rank) }},
			{"dyU", func() { Gemm(true, false, in, rank, M, dy, in, u, rank, 1, g, rank) }},
		} {
			b.Run(fmt.Sprintf("r%d/%s", rank, c.name), func(b *testing.B) {
				for range b.N {
					c.run()
				}
				b.ReportMetric(2*M*float64(rank*in)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
