package tensor

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestExpScaledBits: ExpScaled and DivideBy give, bit for bit, what the
// plain loops over math.Exp and a float64 division give — on logits of a
// sampler's range at several temperatures, on arguments beyond ±700 (which
// the blocks leave to math.Exp), on -Inf and NaN, and on lengths that are
// not multiples of 8 — at every instruction-set level.
func TestExpScaledBits(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(8, 8))
		for _, c := range []struct {
			n      int
			spread float64
			s      float32
		}{{128256, 8, 1}, {1001, 8, 1.0 / 0.7}, {77, 30, 25}, {4099, 400, 2}, {5, 3, 1}, {300, 1, 1e6}} {
			x := make([]float32, c.n)
			for i := range x {
				x[i] = float32(r.NormFloat64() * c.spread)
			}
			if c.n > 100 {
				x[17] = float32(math.Inf(-1))
			}
			if c.n == 1001 { // a NaN makes the sum NaN: only its elements are compared
				x[40] = float32(math.NaN())
			}
			m := slices.Max(x)
			want, got := make([]float32, c.n), make([]float32, c.n)
			wantSum := 0.0
			for i, v := range x {
				e := math.Exp(float64((v - m) * c.s))
				want[i] = float32(e)
				wantSum += e
			}
			gotSum := ExpScaled(got, x, m, c.s)
			if math.Float64bits(gotSum) != math.Float64bits(wantSum) && !(math.IsNaN(gotSum) && math.IsNaN(wantSum)) {
				t.Fatalf("n=%d spread=%v s=%v: sum %v, want %v", c.n, c.spread, c.s, gotSum, wantSum)
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n=%d spread=%v s=%v: [%d] (x %v) = %v, want %v", c.n, c.spread, c.s, i, x[i], got[i], want[i])
				}
			}
			d := 1 + r.Float64()*1000
			for i := range want {
				want[i] = float32(float64(want[i]) / d)
			}
			DivideBy(got, d)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n=%d: divided [%d] = %v, want %v", c.n, i, got[i], want[i])
				}
			}
		}
	})
}
