package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestAttnRows runs a causal attention of T rows through the row kernels
// and checks the output and every gradient against float64 loops over the
// untransposed operands, with an optional masked key range.
func TestAttnRows(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		for _, tc := range []struct{ T, ma, mb int }{{1, 0, 0}, {17, 0, 0}, {40, 3, 9}, {64, 0, 0}, {70, 5, 30}} {
			t.Run(fmt.Sprintf("T%d_mask%d-%d", tc.T, tc.ma, tc.mb), func(t *testing.T) {
				T, hs := tc.T, 8
				rng := rand.New(rand.NewPCG(uint64(T), 7))
				q, k, v, do := randSlice(rng, T*hs), randSlice(rng, T*hs), randSlice(rng, T*hs), randSlice(rng, T*hs)
				ld := AttendScratch(T)
				kT, vT := make([]float32, hs*ld), make([]float32, hs*ld)
				for j := 0; j < T; j++ {
					for d := 0; d < hs; d++ {
						kT[d*ld+j], vT[d*ld+j] = k[j*hs+d], v[j*hs+d]
					}
				}
				scale := float32(0.35)
				// masked keys apply to the rows past the range, as in packed rows
				mask := func(t, j int) bool { return t >= tc.mb && j >= tc.ma && j < tc.mb }
				P, dS := make([]float32, T*ld), make([]float32, T*ld)
				out, dq := make([]float32, T*hs), make([]float32, T*hs)
				for r := 0; r < T; r++ {
					ma, mb := 0, 0
					if r >= tc.mb {
						ma, mb = tc.ma, tc.mb
					}
					AttnRowForward(P[r*ld:], make([]float32, ld), out[r*hs:], q[r*hs:], kT, vT, ld, r+1, ma, mb, scale)
					AttnRowBackward(dS[r*ld:], dq[r*hs:], P[r*ld:], do[r*hs:], kT, vT, ld, r+1, scale)
				}
				dkT, dvT := make([]float32, hs*ld), make([]float32, hs*ld)
				AttnColsAccum(dvT, ld, P, ld, do, hs, T)
				AttnColsAccum(dkT, ld, dS, ld, q, hs, T)
				// reference
				Pr := make([][]float64, T)
				wantOut, wantDq := make([]float64, T*hs), make([]float64, T*hs)
				wantDk, wantDv := make([]float64, T*hs), make([]float64, T*hs)
				for r := 0; r < T; r++ {
					s := make([]float64, r+1)
					mx := math.Inf(-1)
					for j := range s {
						s[j] = math.Inf(-1)
						if !mask(r, j) {
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
							wantOut[r*hs+d] += s[j] * float64(v[j*hs+d])
							dp[j] += float64(do[r*hs+d]) * float64(v[j*hs+d])
							wantDv[j*hs+d] += s[j] * float64(do[r*hs+d])
						}
						dot += s[j] * dp[j]
					}
					for j := range s {
						ds := float64(scale) * s[j] * (dp[j] - dot)
						for d := 0; d < hs; d++ {
							wantDq[r*hs+d] += ds * float64(k[j*hs+d])
							wantDk[j*hs+d] += ds * float64(q[r*hs+d])
						}
					}
					Pr[r] = s
				}
				for _, c := range []struct {
					name string
					got  func(j, d int) float32
					want []float64
				}{
					{"out", func(j, d int) float32 { return out[j*hs+d] }, wantOut},
					{"dq", func(j, d int) float32 { return dq[j*hs+d] }, wantDq},
					{"dk", func(j, d int) float32 { return dkT[d*ld+j] }, wantDk},
					{"dv", func(j, d int) float32 { return dvT[d*ld+j] }, wantDv},
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
						want := 0.0
						if j <= r {
							want = Pr[r][j]
						}
						if got := float64(P[r*ld+j]); math.Abs(got-want) > 1e-6 {
							t.Fatalf("P[%d][%d] = %v, want %v", r, j, got, want)
						}
					}
				}
			})
		}
	})
}
