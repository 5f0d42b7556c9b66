package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// attnRowsCase is a causal attention of T rows whose rows past mb do not see
// the keys in [ma, mb), as in packed rows.
type attnRowsCase struct{ T, ma, mb int }

// masked reports whether row r does not see key j.
func (tc attnRowsCase) masked(r, j int) bool { return r >= tc.mb && j >= tc.ma && j < tc.mb }

// attnRowsResult holds the row kernels' output and gradients: out and dq
// row-major (T×hs), dkT and dvT transposed (hs×ld), P and dS T×ld.
type attnRowsResult struct {
	ld                int
	out, dq, dkT, dvT []float32
	P, dS             []float32
}

// attnRowsReference holds the float64 reference: the attention weights of
// each row and the output and gradients, all row-major (T×hs).
type attnRowsReference struct {
	P               [][]float64
	out, dq, dk, dv []float64
}

// TestAttnRows runs a causal attention of T rows through the row kernels
// and checks the output and every gradient against float64 loops over the
// untransposed operands, with an optional masked key range.
func TestAttnRows(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		for _, tc := range []attnRowsCase{{1, 0, 0}, {17, 0, 0}, {40, 3, 9}, {64, 0, 0}, {70, 5, 30}} {
			t.Run(fmt.Sprintf("T%d_mask%d-%d", tc.T, tc.ma, tc.mb), func(t *testing.T) {
				T, hs := tc.T, 8
				rng := rand.New(rand.NewPCG(uint64(T), 7))
				q, k, v, do := randSlice(rng, T*hs), randSlice(rng, T*hs), randSlice(rng, T*hs), randSlice(rng, T*hs)
				scale := float32(0.35)
				got := runAttnRows(tc, hs, q, k, v, do, scale)
				want := referenceAttnRows(tc, hs, q, k, v, do, scale)
				checkAttnRows(t, tc.T, hs, got, want)
			})
		}
	})
}

// runAttnRows runs the row kernels forward and backward over every row, with
// the keys and values transposed, and accumulates the key and value gradients.
func runAttnRows(tc attnRowsCase, hs int, q, k, v, do []float32, scale float32) attnRowsResult {
	T := tc.T
	ld := AttendScratch(T)
	kT, vT := make([]float32, hs*ld), make([]float32, hs*ld)
	for j := 0; j < T; j++ {
		for d := 0; d < hs; d++ {
			kT[d*ld+j], vT[d*ld+j] = k[j*hs+d], v[j*hs+d]
		}
	}
	res := attnRowsResult{
		ld: ld,
		P:  make([]float32, T*ld), dS: make([]float32, T*ld),
		out: make([]float32, T*hs), dq: make([]float32, T*hs),
	}
	for r := 0; r < T; r++ {
		ma, mb := 0, 0
		if r >= tc.mb {
			ma, mb = tc.ma, tc.mb
		}
		AttnRowForward(res.P[r*ld:], make([]float32, ld), res.out[r*hs:], q[r*hs:], kT, vT, ld, r+1, ma, mb, scale)
		AttnRowBackward(res.dS[r*ld:], res.dq[r*hs:], res.P[r*ld:], do[r*hs:], kT, vT, ld, r+1, scale)
	}
	res.dkT, res.dvT = make([]float32, hs*ld), make([]float32, hs*ld)
	AttnColsAccum(res.dvT, ld, res.P, ld, do, hs, T)
	AttnColsAccum(res.dkT, ld, res.dS, ld, q, hs, T)
	return res
}

// referenceAttnRows computes the masked causal attention and its gradients
// in float64 over the untransposed operands.
func referenceAttnRows(tc attnRowsCase, hs int, q, k, v, do []float32, scale float32) attnRowsReference {
	T := tc.T
	ref := attnRowsReference{
		P:   make([][]float64, T),
		out: make([]float64, T*hs), dq: make([]float64, T*hs),
		dk: make([]float64, T*hs), dv: make([]float64, T*hs),
	}
	for r := 0; r < T; r++ {
		s := make([]float64, r+1)
		mx := math.Inf(-1)
		for j := range s {
			s[j] = math.Inf(-1)
			if !tc.masked(r, j) {
				s[j] = 0
				for d := 0; d < hs; d++ {
					s[j] += float64(q[r*hs+d]) * float64(k[j*hs+d])
				}
				s[j] *= float64(scale)
			}
			mx = math.Max(mx, s[j])
		}
		var sum float64
		for j := range s {
			s[j] = math.Exp(s[j] - mx)
			sum += s[j]
		}
		dp := make([]float64, r+1)
		var dot float64
		for j := range s {
			s[j] /= sum
			for d := 0; d < hs; d++ {
				ref.out[r*hs+d] += s[j] * float64(v[j*hs+d])
				dp[j] += float64(do[r*hs+d]) * float64(v[j*hs+d])
				ref.dv[j*hs+d] += s[j] * float64(do[r*hs+d])
			}
			dot += s[j] * dp[j]
		}
		for j := range s {
			ds := float64(scale) * s[j] * (dp[j] - dot)
			for d := 0; d < hs; d++ {
				ref.dq[r*hs+d] += ds * float64(k[j*hs+d])
				ref.dk[j*hs+d] += ds * float64(q[r*hs+d])
			}
		}
		ref.P[r] = s
	}
	return ref
}

// checkAttnRows compares the kernels' output, gradients and attention
// weights (zero past the diagonal, up to the row's scratch width) with the
// reference.
func checkAttnRows(t *testing.T, T, hs int, got attnRowsResult, want attnRowsReference) {
	t.Helper()
	ld := got.ld
	for _, c := range []struct {
		name string
		got  func(j, d int) float32
		want []float64
	}{
		{"out", func(j, d int) float32 { return got.out[j*hs+d] }, want.out},
		{"dq", func(j, d int) float32 { return got.dq[j*hs+d] }, want.dq},
		{"dk", func(j, d int) float32 { return got.dkT[d*ld+j] }, want.dk},
		{"dv", func(j, d int) float32 { return got.dvT[d*ld+j] }, want.dv},
	} {
		for j := 0; j < T; j++ {
			for d := 0; d < hs; d++ {
				got, want := float64(c.got(j, d)), c.want[j*hs+d]
				if math.Abs(got-want) > 2e-5*(1+math.Abs(want)) {
					t.Fatalf("%s[%d][%d] = %v, want %v", c.name, j, d, got, want)
				}
			}
		}
	}
	for r := 0; r < T; r++ {
		for j := 0; j < AttendScratch(r+1); j++ {
			w := 0.0
			if j <= r {
				w = want.P[r][j]
			}
			if g := float64(got.P[r*ld+j]); math.Abs(g-w) > 1e-6 {
				t.Fatalf("P[%d][%d] = %v, want %v", r, j, g, w)
			}
		}
	}
}
