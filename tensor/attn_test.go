package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// attendRef is AttendT in float64 straight from the formula.
func attendRef(q []float32, nq, hs int, k, v []float32, ld, n int, scale float32) []float64 {
	out := make([]float64, nq*hs)
	for h := 0; h < nq; h++ {
		s := make([]float64, n)
		mx := math.Inf(-1)
		for p := 0; p < n; p++ {
			for d := 0; d < hs; d++ {
				s[p] += float64(scale) * float64(q[h*hs+d]) * float64(k[d*ld+p])
			}
			mx = math.Max(mx, s[p])
		}
		var sum float64
		for p := range s {
			s[p] = math.Exp(s[p] - mx)
			sum += s[p]
		}
		for d := 0; d < hs; d++ {
			for p := 0; p < n; p++ {
				out[h*hs+d] += s[p] / sum * float64(v[d*ld+p])
			}
		}
	}
	return out
}

func TestAttendT(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		for _, tc := range []struct{ nq, hs, ld, n int }{
			{1, 8, 16, 1}, {2, 8, 512, 1}, {2, 8, 512, 15}, {2, 8, 512, 16}, {2, 8, 512, 17},
			{2, 8, 512, 300}, {2, 8, 512, 512}, {1, 16, 40, 33}, {3, 48, 64, 64}, {2, 6, 32, 20},
			{3, 64, 447, 400}, {4, 64, 48, 37}, {7, 16, 40, 33}, {3, 32, 16, 5},
		} {
			t.Run(fmt.Sprintf("nq%d_hs%d_ld%d_n%d", tc.nq, tc.hs, tc.ld, tc.n), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.hs)))
				rnd := func(n int, s float32) []float32 {
					x := make([]float32, n)
					for i := range x {
						x[i] = s * float32(rng.NormFloat64())
					}
					return x
				}
				q, k, v := rnd(tc.nq*tc.hs, 2), rnd(tc.hs*tc.ld, 2), rnd(tc.hs*tc.ld, 1)
				// positions past n hold values that must not count
				for d := 0; d < tc.hs; d++ {
					for p := tc.n; p < tc.ld; p++ {
						k[d*tc.ld+p], v[d*tc.ld+p] = 1e30, float32(math.NaN())
					}
				}
				scale := float32(1 / math.Sqrt(float64(tc.hs)))
				out := make([]float32, tc.nq*tc.hs)
				AttendT(out, q, tc.nq, tc.hs, k, v, tc.ld, tc.n, scale, make([]float32, AttendTScratch(tc.nq, tc.n)))
				want := attendRef(q, tc.nq, tc.hs, k, v, tc.ld, tc.n, scale)
				for i := range out {
					if got := float64(out[i]); math.Abs(got-want[i]) > 1e-5*(1+math.Abs(want[i])) {
						t.Fatalf("out[%d] = %v, want %v", i, got, want[i])
					}
				}
			})
		}
	})
}

// TestAttendTGroupsBits: heads attending three at a time (one pass over the
// keys and values for the three) give the bits of each head attending alone,
// at every level, for full blocks of 16 positions, tails and both.
func TestAttendTGroupsBits(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		for _, tc := range []struct{ nq, hs, ld, n int }{
			{3, 64, 447, 400}, {3, 64, 447, 7}, {3, 64, 447, 16}, {4, 64, 64, 45}, {7, 16, 40, 33}, {6, 24, 48, 48},
		} {
			rng := rand.New(rand.NewPCG(uint64(tc.n), 3))
			rnd := func(n int) []float32 {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				return x
			}
			q, k, v := rnd(tc.nq*tc.hs), rnd(tc.hs*tc.ld), rnd(tc.hs*tc.ld)
			got := make([]float32, tc.nq*tc.hs)
			AttendT(got, q, tc.nq, tc.hs, k, v, tc.ld, tc.n, 0.125, make([]float32, AttendTScratch(tc.nq, tc.n)))
			att := make([]float32, AttendTScratch(1, tc.n))
			for h := range tc.nq {
				want := make([]float32, tc.hs)
				AttendT(want, q[h*tc.hs:(h+1)*tc.hs], 1, tc.hs, k, v, tc.ld, tc.n, 0.125, att)
				for d := range want {
					if g := got[h*tc.hs+d]; math.Float32bits(g) != math.Float32bits(want[d]) {
						t.Fatalf("%+v: head %d channel %d: %v together, %v alone", tc, h, d, g, want[d])
					}
				}
			}
		}
	})
}

func TestAttendTBadShapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		att  int
	}{{"no positions", 0, 16}, {"short scratch", 17, 17}} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			AttendT(make([]float32, 8), make([]float32, 8), 1, 8, make([]float32, 8*32), make([]float32, 8*32), 32, tc.n, 1, make([]float32, tc.att))
		})
	}
}

// BenchmarkAttendT180M times the attention of one decoding step of 16
// sequences on the serving benchmark's model (30 layers, 9 query heads over
// 3 key/value heads of 64, 400 cached positions each): 16 × 30 × 3 AttendT
// calls, each sequence's cache its own memory (330 MB in all, so the keys
// and values come from memory as they do when serving), on one thread.
func BenchmarkAttendT180M(b *testing.B) {
	const rows, layers, kvHeads, group, hs, n, ld = 16, 30, 3, 3, 64, 400, 447
	r := rand.New(rand.NewPCG(2, 7))
	k, v := make([][]float32, rows*layers*kvHeads), make([][]float32, rows*layers*kvHeads)
	for i := range k {
		k[i], v[i] = randSlice(r, hs*ld), randSlice(r, hs*ld)
	}
	q, out := randSlice(r, group*hs), make([]float32, group*hs)
	att := make([]float32, AttendTScratch(group, n))
	for b.Loop() {
		for i := range k {
			AttendT(out, q, group, hs, k[i], v[i], ld, n, 0.125, att)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1e3, "ms/step")
}
