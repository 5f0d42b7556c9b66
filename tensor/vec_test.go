package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// vecLens covers empty, sub-vector, exact multiples of the 8- and 32-wide
// steps and every kind of tail.
var vecLens = []int{0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 100, 172, 512, 1001}

// sumBound is the float32 summation error bound (n+1) u sum|terms|
// (Higham, "Accuracy and Stability of Numerical Algorithms", eq. 3.5).
func sumBound(n int, absSum float64) float64 { return float64(n+1)*0x1p-24*absSum + 1e-30 }

func TestReductions(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, n := range vecLens {
			a, b := randSlice(r, n), randSlice(r, n)
			var dot, dotAbs, sum, sumAbs, sq float64
			for i := range a {
				dot += float64(a[i]) * float64(b[i])
				dotAbs += math.Abs(float64(a[i]) * float64(b[i]))
				sum += float64(a[i])
				sumAbs += math.Abs(float64(a[i]))
				sq += float64(a[i]) * float64(a[i])
			}
			checks := []struct {
				name      string
				got, want float64
				tol       float64
			}{
				{"Dot", float64(Dot(a, b)), dot, sumBound(n, dotAbs)},
				{"Sum", float64(Sum(a)), sum, sumBound(n, sumAbs)},
				{"SumSquares", float64(SumSquares(a)), sq, sumBound(n, sq)},
			}
			for _, c := range checks {
				if math.Abs(c.got-c.want) > c.tol {
					t.Errorf("%s n=%d: got %g, want %g", c.name, n, c.got, c.want)
				}
			}
			wantMax, wantArg := math.Inf(-1), -1
			for i, v := range a {
				if float64(v) > wantMax {
					wantMax, wantArg = float64(v), i
				}
			}
			if got := Max(a); float64(got) != wantMax {
				t.Errorf("Max n=%d: got %g, want %g", n, got, wantMax)
			}
			if got := Argmax(a); got != wantArg {
				t.Errorf("Argmax n=%d: got %d, want %d", n, got, wantArg)
			}
		}
	})
}

func TestArgmaxFirstOfTies(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		cases := []struct {
			x    []float32
			want int
		}{
			{[]float32{1, 3, 3, 2}, 1},
			{[]float32{0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 5, 5}, 9},
			{[]float32{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}, 0},
			{[]float32{float32(math.Inf(-1)), float32(math.Inf(-1))}, 0},
			{nil, -1},
		}
		for _, c := range cases {
			if got := Argmax(c.x); got != c.want {
				t.Errorf("Argmax(%v) = %d, want %d", c.x, got, c.want)
			}
		}
	})
}

func TestElementwise(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, n := range vecLens {
			a, b := randSlice(r, n), randSlice(r, n)
			alpha := float32(r.NormFloat64())
			// Each op with a guard element past the end that must stay untouched.
			dst := append(make([]float32, n), 42)
			Add(dst[:n], a, b)
			for i := range n {
				if dst[i] != a[i]+b[i] {
					t.Fatalf("Add n=%d: dst[%d] = %g, want %g", n, i, dst[i], a[i]+b[i])
				}
			}
			Mul(dst[:n], a, b)
			for i := range n {
				if dst[i] != a[i]*b[i] {
					t.Fatalf("Mul n=%d: dst[%d] = %g, want %g", n, i, dst[i], a[i]*b[i])
				}
			}
			copy(dst, a)
			Scale(alpha, dst[:n])
			for i := range n {
				if dst[i] != alpha*a[i] {
					t.Fatalf("Scale n=%d: dst[%d] = %g, want %g", n, i, dst[i], alpha*a[i])
				}
			}
			copy(dst, b)
			Axpy(alpha, a, dst[:n])
			for i := range n {
				// SIMD fuses the multiply-add: one rounding instead of two.
				want := float64(b[i]) + float64(alpha)*float64(a[i])
				if d := math.Abs(float64(dst[i]) - want); d > 0x1p-23*(math.Abs(float64(b[i]))+math.Abs(float64(alpha*a[i]))) {
					t.Fatalf("Axpy n=%d: dst[%d] = %g, want %g", n, i, dst[i], want)
				}
			}
			if dst[n] != 42 {
				t.Fatalf("n=%d: element past the end overwritten: %g", n, dst[n])
			}
		}
	})
}

// ulps is the distance between got and want in units of float32 spacing
// at want (the spacing of the smallest normal below it).
func ulps(got float32, want float64) float64 {
	w := float32(want)
	spacing := math.Max(float64(math.Nextafter32(w, float32(math.Inf(1)))-w), 0x1p-149)
	if w >= math.MaxFloat32 {
		spacing = float64(w - math.Nextafter32(w, 0))
	}
	return math.Abs(float64(got)-want) / spacing
}

func TestExpAccuracy(t *testing.T) {
	// Dense sweep of the softmax range [-88, 0] plus the positive side.
	var xs []float32
	for x := -88.0; x <= 1; x += 1.0 / 1024 {
		xs = append(xs, float32(x))
	}
	for x := 1.0; x < 88.3; x += 1.0 / 16 {
		xs = append(xs, float32(x))
	}
	forLevels(t, func(t *testing.T) {
		got := make([]float32, len(xs))
		ExpSub(got, xs, 0)
		worst, worstX := 0.0, float32(0)
		for i, x := range xs {
			want := math.Exp(float64(x))
			if want < 0x1p-126 {
				// Subnormal results are flushed to zero.
				if got[i] != 0 && math.Abs(float64(got[i])-want) > 0x1p-126 {
					t.Fatalf("exp(%g) = %g, want 0 or %g", x, got[i], want)
				}
				continue
			}
			if u := ulps(got[i], want); u > worst {
				worst, worstX = u, x
			}
		}
		t.Logf("worst error %.2f ulp at x=%g", worst, worstX)
		if worst > 2 {
			t.Errorf("exp worst error %.2f ulp at x=%g, want <= 2", worst, worstX)
		}
	})
}

func TestExpSpecialValues(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	cases := []struct {
		x, want float32
	}{
		{0, 1},
		{float32(math.Inf(-1)), 0},
		{-100, 0},
		{-87.4, 0},
		{89, inf},
		{inf, inf},
		{nan, nan},
	}
	forLevels(t, func(t *testing.T) {
		for _, c := range cases {
			// In a 9-long slice so the value goes through both the vector body and the tail.
			x := []float32{c.x, c.x, c.x, c.x, c.x, c.x, c.x, c.x, c.x}
			dst := make([]float32, len(x))
			ExpSub(dst, x, 0)
			for i, got := range dst {
				if math.Float32bits(got) != math.Float32bits(c.want) && !(got != got && c.want != c.want) {
					t.Errorf("exp(%g) [%d] = %g, want %g", c.x, i, got, c.want)
				}
			}
		}
	})
}

func TestExpSub(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for _, n := range vecLens[1:] {
			x := randSlice(r, n)
			for i := range x {
				x[i] *= 10
			}
			x[n/2] = float32(math.Inf(-1)) // a masked position
			m := math.Inf(-1)
			for _, v := range x {
				m = math.Max(m, float64(v))
			}
			want := make([]float64, n)
			var s float64
			for i, v := range x {
				want[i] = math.Exp(float64(v) - m)
				s += want[i]
			}
			e := make([]float32, n)
			gotSum := ExpSub(e, x, float32(m))
			if math.Abs(float64(gotSum)-s) > 1e-5*s {
				t.Errorf("ExpSub n=%d: sum %g, want %g", n, gotSum, s)
			}
			for i := range e {
				if d := math.Abs(float64(e[i]) - want[i]); d > 1e-6+1e-5*want[i] {
					t.Fatalf("ExpSub n=%d: [%d] = %g, want %g", n, i, e[i], want[i])
				}
			}
		}
	})
}

func TestVecLengthMismatchPanics(t *testing.T) {
	defer func() {
		if got, want := recover(), "tensor.Dot: lengths differ (3 and 2)"; got != want {
			t.Errorf("panic %v, want %q", got, want)
		}
	}()
	Dot(make([]float32, 3), make([]float32, 2))
}
