package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The reference for every product below is a float64 sum over the weights
// as the matrix stores them (widened exactly with Row, or, for Q8_0 on few
// rows, the exact integer block sums of the quantized weights and
// activations); the kernels must agree to float32 rounding.

func TestQuantizeStoresExactValues(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	w := randSlice(r, 3*64)
	w[0], w[1], w[2], w[3] = 0, float32(math.Copysign(0, -1)), 65504, 3e-6 // zero, -0, F16 max, F16 subnormal
	row := make([]float32, 64)
	for _, dt := range []DType{F32, F16, BF16, Q8_0} {
		m, err := Quantize(dt, w, 3, 64)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			m.Row(i, row)
			for k, got := range row {
				v := w[i*64+k]
				var want float32
				switch dt {
				case F32:
					want = v
				case F16:
					want = F16ToF32(F32ToF16(v))
				case BF16:
					want = BF16ToF32(F32ToBF16(v))
				case Q8_0:
					var q [Q8Block]int8
					b := (i*64 + k) / Q8Block
					d := F16ToF32(QuantizeQ8Block(q[:], w[b*Q8Block:]))
					want = float32(q[k%Q8Block]) * d
				}
				if got != want {
					t.Fatalf("%s row %d col %d: %g, want %g", dt, i, k, got, want)
				}
			}
		}
	}
}

// TestLongRowsStoredInPieces: a matrix with rows longer than longCols,
// filled by SetRows a few rows at a time or wrapped from row-major bits
// (HalfMatrix, Q8Matrix), gives back every row as converted (Row), and the
// two products agree.
func TestLongRowsStoredInPieces(t *testing.T) {
	const rows, cols = 5, 2*pieceCols + 96 // pieces of 2048, 2048, 96
	r := rand.New(rand.NewPCG(5, 6))
	w, x := randSlice(r, rows*cols), randSlice(r, cols)
	for _, dt := range []DType{F16, BF16, Q8_0} {
		set, err := NewQMatrix(dt, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		if want := 3; dt == Q8_0 && set.sq != nil {
			if set.pieces() != 1 { // in strips instead
				t.Fatalf("%s in strips: %d pieces", dt, set.pieces())
			}
		} else if set.pieces() != want {
			t.Fatalf("%s: %d pieces, want %d", dt, set.pieces(), want)
		}
		for _, part := range [][2]int{{0, 2}, {2, 5}} {
			if err := set.SetRows(part[0], w[part[0]*cols:part[1]*cols]); err != nil {
				t.Fatal(err)
			}
		}
		want := make([]float32, rows*cols) // the converted values, row after row
		var wrapped *QMatrix
		switch dt {
		case Q8_0:
			q, sc := make([]int8, rows*cols), make([]uint16, rows*cols/Q8Block)
			for b := range sc {
				sc[b] = QuantizeQ8Block(q[b*Q8Block:], w[b*Q8Block:])
				for k := range Q8Block {
					want[b*Q8Block+k] = float32(q[b*Q8Block+k]) * F16ToF32(sc[b])
				}
			}
			wrapped, err = Q8Matrix(q, sc, rows, cols)
		default:
			h := make([]uint16, rows*cols)
			for i, v := range w {
				if dt == F16 {
					h[i] = F32ToF16(v)
					want[i] = F16ToF32(h[i])
				} else {
					h[i] = F32ToBF16(v)
					want[i] = BF16ToF32(h[i])
				}
			}
			wrapped, err = HalfMatrix(dt, h, rows, cols)
		}
		if err != nil {
			t.Fatal(err)
		}
		row := make([]float32, cols)
		for name, m := range map[string]*QMatrix{"SetRows": set, "wrapped": wrapped} {
			for i := range rows {
				m.Row(i, row)
				for k, got := range row {
					if got != want[i*cols+k] {
						t.Fatalf("%s %s: row %d col %d: %g, want %g", dt, name, i, k, got, want[i*cols+k])
					}
				}
			}
		}
		y1, y2 := make([]float32, rows), make([]float32, rows)
		set.MulT(y1, x, 1, 0)
		wrapped.MulT(y2, x, 1, 0)
		if !slices.Equal(y1, y2) {
			t.Fatalf("%s: products %v and %v", dt, y1, y2)
		}
	}
}

func TestQuantizeRejects(t *testing.T) {
	for _, c := range []struct {
		dt   DType
		w    []float32
		cols int
		want string
	}{
		{F16, []float32{1, 70000}, 2, "value 70000 at row 0, column 1 cannot be stored as f16"},
		{BF16, []float32{float32(math.NaN()), 1}, 2, "value NaN at row 0, column 0"},
		{F16, []float32{65504, -65505}, 2, "value -65505 at row 0, column 1 cannot be stored as f16"},
		{Q8_0, append(make([]float32, 35), float32(math.Inf(-1)), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), 32, "value -Inf at row 1, column 3"},
		{Q8_0, make([]float32, 48), 48, "multiple of 32, not 48"},
		{F16, make([]float32, 5), 2, "5 values is not 2×2"},
	} {
		_, err := Quantize(c.dt, c.w, len(c.w)/c.cols, c.cols)
		if c.want == "5 values is not 2×2" {
			_, err = Quantize(c.dt, c.w, 2, 2)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.dt, err, c.want)
		}
	}
	if _, err := ParseDType("q4_k"); err == nil || !strings.Contains(err.Error(), "f32, f16, bf16, q8_0") {
		t.Errorf("ParseDType(q4_k): %v", err)
	}
	for _, s := range []string{"F16", "bf16", "Q8_0", "f32"} {
		if d, err := ParseDType(s); err != nil || !strings.EqualFold(d.String(), s) {
			t.Errorf("ParseDType(%s) = %v, %v", s, d, err)
		}
	}
}

func TestQMatrixMulT(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, dt := range []DType{F32, F16, BF16, Q8_0} {
			for _, sh := range [][2]int{{7, 64}, {5, 96}, {64, 172}, {9, 224}, {131, 576}, {8, 2048}, {7, 4352}, {33, 4160}} {
				rows, cols := sh[0], sh[1]
				if dt == Q8_0 && cols%Q8Block != 0 {
					continue
				}
				w := randSlice(r, rows*cols)
				w[5] = 1e-7 // an F16 subnormal
				m, err := Quantize(dt, w, rows, cols)
				if err != nil {
					t.Fatal(err)
				}
				for _, M := range []int{1, 2, 3, 4, 9, 20, 40} { // 9 and 20: a batch (≤ TeamRows); 40: a prompt (tiles, panels)
					for _, beta := range []float32{0, 1} {
						t.Run(fmt.Sprintf("%s/%dx%d/M%d/beta%g", dt, rows, cols, M, beta), func(t *testing.T) {
							checkMulT(t, m, randSlice(r, M*cols), randSlice(r, M*rows), M, beta)
						})
					}
				}
			}
		}
	})
}

// TestQ8FullRange: Q8_0 weights as a file may hold them, -128 included (the
// quantizer writes -127…127), multiply exactly as Q8_0 defines (q8Ref) on
// every kernel, rows of 1 to 7 blocks and long rows alike.
func TestQ8FullRange(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, cols := range []int{32, 64, 96, 128, 224, 4160} {
			const rows = 9
			q, sc := make([]int8, rows*cols), make([]uint16, rows*cols/Q8Block)
			for i := range q {
				q[i] = int8(r.IntN(256) - 128)
			}
			q[0], q[1], q[cols-1] = -128, -128, -128
			for i := range sc {
				sc[i] = F32ToF16(float32(r.Float64() * 0.01))
			}
			m, err := Q8Matrix(q, sc, rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			for _, M := range []int{1, 3, 17} { // 17: a prompt's tiles, where they run
				x := randSlice(r, M*cols)
				x[0], x[1] = -1, 1 // the -128 weights meet both signs
				checkMulT(t, m, x, randSlice(r, M*rows), M, 0)
			}
		}
	})
}

func checkMulT(t *testing.T, m *QMatrix, x, y0 []float32, M int, beta float32) {
	t.Helper()
	y := append([]float32(nil), y0...)
	m.MulT(y, x, M, beta)
	if m.DType == BF16 && M > qDirectRows && bf16TilesOK(m.Cols) {
		x = slices.Clone(x) // the BF16 tiles round the activations to BF16
		for i, v := range x {
			x[i] = BF16ToF32(F32ToBF16(v))
		}
	}
	row := make([]float32, m.Cols)
	for o := range m.Rows {
		m.Row(o, row)
		for r := range M {
			var want, mag float64
			if m.DType == Q8_0 && (M <= qDirectRows || m.sq != nil) {
				want, mag = q8Ref(m, o, x[r*m.Cols:(r+1)*m.Cols])
			} else {
				for k, v := range row {
					p := float64(v) * float64(x[r*m.Cols+k])
					want += p
					mag += math.Abs(p)
				}
			}
			if beta != 0 {
				want += float64(y0[r*m.Rows+o])
				mag += math.Abs(float64(y0[r*m.Rows+o]))
			}
			got := float64(y[r*m.Rows+o])
			if math.Abs(got-want) > 1e-5*mag+1e-30 {
				t.Fatalf("row %d out %d: %g, want %g (|terms| %g)", r, o, got, want, mag)
			}
		}
	}
}

// q8Ref is a row's product the way Q8_0 defines it: the activations are
// quantized per block like the weights and each block's integer sum scaled.
func q8Ref(m *QMatrix, o int, x []float32) (want, mag float64) {
	var xq [Q8Block]int8
	q, d := make([]int8, m.Cols), make([]float32, m.Cols/Q8Block)
	m.q8Values(o, q, d)
	for b := range d {
		xd := float64(F16ToF32(QuantizeQ8Block(xq[:], x[b*Q8Block:])))
		var is int64
		for k := range Q8Block {
			is += int64(q[b*Q8Block+k]) * int64(xq[k])
		}
		p := float64(is) * float64(d[b]) * xd
		want += p
		mag += math.Abs(p)
	}
	return want, mag
}

// TestQ8CloseToF32 bounds what 8-bit weights and activations cost against
// the float32 product: Q8_0 keeps about 2 decimal digits per value.
func TestQ8CloseToF32(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	rows, cols := 64, 576
	w, x := randSlice(r, rows*cols), randSlice(r, cols)
	m, err := Quantize(Q8_0, w, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, rows)
	m.MulT(y, x, 1, 0)
	var worst float64
	for o := range rows {
		var want, norm float64
		for k := range cols {
			want += float64(w[o*cols+k]) * float64(x[k])
			norm += float64(w[o*cols+k]) * float64(w[o*cols+k])
		}
		worst = max(worst, math.Abs(float64(y[o])-want)/math.Sqrt(norm*float64(cols)))
	}
	if worst > 0.01 || worst == 0 {
		t.Fatalf("q8_0 error %.4g of the product's scale; want (0, 0.01]", worst)
	}
}

// BenchmarkQMulT times one decoding row through a matrix the size of a
// 180M model's classifier (128256 × 576) in each weight type; the weight
// bytes read per second are reported as GB/s.
func BenchmarkQMulT(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	rows, cols := 128256, 576
	if os.Getenv("QMUL_COLS") != "" {
		cols, _ = strconv.Atoi(os.Getenv("QMUL_COLS"))
		rows = 128256 * 576 / cols
	}
	w, x := randSlice(r, rows*cols), randSlice(r, cols)
	y := make([]float32, rows)
	for _, dt := range []DType{F32, F16, BF16, Q8_0} {
		m, err := Quantize(dt, w, rows, cols)
		if err != nil {
			b.Fatal(err)
		}
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads%d", dt, th), func(b *testing.B) {
				defer SetThreads(Threads())
				SetThreads(th)
				if os.Getenv("QMUL_AVX2") != "" && level > levelAVX2 {
					defer func(l int) { level = l }(level)
					level = levelAVX2
				}
				for b.Loop() {
					m.MulT(y, x, 1, 0)
				}
				b.ReportMetric(float64(m.Bytes())*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			})
		}
	}
}

// BenchmarkQMulTCold is a decoded row's products over the layers of a
// Llama-3.2-1B-shaped model (16 layers of 2048-wide attention with 8 KV
// heads and an 8192-wide feed-forward: 1.0 G weights, none of them in cache
// when read), as decoding streams them, beside a streaming sum over the
// same number of bytes: the share of the machine's read rate a weight type's
// row kernel keeps. BenchmarkQMulT reads one 78 MB matrix again and again,
// which the 32 MB third-level cache partly holds.
func BenchmarkQMulTCold(b *testing.B) {
	defer SetThreads(Threads())
	SetThreads(1)
	shapes := [][2]int{{2048, 2048}, {512, 2048}, {512, 2048}, {2048, 2048}, {8192, 2048}, {8192, 2048}, {2048, 8192}}
	r := rand.New(rand.NewPCG(5, 6))
	src := randSlice(r, 8192*2048)
	x := randSlice(r, 8192)
	y := make([]float32, 8192)
	for _, dt := range []DType{Q8_0, F16} {
		b.Run(dt.String(), func(b *testing.B) {
			ms, bytes := layerMatrices(b, dt, 16, shapes, src)
			sum := MakeHuge[float32](int(bytes / 4))
			for i := range sum {
				sum[i] = 1 // written, so that the pages are memory, not the shared zero page
			}
			var tq, ts time.Duration
			for b.Loop() {
				t0 := time.Now()
				for _, m := range ms {
					m.MulT(y[:m.Rows], x[:m.Cols], 1, 0)
				}
				t1 := time.Now()
				if !(Sum(sum) > 0) {
					b.Fatal("a buffer of ones sums to no more than 0")
				}
				tq, ts = tq+t1.Sub(t0), ts+time.Since(t1)
			}
			b.ReportMetric(float64(bytes)*float64(b.N)/tq.Seconds()/1e9, "GB/s")
			b.ReportMetric(float64(bytes)*float64(b.N)/ts.Seconds()/1e9, "sum-GB/s")
			b.ReportMetric(ts.Seconds()/tq.Seconds(), "of-sum")
		})
	}
}

// layerMatrices stores a model's layer matrices in dt: layers × shapes
// (rows, cols), each from the first rows·cols values of src; it returns them
// and their bytes.
func layerMatrices(b *testing.B, dt DType, layers int, shapes [][2]int, src []float32) ([]*QMatrix, int64) {
	var ms []*QMatrix
	var bytes int64
	for range layers {
		for _, s := range shapes {
			m := mustQuantize(b, dt, src[:s[0]*s[1]], s[0], s[1])
			ms, bytes = append(ms, m), bytes+m.Bytes()
		}
	}
	return ms, bytes
}

// TestRoundHalfAway: the quantizer's rounding equals math.Round (halves away
// from zero) on halves, their neighbours, and random values in Q8_0's range.
func TestRoundHalfAway(t *testing.T) {
	var xs []float32
	for k := -128; k <= 128; k++ {
		h := float32(k) + 0.5
		xs = append(xs, float32(k), h, math.Nextafter32(h, -1000), math.Nextafter32(h, 1000), -h)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		xs = append(xs, float32(rng.Float64()*255-127.5))
	}
	for _, x := range xs {
		if got, want := roundHalfAway(x), int32(math.Round(float64(x))); got != want {
			t.Fatalf("roundHalfAway(%v) = %d, math.Round gives %d", x, got, want)
		}
	}
}

// TestMulTOnTeamF32: a batch of rows times an F32 matrix split over a team
// equals Gemm's product, bit for bit on AVX-512 (both the dot form on ranges
// of 4 columns), within 1e-5 (relative) elsewhere.
func TestMulTOnTeamF32(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(2)
	team := NewTeam()
	defer team.Close()
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(6, 6))
		for _, sh := range [][3]int{{7, 70, 64}, {16, 1002, 576}, {32, 130, 100}} {
			M, rows, cols := sh[0], sh[1], sh[2]
			m := F32Matrix(randSlice(r, rows*cols), rows, cols)
			x, y0 := randSlice(r, M*cols), randSlice(r, M*rows)
			for _, beta := range []float32{0, 1} {
				want := append([]float32(nil), y0...)
				Gemm(false, true, M, rows, cols, x, cols, m.f, cols, beta, want, rows)
				got := append([]float32(nil), y0...)
				m.MulTOn(team, got, x, M, beta)
				for i := range want {
					d := math.Abs(float64(got[i] - want[i]))
					if level == levelAVX512 && d != 0 || d > 1e-5*(1+math.Abs(float64(want[i]))) {
						t.Fatalf("%d×%d×%d beta %g: element %d: %v on the team, Gemm %v", M, rows, cols, beta, i, got[i], want[i])
					}
				}
			}
		}
	})
}

// TestRowsSplitAlike: an F16, BF16 or Q8_0 product of a few rows gives the
// same bits however its rows are shared out — on one thread, over
// ParallelFor's chunks and over a team's halves (whose boundary, 101 of 203
// rows, cuts a block of four) — since a row reduced alone is summed in the
// order of a row in a block of four.
func TestRowsSplitAlike(t *testing.T) {
	defer SetThreads(Threads())
	team := NewTeam()
	defer team.Close()
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 9))
		for _, dt := range []DType{F16, BF16, Q8_0} {
			for _, sh := range [][3]int{{1, 203, 576}, {3, 203, 576}, {2, 70, 64}, {1, 43, 6208}, {2, 11, 4128}} {
				M, rows, cols := sh[0], sh[1], sh[2]
				m, err := Quantize(dt, randSlice(r, rows*cols), rows, cols)
				if err != nil {
					t.Fatal(err)
				}
				x := randSlice(r, M*cols)
				SetThreads(1)
				want := make([]float32, M*rows)
				m.MulT(want, x, M, 0)
				SetThreads(2)
				chunks := make([]float32, M*rows)
				m.MulT(chunks, x, M, 0)
				halves := make([]float32, M*rows)
				m.MulTOn(team, halves, x, M, 0)
				for i := range want {
					if chunks[i] != want[i] || halves[i] != want[i] {
						t.Fatalf("%s %d×%d×%d: element %d: one thread %v, chunks %v, team halves %v", dt, M, rows, cols, i, want[i], chunks[i], halves[i])
					}
				}
			}
		}
	})
}

// BenchmarkTeamProducts times one decoded row through the matrices of a
// 180M model's 30 layers (SmolLM2-135M's shapes, F16: q and o 576×576, k
// and v 192×576, gate and up 1536×576, down 576×1536), split over a team
// as a decoding sequence splits them, and on one thread; the weight bytes
// read per second are reported as GB/s.
func BenchmarkTeamProducts(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	shapes := [][2]int{{576, 576}, {192, 576}, {192, 576}, {576, 576}, {1536, 576}, {1536, 576}, {576, 1536}}
	ms, bytes := layerMatrices(b, F16, 30, shapes, randSlice(r, 1536*576))
	x, y := randSlice(r, 1536), make([]float32, 1536)
	for _, team := range []bool{true, false} {
		name := "alone"
		if team {
			name = "team"
		}
		b.Run(name, func(b *testing.B) {
			var t *Team
			if team {
				t = NewTeam()
				defer t.Close()
			} else {
				defer SetThreads(Threads())
				SetThreads(1)
			}
			for b.Loop() {
				for _, m := range ms {
					m.MulTOn(t, y, x[:m.Cols], 1, 0)
				}
			}
			b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

// BenchmarkQMulTPrompt times a 512-row prompt through a 1536 × 576 matrix
// (a 180M model's up projection) in each weight type, on every thread;
// GFLOP/s counts two per multiply-add. F16 and BF16 (and Q8_0 without
// AVX-512 VNNI) widen panels to float32 for Gemm; Q8_0 with it multiplies
// 8-bit tiles.
func BenchmarkQMulTPrompt(b *testing.B) {
	const M, rows, cols = 512, 1536, 576
	r := rand.New(rand.NewPCG(7, 8))
	w, x := randSlice(r, rows*cols), randSlice(r, M*cols)
	y := make([]float32, M*rows)
	for _, dt := range []DType{F32, F16, BF16, Q8_0} {
		m, err := Quantize(dt, w, rows, cols)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(dt.String(), func(b *testing.B) {
			for b.Loop() {
				m.MulT(y, x, M, 0)
			}
			b.ReportMetric(2*M*rows*cols*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
