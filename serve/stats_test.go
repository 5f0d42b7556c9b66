package serve_test

import (
	"math"
	"testing"

	"fspo/serve"
)

func TestWilson(t *testing.T) {
	// Reference values computed independently (Python, the closed form of
	// Wilson 1927 as written in Agresti & Coull 1998, eq. 2).
	for _, tc := range []struct {
		k, n           int
		wantLo, wantHi float64
	}{
		{8, 10, 0.4902, 0.9433},
		{0, 10, 0, 0.2775},
		{10, 10, 0.7225, 1},
		{0, 0, 0, 1},
		{50, 100, 0.4038, 0.5962},
	} {
		lo, hi := serve.Wilson(tc.k, tc.n, 1.959963984540054)
		if math.Abs(lo-tc.wantLo) > 5e-4 || math.Abs(hi-tc.wantHi) > 5e-4 {
			t.Errorf("Wilson(%d, %d) = [%.4f, %.4f], want [%.4f, %.4f]", tc.k, tc.n, lo, hi, tc.wantLo, tc.wantHi)
		}
	}
}

func TestBinomialUpperP(t *testing.T) {
	// Exact values: sums of C(n,i)/2^n (computed with integer arithmetic).
	for _, tc := range []struct {
		k, n int
		want float64
	}{
		{8, 10, 56.0 / 1024},
		{10, 10, 1.0 / 1024},
		{5, 10, 638.0 / 1024},
		{0, 10, 1},
		{11, 10, 0},
		{60, 100, 0.028443966820490395},
		{530, 1000, 0.03101159754918159},
	} {
		if got := serve.BinomialUpperP(tc.k, tc.n); math.Abs(got-tc.want) > 1e-9*math.Max(1, tc.want) {
			t.Errorf("BinomialUpperP(%d, %d) = %.12g, want %.12g", tc.k, tc.n, got, tc.want)
		}
	}
}
