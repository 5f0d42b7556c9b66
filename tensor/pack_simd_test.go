//go:build goexperiment.simd && amd64

package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemmPackingPathsAgree: products of up to lazyMaxRows rows pack B's
// panels inside the work items, larger ones pack all of B first; work items
// of up to transposeARows rows of a transposed A transpose it first, larger
// ones read it in place. Every combination gives the reference's result
// (float64 triple loop, refGemm) and the same bits, on one thread and on
// three: the paths change where data is copied, not the order of any sum.
func TestGemmPackingPathsAgree(t *testing.T) {
	defer SetThreads(Threads())
	saved, savedT := lazyMaxRows, transposeARows
	defer func() { lazyMaxRows, transposeARows = saved, savedT }()
	cases := []gemmCase{
		{false, true, 256, 200, 600, 0, 0}, // x·Wᵀ: K over three blocks, a 16-wide remainder
		{false, false, 256, 77, 530, 3, 1}, // dY·W, strided, accumulating, a 13-wide remainder
		{false, false, 130, 96, 300, 0, 0}, // B read in place on the eager path (no remainder)
		{true, false, 70, 100, 401, 0, 1},  // a transposed A
		{true, true, 97, 45, 260, 2, 0.5},  // both transposed
		{false, true, 512, 64, 64, 0, 0},   // lazyMaxRows itself
		{false, false, 40, 1000, 70, 0, 0}, // many panels to share out
		{false, false, 12, 40, 300, 0, 0},  // few rows, below packMinRows
		{false, true, 9, 3, 300, 0, 0},     // narrow C
	}
	for _, g := range cases {
		r := rand.New(rand.NewPCG(uint64(g.M), uint64(g.N)))
		ar, ac, br, bc := g.M, g.K, g.K, g.N
		if g.transA {
			ar, ac = g.K, g.M
		}
		if g.transB {
			br, bc = g.N, g.K
		}
		lda, ldb, ldc := ac+g.pad, bc+g.pad, g.N+g.pad
		a, b := randSlice(r, (ar-1)*lda+ac), randSlice(r, (br-1)*ldb+bc)
		c0 := randSlice(r, (g.M-1)*ldc+g.N)
		want, mag := refGemm(g.transA, g.transB, g.M, g.N, g.K, a, lda, b, ldb, g.beta, c0, ldc)
		var first []float32
		for _, threads := range []int{1, 3} {
			for _, paths := range [][2]int{{saved, savedT}, {0, savedT}, {saved, 0}, {0, 0}} {
				SetThreads(threads)
				lazyMaxRows, transposeARows = paths[0], paths[1]
				c := append([]float32(nil), c0...)
				Gemm(g.transA, g.transB, g.M, g.N, g.K, a, lda, b, ldb, g.beta, c, ldc)
				for i := range g.M {
					for j := range g.N {
						got, w := float64(c[i*ldc+j]), want[i*g.N+j]
						if math.Abs(got-w) > float64(g.K+2)*0x1p-24*mag[i*g.N+j] {
							t.Fatalf("%v threads=%d paths=%v: C[%d,%d] = %g, want %g", g, threads, paths, i, j, got, w)
						}
					}
				}
				if first == nil {
					first = c
					continue
				}
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
						t.Fatalf("%v threads=%d paths=%v: C[%d] = %g, the lazy path on one thread gave %g", g, threads, paths, i, c[i], first[i])
					}
				}
			}
		}
	}
}
