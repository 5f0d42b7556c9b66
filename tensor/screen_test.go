package tensor

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// screenCase is a random (rows, cols) matrix in dt whose rows are close
// rivals: each group of four rows is one random row and three copies of it
// nudged by less than Q8_0's resolution, so the copy cannot order a group
// and the exact products must.
func screenCase(t *testing.T, r *rand.Rand, dt DType, rows, cols int) *QMatrix {
	t.Helper()
	w := make([]float32, rows*cols)
	for i := 0; i < rows; i += 4 {
		base := w[i*cols:][:cols]
		for k := range base {
			base[k] = float32(r.NormFloat64() * 0.05)
		}
		for j := 1; j < 4 && i+j < rows; j++ {
			row := w[(i+j)*cols:][:cols]
			copy(row, base)
			for k := range row {
				row[k] += float32(r.NormFloat64() * 1e-4)
			}
		}
	}
	return mustQuantize(t, dt, w, rows, cols)
}

// TestScreenArgmaxIsExact: for F32, F16 and BF16 matrices with rows of one
// piece and of several, the screen's choice is Argmax of MulT's products
// of each activation row alone, for 1 to 9 activation rows (split in
// MulT's few-row batches), while it multiplies few of the rows exactly;
// its exact products are MulT's to the bit. (The rivals make four rows
// of the best group rescored at least.)
func TestScreenArgmaxIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, cols := range []int{576, 2*pieceCols + 96} {
		for _, dt := range []DType{F32, F16, BF16} {
			rows := 3001
			if cols > 1000 {
				rows = 401
			}
			w := screenCase(t, r, dt, rows, cols)
			s, err := NewScreen(w)
			if err != nil {
				t.Fatal(err)
			}
			for _, M := range []int{1, 2, 9} {
				x := make([]float32, M*cols)
				for i := range x {
					x[i] = float32(r.NormFloat64())
				}
				best := make([]int, M)
				exact := make([]float32, rows)
				var st ScreenStats
				s.Argmax(nil, best, x, M, &ScreenScratch{}, &st)
				full := make([]float32, rows)
				for k := range M {
					w.MulT(full, x[k*cols:][:cols], 1, 0)
					if want := Argmax(full); best[k] != want {
						t.Fatalf("%s %d×%d, row %d of %d: screen chose %d (%g), MulT's argmax %d (%g)", dt, rows, cols, k, M, best[k], full[best[k]], want, full[want])
					}
					for o := 0; o < rows; o += 97 {
						if y := w.rowProduct(x[k*cols:][:cols], o, exact); math.Float32bits(y) != math.Float32bits(full[o]) {
							t.Fatalf("%s row %d: rowProduct %g, MulT %g", dt, o, y, full[o])
						}
					}
				}
				if st.Rows != M || st.Whole != 0 || st.Exact < M || st.Exact > M*rows/3 {
					t.Fatalf("%s %d×%d, %d rows: stats %+v (want every row screened, at most a third of the matrix rescored; TestScreenReadsLittle checks a realistic case)", dt, rows, cols, M, st)
				}
			}
		}
	}
}

// TestScreenTiesAndNaN: equal best rows go to the lowest, as Argmax; an
// activation row with a NaN falls back to the whole matrix; a matrix
// holding an infinity has no screen.
func TestScreenTiesAndNaN(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	const rows, cols = 512, 64
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	for _, o := range []int{300, 41, 450} {
		copy(w[o*cols:][:cols], w[200*cols:][:cols])
	}
	m, s := f16Screen(t, w, rows, cols)
	x := make([]float32, 2*cols)
	for i := range cols {
		x[i] = 10 * w[200*cols+i]
		x[cols+i] = x[i]
	}
	x[cols+5] = float32(math.NaN())
	best := make([]int, 2)
	var st ScreenStats
	s.Argmax(nil, best, x, 2, &ScreenScratch{}, &st)
	if best[0] != 41 {
		t.Fatalf("tie of rows 41, 200, 300, 450: chose %d", best[0])
	}
	full := make([]float32, rows)
	m.MulT(full, x[cols:], 1, 0)
	if want := Argmax(full); best[1] != want || st.Whole != 1 {
		t.Fatalf("NaN activation: chose %d, Argmax %d, stats %+v", best[1], want, st)
	}
	if _, err := NewScreen(mustQuantize(t, Q8_0, w, rows, cols)); err == nil {
		t.Fatal("NewScreen of a Q8_0 matrix: no error")
	}
	w[77*cols+3] = float32(math.Inf(1))
	if _, err := NewScreen(F32Matrix(w, rows, cols)); err == nil || !strings.Contains(err.Error(), "row 77") {
		t.Fatalf("NewScreen of a matrix with an infinity in row 77: %v", err)
	}
}

func mustQuantize(tb testing.TB, dt DType, w []float32, rows, cols int) *QMatrix {
	tb.Helper()
	m, err := Quantize(dt, w, rows, cols)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// f16Screen is w as an F16 matrix and its screen.
func f16Screen(tb testing.TB, w []float32, rows, cols int) (*QMatrix, *Screen) {
	tb.Helper()
	m := mustQuantize(tb, F16, w, rows, cols)
	s, err := NewScreen(m)
	if err != nil {
		tb.Fatal(err)
	}
	return m, s
}

// randomClassifier is a random model's classifier as the benchmarks build
// it ((rows, cols) F16, weights N(0, 0.02)), its screen, and M activation
// rows of RMS 1, as after the final norm.
func randomClassifier(tb testing.TB, seed uint64, rows, cols, M int) (*QMatrix, *Screen, []float32) {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, seed+1))
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(r.NormFloat64() * 0.02)
	}
	m, s := f16Screen(tb, w, rows, cols)
	x := make([]float32, M*cols)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return m, s, x
}

// TestScreenReadsLittle: over a classifier of a random model's size class
// (32,768 × 576), a decoded row rescores a few rows in ten thousand.
func TestScreenReadsLittle(t *testing.T) {
	const rows, M = 32768, 4
	_, s, x := randomClassifier(t, 25, rows, 576, M)
	best := make([]int, M)
	var st ScreenStats
	s.Argmax(nil, best, x, M, &ScreenScratch{}, &st)
	t.Logf("%+v", st)
	if st.Exact > M*rows/1000 {
		t.Fatalf("%d rows: %d rescored (want at most one in a thousand)", M, st.Exact)
	}
}

// BenchmarkScreenArgmax: greedy decoding's classifier, a random 128,256 ×
// 576 F16 matrix (the 180M benchmark model's), one activation row: the
// whole product and Argmax against the screen's choice.
func BenchmarkScreenArgmax(b *testing.B) {
	const rows = 128256
	m, s, x := randomClassifier(b, 27, rows, 576, 1)
	y, best := make([]float32, rows), make([]int, 1)
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			m.MulT(y, x, 1, 0)
			best[0] = Argmax(y)
		}
	})
	b.Run("screen", func(b *testing.B) {
		var sc ScreenScratch
		var st ScreenStats
		for b.Loop() {
			s.Argmax(nil, best, x, 1, &sc, &st)
		}
		b.ReportMetric(float64(st.Exact)/float64(st.Rows), "rescored/op")
	})
}
