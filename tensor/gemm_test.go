package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// forLevels runs f once per instruction-set level this machine supports, so
// the portable and SIMD paths are both tested in one run.
func forLevels(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	saved := level
	defer func() { level = saved }()
	for l := levelGo; l <= maxLevel; l++ {
		level = l
		t.Run(SIMDLevel(), f)
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// refGemm is the textbook triple loop in float64. It also returns, per
// element, sum_k |op(A)(i,k) op(B)(k,j)| + |beta C(i,j)| for error bounds.
func refGemm(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, mag []float64) {
	want = make([]float64, M*N)
	mag = make([]float64, M*N)
	for i := range M {
		for j := range N {
			var s, m float64
			for k := range K {
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
				s += float64(av) * float64(bv)
				m += math.Abs(float64(av) * float64(bv))
			}
			if beta != 0 {
				s += float64(beta) * float64(c[i*ldc+j])
				m += math.Abs(float64(beta) * float64(c[i*ldc+j]))
			}
			want[i*N+j], mag[i*N+j] = s, m
		}
	}
	return want, mag
}

type gemmCase struct {
	transA, transB bool
	M, N, K        int
	pad            int // extra row stride of A, B and C
	beta           float32
}

func (g gemmCase) String() string {
	op := map[bool]string{false: "N", true: "T"}
	return fmt.Sprintf("%s%s_M%d_N%d_K%d_pad%d_beta%g", op[g.transA], op[g.transB], g.M, g.N, g.K, g.pad, g.beta)
}

func gemmCases() []gemmCase {
	var cs []gemmCase
	// The model's shapes, with M cut down where it does not change the path.
	for _, n := range []int{32, 64, 172, 512} {
		for _, k := range []int{64, 172} {
			cs = append(cs, gemmCase{false, true, 67, n, k, 0, 0}, gemmCase{false, true, 1, n, k, 0, 1}, gemmCase{false, true, 5, n, k, 0, 0})
		}
	}
	for _, n := range []int{64, 172} {
		for _, k := range []int{32, 64, 172, 512} {
			cs = append(cs, gemmCase{false, false, 70, n, k, 0, 0})
		}
		for _, m := range []int{32, 64, 172} {
			cs = append(cs, gemmCase{true, false, m, n, 600, 0, 1})
		}
	}
	// Attention, head size 8, strided.
	cs = append(cs,
		gemmCase{false, true, 37, 37, 8, 56, 0},  // Q K^T
		gemmCase{false, false, 37, 8, 37, 24, 0}, // P V
		gemmCase{true, false, 37, 8, 37, 24, 1},  // dV = P^T dO
		gemmCase{false, false, 1, 8, 300, 56, 0}, // decoding P V
		gemmCase{false, false, 1, 300, 8, 0, 0},  // decoding q K^T with K^T stored
		gemmCase{false, true, 1, 300, 8, 24, 0},  // decoding q K^T
		gemmCase{true, true, 45, 5, 50, 3, 0},    // narrow C from A^T B^T
		gemmCase{false, false, 22, 40, 8, 5, 1},  // K = 8 path, B in place, accumulating
		gemmCase{false, false, 2, 112, 37, 3, 1}, // decoding blocks of 64, 32 and 16 columns
		gemmCase{false, false, 1, 93, 37, 0, 0},  // ... and of 13 columns
		gemmCase{false, false, 45, 7, 50, 3, 1},  // narrow C, dot form
		gemmCase{false, true, 16, 64, 576, 0, 0}, // 16 decoded rows: 2×4 dot blocks
		gemmCase{false, true, 19, 70, 100, 2, 1}, // ... with row, column and K tails
		// LoRA's narrow products at ranks 16 and 32 (narrowDotN, narrowTransN)
		gemmCase{false, true, 70, 16, 96, 0, 0},  // u = x·Aᵀ
		gemmCase{false, false, 70, 16, 96, 2, 0}, // du = dy·B
		gemmCase{false, false, 70, 13, 96, 0, 1}, // ... at rank 13
		gemmCase{true, false, 96, 16, 70, 0, 1},  // dB += dyᵀ·u: 8×8 blocks
		gemmCase{true, false, 45, 32, 70, 3, 1},  // ... rank 32, a row tail
		gemmCase{true, false, 40, 20, 70, 0, 0},  // ... rank 20: one value at a time
		gemmCase{true, false, 32, 32, 30, 0, 1},  // a square C: not narrow (C^T is no wider)
		gemmCase{true, false, 33, 32, 30, 1, 0},  // ... one row more: narrow
	)
	// Odd sizes and tails through every path.
	r := rand.New(rand.NewPCG(1, 2))
	for range 60 {
		cs = append(cs, gemmCase{
			transA: r.IntN(2) == 0, transB: r.IntN(2) == 0,
			M: 1 + r.IntN(40), N: 1 + r.IntN(70), K: 1 + r.IntN(300),
			pad: r.IntN(3) * 3, beta: float32(r.IntN(2)),
		})
	}
	cs = append(cs, gemmCase{false, false, 3, 4, 0, 0, 1}, gemmCase{false, false, 3, 4, 0, 0, 0}, gemmCase{true, true, 9, 33, 17, 1, 0.5})
	return cs
}

func TestGemm(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		for ci, g := range gemmCases() {
			r := rand.New(rand.NewPCG(uint64(ci), 7))
			ar, ac := g.M, g.K
			if g.transA {
				ar, ac = g.K, g.M
			}
			br, bc := g.K, g.N
			if g.transB {
				br, bc = g.N, g.K
			}
			lda, ldb, ldc := ac+g.pad, bc+g.pad, g.N+g.pad
			a := randSlice(r, max(0, (ar-1)*lda+ac))
			b := randSlice(r, max(0, (br-1)*ldb+bc))
			c0 := randSlice(r, (g.M-1)*ldc+g.N)
			if g.beta == 0 {
				for i := range c0 {
					c0[i] = float32(math.NaN()) // beta 0 must not read C
				}
			}
			want, mag := refGemm(g.transA, g.transB, g.M, g.N, g.K, a, lda, b, ldb, g.beta, c0, ldc)
			for _, serial := range []bool{false, true} {
				c := append([]float32(nil), c0...)
				if serial {
					GemmSerial(g.transA, g.transB, g.M, g.N, g.K, a, lda, b, ldb, g.beta, c, ldc)
				} else {
					Gemm(g.transA, g.transB, g.M, g.N, g.K, a, lda, b, ldb, g.beta, c, ldc)
				}
				bad := 0
				for i := range g.M {
					for j := range g.N {
						got, w := float64(c[i*ldc+j]), want[i*g.N+j]
						// Rounding-error bound of a float32 sum of K+1 terms (Higham, "Accuracy and
						// Stability of Numerical Algorithms", 2nd ed., eq. 3.5): (K+1) u sum|terms|.
						tol := float64(g.K+2)*0x1p-24*mag[i*g.N+j] + 1e-30
						if !(math.Abs(got-w) <= tol) {
							if bad++; bad <= 3 {
								t.Errorf("%v serial=%v: C[%d,%d] = %g, want %g (tol %g)", g, serial, i, j, got, w, tol)
							}
						}
					}
					// Padding between rows of C must be untouched.
					for j := g.N; j < ldc && i < g.M-1; j++ {
						if got, w := c[i*ldc+j], c0[i*ldc+j]; math.Float32bits(got) != math.Float32bits(w) {
							t.Errorf("%v: padding C[%d,%d] changed to %g", g, i, j, got)
						}
					}
				}
			}
		}
	})
}

func TestGemmLargeParallel(t *testing.T) {
	// Big enough to be split over threads, with every size odd.
	defer SetThreads(Threads())
	for _, threads := range []int{1, 2, 3} {
		SetThreads(threads)
		forLevels(t, func(t *testing.T) {
			// The second shape packs a B big enough to be packed in parallel.
			for ti, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}, {false, false}, {true, true}} {
				g := gemmCase{false, true, 301, 173, 97, 0, 1}
				if ti >= 4 {
					g = gemmCase{false, true, 70, 100, 401, 0, 1}
				}
				g.transA, g.transB = tr[0], tr[1]
				r := rand.New(rand.NewPCG(3, 4))
				a, b, c := randSlice(r, g.M*g.K), randSlice(r, g.K*g.N), randSlice(r, g.M*g.N)
				lda, ldb := g.K, g.N
				if g.transA {
					lda = g.M
				}
				if g.transB {
					ldb = g.K
				}
				want, mag := refGemm(g.transA, g.transB, g.M, g.N, g.K, a, lda, b, ldb, 1, c, g.N)
				Gemm(g.transA, g.transB, g.M, g.N, g.K, a, lda, b, ldb, 1, c, g.N)
				for i, w := range want {
					if d := math.Abs(float64(c[i]) - w); d > float64(g.K+2)*0x1p-24*mag[i] {
						t.Fatalf("%v threads=%d: C[%d] = %g, want %g", g, threads, i, c[i], w)
					}
				}
			}
		})
	}
}

func TestGemmBadShapesPanic(t *testing.T) {
	cases := []struct {
		name string
		f    func()
		want string
	}{
		{"short A", func() {
			Gemm(false, false, 2, 2, 2, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
		},
			"tensor.Gemm: A is stored 2x2 with leading dimension 2 and needs 4 values, has 3"},
		{"small ldb", func() {
			Gemm(false, true, 2, 3, 2, make([]float32, 4), 2, make([]float32, 6), 1, 0, make([]float32, 6), 3)
		},
			"tensor.Gemm: B is stored 3x2 but its leading dimension is 1 < 2"},
		{"negative", func() { GemmSerial(false, false, -1, 2, 2, nil, 2, nil, 2, 0, nil, 2) },
			"tensor.Gemm: negative shape M=-1 N=2 K=2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if got := fmt.Sprint(recover()); got != tc.want {
					t.Errorf("panic %q, want %q", got, tc.want)
				}
			}()
			tc.f()
		})
	}
}

func TestGemmSameResultAnyThreads(t *testing.T) {
	// Training must be reproducible whatever the thread count: every element
	// is summed in the same order however the work is split.
	defer SetThreads(Threads())
	shapes := []gemmCase{
		{false, true, 2048 / 4, 172, 64, 0, 0},
		{false, false, 300, 64, 512, 0, 1},
		{true, false, 64, 172, 1024, 0, 1},
		{true, false, 1024, 8, 128, 0, 1},
		{false, false, 512, 8, 256, 0, 0},
		{false, true, 6, 3000, 40, 0, 0},
	}
	for _, g := range shapes {
		r := rand.New(rand.NewPCG(5, 5))
		a, b, c0 := randSlice(r, g.M*g.K), randSlice(r, g.K*g.N), randSlice(r, g.M*g.N)
		lda, ldb := g.K, g.N
		if g.transA {
			lda = g.M
		}
		if g.transB {
			ldb = g.K
		}
		var first []float32
		for _, threads := range []int{1, 2, 3} {
			SetThreads(threads)
			c := append([]float32(nil), c0...)
			Gemm(g.transA, g.transB, g.M, g.N, g.K, a, lda, b, ldb, g.beta, c, g.N)
			if first == nil {
				first = c
				continue
			}
			for i := range c {
				if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
					t.Fatalf("%v: threads=%d gives C[%d] = %g, threads=1 gives %g", g, threads, i, c[i], first[i])
				}
			}
		}
	}
}

// TestGemmRowsAsAlone: on AVX-512, a row of a batched x·Wᵀ (up to 32 rows,
// W at least 64×64) equals, bit for bit, the same row multiplied alone, so a
// user's decoded logits do not depend on who else is decoding. (The other
// levels run the batch through the blocked kernel, whose sums are ordered
// differently.)
func TestGemmRowsAsAlone(t *testing.T) {
	if maxLevel < levelAVX512 {
		t.Skip("the batch is computed row by row only on AVX-512, which this machine lacks")
	}
	r := rand.New(rand.NewPCG(5, 5))
	for _, s := range [][3]int{{16, 576, 192}, {13, 100, 70}, {32, 64, 64}, {7, 300, 129}, {16, 64, 1002}, {9, 96, 4099}} {
		M, K, N := s[0], s[1], s[2]
		a, w, c0 := randSlice(r, M*K), randSlice(r, N*K), randSlice(r, M*N)
		for _, beta := range []float32{0, 1} { // beta 1 adds to what C holds
			all := slices.Clone(c0)
			Gemm(false, true, M, N, K, a, K, w, K, beta, all, N)
			for i := range M {
				one := slices.Clone(c0[i*N : (i+1)*N])
				Gemm(false, true, 1, N, K, a[i*K:], K, w, K, beta, one, N)
				for j := range N {
					if math.Float32bits(one[j]) != math.Float32bits(all[i*N+j]) {
						t.Fatalf("M=%d K=%d N=%d beta=%v: row %d col %d: alone %v, in the batch %v", M, K, N, beta, i, j, one[j], all[i*N+j])
					}
				}
			}
		}
	}
}
