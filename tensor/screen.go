package tensor

import (
	"fmt"
	"math"
	"slices"
)

// Screen finds, for activation rows x, the row of a large matrix W with
// the largest product x·w — greedy decoding's next token over a
// vocabulary's classifier — without reading W whole. It keeps a Q8_0 copy
// Ŵ of W (34 bytes per 32 weights, against 64 for F16 and 128 for F32)
// and, per row, how far the copy can be from W. One pass over the copy
// gives each row's approximate product and an interval that holds its
// exact one; only the rows whose interval reaches the best lower bound
// are multiplied exactly, with the kernel MulT uses for a few rows, so the
// answer is the argmax of those exact products (ties to the lowest row),
// bit for bit what Argmax of MulT's output gives for up to qDirectRows
// activation rows.
//
// The interval: |x·w − x̃·ŵ| ≤ ‖x‖·‖w−ŵ‖ + ‖x−x̃‖·‖ŵ‖, where x̃ is x as the
// Q8_0 kernel quantizes it, plus the float32 rounding of both sums, taken
// as 2⁻¹² of ‖x‖·‖w‖ and of ‖x̃‖·‖ŵ‖ (dozens of times the rounding of a
// sum of a few thousand products) and 2⁻¹⁶ absolute (F16's products
// scaled below float32's normal range). For a random 128,256 × 576
// classifier a handful of rows are rescored.
type Screen struct {
	w, q *QMatrix
	e    []float32 // per row: ‖w−ŵ‖ + 2⁻¹²·‖w‖, rounded up
	g    []float32 // per row: ‖ŵ‖, rounded up

	emax, gmax float32 // the largest of e and of g
}

// ScreenScratch is the working memory of Screen.Argmax, one per caller at a
// time; its zero value is ready, and it grows as needed.
type ScreenScratch struct {
	approx, exact []float32
	cand          []int32
}

const (
	screenRel = 1.0 / 4096
	screenAbs = 1.0 / 65536
)

// ScreenRows is the most activation rows whose products with the copy one
// pass computes (MulT's few-row kernels, which quantize the activations as
// the bounds assume). Argmax takes more rows in passes of this many, each
// reading the copy again: for a larger batch the whole matrix's product,
// read once, costs less.
const ScreenRows = qDirectRows

// NewScreen builds w's screen, its Q8_0 copy and the rows' bounds, on the
// calling goroutine alone (about a second a 100M weights; greedy decoding
// builds it in the background). w's columns must be a multiple of 32; a
// Q8_0 matrix has nothing to gain; a row with a value that is not finite
// fails.
func NewScreen(w *QMatrix) (*Screen, error) {
	if w.DType == Q8_0 {
		return nil, fmt.Errorf("tensor.NewScreen: the matrix is Q8_0 already")
	}
	q, err := NewQMatrix(Q8_0, w.Rows, w.Cols)
	if err != nil {
		return nil, fmt.Errorf("tensor.NewScreen: %w", err)
	}
	s := &Screen{w: w, q: q, e: make([]float32, w.Rows), g: make([]float32, w.Rows)}
	row, qs, ds := make([]float32, w.Cols), make([]int8, w.Cols), make([]float32, w.Cols/Q8Block)
	for r := range w.Rows {
		w.Row(r, row)
		q.setQ8Row(r, row, qs, ds)
		var d2, w2, h2 float64
		for i, v := range row {
			h := float64(qs[i]) * float64(ds[i/Q8Block])
			d2 += (float64(v) - h) * (float64(v) - h)
			w2 += float64(v) * float64(v)
			h2 += h * h
		}
		if math.IsNaN(w2) || math.IsInf(w2, 0) {
			return nil, fmt.Errorf("tensor.NewScreen: row %d holds a value that is not finite", r)
		}
		s.e[r] = up(math.Sqrt(d2) + screenRel*math.Sqrt(w2))
		s.g[r] = up(math.Sqrt(h2))
	}
	s.emax, s.gmax = slices.Max(s.e), slices.Max(s.g)
	return s, nil
}

// up rounds v to a float32 no smaller than it.
func up(v float64) float32 {
	f := float32(v)
	if float64(f) < v {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}

// Bytes is the memory the screen holds besides the matrix.
func (s *Screen) Bytes() int64 { return s.q.Bytes() + int64(8*len(s.e)) }

// ScreenStats counts what Argmax read: its calls' activation rows, the
// matrix rows they multiplied exactly, and the calls that fell back to the
// whole matrix (activations with a NaN or an infinity).
type ScreenStats struct{ Rows, Exact, Whole int }

// Argmax sets best[r] to the row of W with the largest product with
// activation row r of x (M rows of W's width). The copy's product is split
// over team t as MulTOn splits it.
func (s *Screen) Argmax(t *Team, best []int, x []float32, M int, sc *ScreenScratch, st *ScreenStats) {
	n, R := s.w.Cols, s.w.Rows
	if len(best) < M || len(x) < M*n {
		panic(fmt.Sprintf("tensor.Screen.Argmax: %d rows of %d, len(best)=%d len(x)=%d", M, n, len(best), len(x)))
	}
	if cap(sc.approx) < M*R {
		sc.approx = make([]float32, M*R)
	}
	if cap(sc.exact) < R {
		sc.exact = make([]float32, R)
	}
	approx, exact := sc.approx[:M*R], sc.exact[:R]
	for r0 := 0; r0 < M; r0 += ScreenRows {
		s.q.MulTOn(t, approx[r0*R:], x[r0*n:], min(ScreenRows, M-r0), 0)
	}
	for r := range M {
		xr := x[r*n:][:n]
		ex, dx, ok := s.actBounds(xr)
		st.Rows++
		if !ok {
			s.w.MulT(exact, xr, 1, 0)
			best[r] = Argmax(exact[:R])
			st.Whole++
			continue
		}
		best[r] = s.pick(xr, approx[r*R:][:R], sc, ex, dx, st)
	}
}

// actBounds gives ‖x‖ and ‖x−x̃‖ + 2⁻¹²·‖x̃‖ (x̃: x as the Q8_0 kernels
// quantize it), rounded up; ok is false when x is not finite.
func (s *Screen) actBounds(x []float32) (ex, dx float32, ok bool) {
	a := quantizeActs(x, 1, len(x))
	defer q8ActPool.Put(a)
	var x2, d2, h2 float64
	for i, v := range x {
		h := float64(a.s[i]) * float64(a.d[i/Q8Block])
		x2 += float64(v) * float64(v)
		d2 += (float64(v) - h) * (float64(v) - h)
		h2 += h * h
	}
	if math.IsNaN(x2) || math.IsInf(x2, 0) || math.IsNaN(d2) || math.IsInf(d2, 0) {
		return 0, 0, false
	}
	return up(math.Sqrt(x2)), up(math.Sqrt(d2) + screenRel*math.Sqrt(h2)), true
}

// pick is Argmax's choice for one activation row x, its approximate
// products a. Rows below max(a) − 2·(the largest bound) cannot be the best
// (a vector scan finds the others); among the others, the best lower bound,
// then the exact products of the rows whose upper bound reaches it.
func (s *Screen) pick(x, a []float32, sc *ScreenScratch, ex, dx float32, st *ScreenStats) int {
	top, exact := Max(a), sc.exact
	wide := ex*s.emax + dx*s.gmax + screenAbs
	sc.cand = atLeast(a, top-2*wide, sc.cand[:0])
	bound := func(i int32) float32 { return ex*s.e[i] + dx*s.g[i] + screenAbs }
	lower := float32(math.Inf(-1))
	for _, i := range sc.cand {
		lower = max(lower, a[i]-bound(i))
	}
	best, bestV := -1, float32(0)
	for _, i := range sc.cand {
		if a[i]+bound(i) < lower {
			continue
		}
		y := s.w.rowProduct(x, int(i), exact)
		st.Exact++
		if best < 0 || y > bestV {
			best, bestV = int(i), y
		}
	}
	if best < 0 { // only when the approximate products overflowed
		s.w.MulT(exact, x, 1, 0)
		st.Whole++
		return Argmax(exact)
	}
	return best
}

// atLeast appends to dst the indices of x's values ≥ t, in order.
func atLeast(x []float32, t float32, dst []int32) []int32 {
	if level > levelGo {
		return atLeastSIMD(x, t, dst)
	}
	for i, v := range x {
		if v >= t {
			dst = append(dst, int32(i))
		}
	}
	return dst
}
