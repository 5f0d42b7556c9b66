package tensor

import (
	"fmt"
	"math"
	"strings"
	"sync"
)

// DType is how a weight matrix is stored for inference.
type DType uint8

const (
	F32  DType = iota // 32-bit floats
	F16               // IEEE half precision
	BF16              // bfloat16
	Q8_0              // GGUF's Q8_0: blocks of 32 int8 weights sharing one F16 scale
)

var dtypeNames = [...]string{F32: "f32", F16: "f16", BF16: "bf16", Q8_0: "q8_0"}

func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// ParseDType reads a dtype name: f32, f16, bf16 or q8_0 (any case).
func ParseDType(s string) (DType, error) {
	for d, n := range dtypeNames {
		if strings.EqualFold(s, n) {
			return DType(d), nil
		}
	}
	return 0, fmt.Errorf("dtype %q: want one of %s", s, strings.Join(dtypeNames[:], ", "))
}

// BitsPerWeight is the storage cost of one weight (Q8_0: 8 bits plus a
// 16-bit scale per 32 weights).
func (d DType) BitsPerWeight() float64 {
	return [...]float64{F32: 32, F16: 16, BF16: 16, Q8_0: 8.5}[d]
}

// QMatrix is a (Rows, Cols) weight matrix kept in its DType, for products
// with float32 activations (F32 accumulation). It is stored row after row,
// except that an F16, BF16 or Q8_0 matrix with rows longer than longCols is
// stored in column pieces (see piece), and Q8_0 is stored in strips of 16
// rows where AVX-512 VNNI runs (see qstrip.go).
type QMatrix struct {
	DType      DType
	Rows, Cols int
	f          []float32 // F32
	h          []uint16  // F16 / BF16 bits
	q          []int8    // Q8_0 weights
	d          []float32 // Q8_0 scale of each block (F16 values), Rows × Cols/32
	sq         []byte    // Q8_0 in strips (instead of q and d)
	sd         []uint16  // the strips' block scales (F16 bits, as GGUF stores them)
}

// Rows longer than longCols are stored in pieces of pieceCols columns:
// piece p holds columns p·pieceCols… of every row, row after row, so a
// product that takes the columns a piece at a time (the activations' piece
// staying in the first-level cache) still streams the weights in one
// sequence. Measured with BenchmarkQMulT on 2048×8192 F16 (a 1B model's
// down projection), one thread: rows streamed whole 11–12 GB/s (an
// activation row of 32 KiB does not stay in the 32 KiB cache beside the
// weights), row-major pieces 9, stored pieces 33.
const (
	longCols  = 4096
	pieceCols = 2048
)

// pieces is how many column pieces the matrix is stored in (1: row-major).
func (m *QMatrix) pieces() int {
	if m.DType == F32 || m.Cols <= longCols || m.sq != nil {
		return 1
	}
	return (m.Cols + pieceCols - 1) / pieceCols
}

// piece locates piece p of row o: its offset in the stored values (h or
// q; q's block scales are at off/Q8Block), its first column and its width.
func (m *QMatrix) piece(o, p int) (off, c0, w int) {
	if m.DType == F32 || m.Cols <= longCols || m.sq != nil {
		return o * m.Cols, 0, m.Cols
	}
	c0 = p * pieceCols
	w = min(pieceCols, m.Cols-c0)
	return c0*m.Rows + o*w, c0, w
}

// Quantize stores the (rows, cols) matrix w in dt. F16 fails on values
// beyond its range; Q8_0 needs cols to be a multiple of 32; NaN and
// infinities fail for every type.
func Quantize(dt DType, w []float32, rows, cols int) (*QMatrix, error) {
	if len(w) != rows*cols {
		return nil, fmt.Errorf("matrix of %d values is not %d×%d", len(w), rows, cols)
	}
	if dt == F32 {
		if err := storable(dt, w, 0, cols); err != nil {
			return nil, err
		}
		return &QMatrix{DType: dt, Rows: rows, Cols: cols, f: w}, nil
	}
	m, err := NewQMatrix(dt, rows, cols)
	if err != nil {
		return nil, err
	}
	if err := m.SetRows(0, w); err != nil {
		return nil, err
	}
	return m, nil
}

// NewQMatrix allocates a zero (rows, cols) matrix in F16, BF16 or Q8_0 (cols
// a multiple of 32), to be filled by SetRows.
func NewQMatrix(dt DType, rows, cols int) (*QMatrix, error) {
	m := &QMatrix{DType: dt, Rows: rows, Cols: cols}
	switch dt {
	case F16, BF16:
		m.h = MakeWeights[uint16](rows * cols)
	case Q8_0:
		if cols%Q8Block != 0 {
			return nil, fmt.Errorf("q8_0 needs rows whose length is a multiple of %d, not %d", Q8Block, cols)
		}
		if q8TilesOK() {
			m.newStrips()
			break
		}
		m.q = MakeWeights[int8](rows * cols)
		m.d = make([]float32, rows*cols/Q8Block)
	default:
		return nil, fmt.Errorf("NewQMatrix: dtype %v (want f16, bf16 or q8_0)", dt)
	}
	return m, nil
}

// SetRows stores the rows of w (whole rows) from row row0 on, converted to
// the matrix's type as Quantize converts: F16 fails on values beyond its
// range, NaN and infinities fail for every type (nothing is stored then).
func (m *QMatrix) SetRows(row0 int, w []float32) error {
	if len(w)%m.Cols != 0 || row0 < 0 || row0+len(w)/m.Cols > m.Rows {
		return fmt.Errorf("SetRows: %d values from row %d do not fit a %d×%d matrix", len(w), row0, m.Rows, m.Cols)
	}
	if err := storable(m.DType, w, row0, m.Cols); err != nil {
		return err
	}
	if m.DType != F16 && m.DType != BF16 && m.DType != Q8_0 {
		return fmt.Errorf("SetRows: a %s matrix", m.DType)
	}
	to := F32ToF16
	if m.DType == BF16 {
		to = F32ToBF16
	}
	ParallelFor(len(w)/m.Cols, max(1, (1<<14)/m.Cols), func(lo, hi int) {
		var q []int8
		var d []float32
		if m.DType == Q8_0 {
			q, d = make([]int8, m.Cols), make([]float32, m.Cols/Q8Block)
		}
		for i := lo; i < hi; i++ {
			if m.DType == Q8_0 {
				m.setQ8Row(row0+i, w[i*m.Cols:][:m.Cols], q, d)
				continue
			}
			for p := range m.pieces() {
				off, c0, n := m.piece(row0+i, p)
				for k, v := range w[i*m.Cols+c0:][:n] {
					m.h[off+k] = to(v)
				}
			}
		}
	})
	return nil
}

// setQ8Row stores row o of a Q8_0 matrix from its values w (unchecked),
// leaving the quantized values in q (Cols) and the blocks' scales in d.
func (m *QMatrix) setQ8Row(o int, w []float32, q []int8, d []float32) {
	for b := range d {
		d[b] = F16ToF32(QuantizeQ8Block(q[b*Q8Block:], w[b*Q8Block:]))
	}
	if m.sq != nil {
		for b, v := range d {
			m.setStripBlock(o, b, q[b*Q8Block:], v)
		}
		return
	}
	for p := range m.pieces() {
		off, c0, n := m.piece(o, p)
		copy(m.q[off:off+n], q[c0:])
		copy(m.d[off/Q8Block:(off+n)/Q8Block], d[c0/Q8Block:])
	}
}

// fromRows stores the matrix m's stored values, given row after row (h, or
// q and d), in m: as they are, or copied into pieces when m's rows are long
// or into strips (Q8_0 where they run).
func (m *QMatrix) fromRows(h []uint16, q []int8, d []float32) {
	if q != nil && q8TilesOK() {
		m.stripsFromRows(q, d)
		return
	}
	m.h, m.q, m.d = h, q, d
	if m.pieces() == 1 {
		return
	}
	if h != nil {
		m.h = MakeWeights[uint16](len(h))
	} else {
		m.q, m.d = MakeWeights[int8](len(q)), make([]float32, len(d))
	}
	for o := range m.Rows {
		for p := range m.pieces() {
			off, c0, n := m.piece(o, p)
			if h != nil {
				copy(m.h[off:off+n], h[o*m.Cols+c0:])
				continue
			}
			copy(m.q[off:off+n], q[o*m.Cols+c0:])
			copy(m.d[off/Q8Block:(off+n)/Q8Block], d[(o*m.Cols+c0)/Q8Block:])
		}
	}
}

// storable checks that dt can hold every value of w (rows of cols values
// from row row0 on, for the message).
func storable(dt DType, w []float32, row0, cols int) error {
	limit := uint32(0x7f800000) // |v|'s bits below +Inf's: finite
	if dt == F16 {
		limit = math.Float32bits(65504) + 1 // and within F16's range
	}
	for i, v := range w {
		if math.Float32bits(v)&^(1<<31) >= limit {
			return fmt.Errorf("value %g at row %d, column %d cannot be stored as %s", v, row0+i/cols, i%cols, dt)
		}
	}
	return nil
}

// F32Matrix wraps float32 weights (not copied) as a matrix, for the
// decoding kernels' row-by-row products.
func F32Matrix(w []float32, rows, cols int) *QMatrix {
	return &QMatrix{DType: F32, Rows: rows, Cols: cols, f: w[:rows*cols]}
}

// HalfMatrix wraps F16 or BF16 bits, row after row, as a matrix: not copied,
// unless its rows are long enough to be stored in pieces.
func HalfMatrix(dt DType, h []uint16, rows, cols int) (*QMatrix, error) {
	if dt != F16 && dt != BF16 || len(h) != rows*cols {
		return nil, fmt.Errorf("%d %s values are not a %d×%d matrix", len(h), dt, rows, cols)
	}
	m := &QMatrix{DType: dt, Rows: rows, Cols: cols}
	m.fromRows(h, nil, nil)
	return m, nil
}

// Q8Matrix wraps Q8_0 weights and their block scales (F16 bits), row after
// row, as a matrix (the weights copied only into pieces for long rows, or
// into strips where they run).
func Q8Matrix(q []int8, scales []uint16, rows, cols int) (*QMatrix, error) {
	if cols%Q8Block != 0 || len(q) != rows*cols || len(scales) != len(q)/Q8Block {
		return nil, fmt.Errorf("%d q8_0 weights with %d scales are not a %d×%d matrix", len(q), len(scales), rows, cols)
	}
	d := make([]float32, len(scales))
	for i, s := range scales {
		d[i] = F16ToF32(s)
	}
	m := &QMatrix{DType: Q8_0, Rows: rows, Cols: cols}
	m.fromRows(nil, q, d)
	return m, nil
}

// Bytes is the memory the weights take.
func (m *QMatrix) Bytes() int64 {
	return int64(4*len(m.f) + 2*len(m.h) + len(m.q) + 2*len(m.d) + len(m.sq) + 2*len(m.sd))
}

// Row writes row i widened to float32 into dst[:Cols].
func (m *QMatrix) Row(i int, dst []float32) {
	dst = dst[:m.Cols]
	if m.sq != nil {
		var q [Q8Block]int8
		for b := range m.Cols / Q8Block {
			d := m.stripBlockWeights(i, b, &q)
			for k, v := range q {
				dst[b*Q8Block+k] = float32(v) * d
			}
		}
		return
	}
	for p := range m.pieces() {
		o, c0, n := m.piece(i, p)
		d := dst[c0 : c0+n]
		switch m.DType {
		case F32:
			copy(d, m.f[o:])
		case F16:
			t := f16Table()
			for k, h := range m.h[o : o+n] {
				d[k] = t[h]
			}
		case BF16:
			for k, h := range m.h[o : o+n] {
				d[k] = BF16ToF32(h)
			}
		case Q8_0:
			for k, q := range m.q[o : o+n] {
				d[k] = float32(q) * m.d[(o+k)/Q8Block]
			}
		}
	}
}

var (
	f16Once sync.Once
	f16Tab  []float32
)

// f16Table maps every F16 bit pattern to its float32 value (256 KiB).
func f16Table() []float32 {
	f16Once.Do(func() {
		f16Tab = make([]float32, 1<<16)
		for h := range f16Tab {
			f16Tab[h] = F16ToF32(uint16(h))
		}
	})
	return f16Tab
}

// qDirectRows is the most activation rows MulT multiplies straight from the
// stored weights; more rows (a prompt, a batch of sequences) widen panels of
// the matrix to float32 and use the blocked matrix product. Measured on a
// 46080×576 matrix, one thread: the direct kernels are faster up to 4 rows
// (F16 19.7 vs 16.9 G weight-rows/s), the panels from 8 (18.3 vs 15.1).
// A BF16 or F16 matrix times a batch of up to TeamRows rows reads its rows
// in place instead (mulHalfDot).
const qDirectRows = 6

// MulT computes y (M, Rows) = x (M, Cols) · mᵀ + beta·y (beta 0 or 1), on
// Threads() threads. For Q8_0 the activations are quantized to 8 bits per
// block of 32 as well (as llama.cpp does), so the inner products are exact
// integer sums — always for a few rows, and for many rows (a prompt) where
// the 8-bit tiles run (PromptsRoundActivations).
func (m *QMatrix) MulT(y, x []float32, M int, beta float32) { m.MulTOn(nil, y, x, M, beta) }

// MulTOn is MulT with a few rows' products split over team t (the caller
// and its spinning partner) instead of ParallelFor, whose parked helpers
// take longer to wake than a decoded token's product of a small matrix
// lasts. A nil team uses ParallelFor.
func (m *QMatrix) MulTOn(t *Team, y, x []float32, M int, beta float32) {
	if len(x) < M*m.Cols || len(y) < M*m.Rows || (beta != 0 && beta != 1) {
		panic(fmt.Sprintf("tensor.QMatrix.MulT: %d×%d matrix, %d rows, len(x)=%d, len(y)=%d, beta=%g", m.Rows, m.Cols, M, len(x), len(y), beta))
	}
	if M == 0 {
		return
	}
	if m.sq != nil {
		m.mulStrips(t, y, x, M, beta)
		return
	}
	if m.DType == F32 && M > qDirectRows {
		if t != nil && M <= TeamRows {
			m.mulF32On(t, y, x, M, beta)
			return
		}
		Gemm(false, true, M, m.Rows, m.Cols, x, m.Cols, m.f, m.Cols, beta, y, m.Rows)
		return
	}
	if M > qDirectRows && M <= TeamRows && halfDotOK(m) {
		m.mulHalfDot(t, y, x, M, beta)
		return
	}
	if M > qDirectRows {
		m.mulPanels(y, x, M, beta)
		return
	}
	var a *q8Acts
	if m.DType == Q8_0 {
		a = quantizeActs(x, M, m.Cols)
		defer q8ActPool.Put(a)
	}
	rows := func(lo, hi int) {
		if level > levelGo {
			qRowsSIMD(m, y, x, a, M, lo, hi, beta)
			clearUpper()
		} else {
			qRowsGo(m, y, x, a, M, lo, hi, beta)
		}
	}
	if t != nil {
		// Two halves, one a thread, each read as one contiguous stream.
		// Measured on a 180M model's layer products, 2 threads: items of 32K
		// weights taken in turns ran at 30 GB/s and halves at 44 with the
		// matrices in 4 KiB pages; in huge pages (tensor.MakeWeights) the two
		// were alike, 37–38 GB/s in alternating runs of BenchmarkTeamProducts.
		// A matrix under 32K weights is not split.
		n := 1
		if m.Rows >= 2 && m.Rows*m.Cols >= 1<<15 {
			n = 2
		}
		t.For(n, func(_, i int) { rows(i*m.Rows/n, (i+1)*m.Rows/n) })
		return
	}
	ParallelFor(m.Rows, max(1, (1<<15)/m.Cols), rows) // chunks of about 32K weights
}

// TeamRows is the most rows MulTOn splits over a team: a batch of decoded
// sequences (serve's batcher), not a prompt.
const TeamRows = 32

// mulF32On is MulTOn for an F32 matrix and a batch of rows: each item
// multiplies every row by a range of the matrix's rows. On AVX-512 an item
// is Gemm's dot form on a range starting at a multiple of 4, as Gemm's own
// split does, so the result is Gemm's bit for bit (Gemm itself would take
// a narrow range through its packed kernels). Items are small (at least 16)
// because the caller waits for the partner's last one.
func (m *QMatrix) mulF32On(t *Team, y, x []float32, M int, beta float32) {
	groups := (m.Rows + 3) / 4
	n := min(256, groups, max(16, M*m.Rows*m.Cols>>17))
	t.For(n, func(_, i int) {
		lo, hi := 4*(i*groups/n), min(4*((i+1)*groups/n), m.Rows)
		if level >= levelAVX512 {
			dotRowsSIMD(M, hi-lo, m.Cols, x, m.Cols, m.f[lo*m.Cols:], m.Cols, beta, y[lo:], m.Rows)
			return
		}
		GemmSerial(false, true, M, hi-lo, m.Cols, x, m.Cols, m.f[lo*m.Cols:], m.Cols, beta, y[lo:], m.Rows)
	})
}

// mulPanels is MulT for many rows: panels of the matrix are widened to
// float32 and multiplied with Gemm — or, where the tiles run, BF16 with the
// activations rounded to BF16 (mulBF16Tiles, AVX512-BF16). (Q8_0's tiles
// read its strips: mulStrips.)
func (m *QMatrix) mulPanels(y, x []float32, M int, beta float32) {
	switch {
	case m.DType == BF16 && bf16TilesOK(m.Cols):
		m.mulBF16Tiles(y, x, M, beta)
		return
	}
	R := max(16, (1<<19)/m.Cols) // a 2 MiB panel
	R = min(R, m.Rows)
	pb := panelPool.Get().(*[]float32)
	defer panelPool.Put(pb)
	if cap(*pb) < R*m.Cols {
		*pb = make([]float32, R*m.Cols)
	}
	panel := (*pb)[:R*m.Cols]
	for r0 := 0; r0 < m.Rows; r0 += R {
		n := min(R, m.Rows-r0)
		ParallelFor(n, max(1, 4096/m.Cols), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				if level >= levelAVX512 {
					widenRowSIMD(m, r0+i, panel[i*m.Cols:])
				} else {
					m.Row(r0+i, panel[i*m.Cols:])
				}
			}
			clearUpper()
		})
		Gemm(false, true, M, n, m.Cols, x, m.Cols, panel, m.Cols, beta, y[r0:], m.Rows)
	}
}

var panelPool = sync.Pool{New: func() any { return new([]float32) }}

// CheckHalfFinite reports the first F16 or BF16 value of h (as dt) that is
// an infinity or a NaN (its exponent all ones).
func CheckHalfFinite(dt DType, h []uint16) error {
	mask := uint16(0x7c00)
	if dt == BF16 {
		mask = 0x7f80
	}
	for i, v := range h {
		if v&mask == mask {
			return fmt.Errorf("element %d is not finite", i)
		}
	}
	return nil
}

// rowProduct is output o of MulT for the one activation row x (written to
// y[o] as well), by the kernel MulT runs for a few rows; m is F32, F16 or
// BF16.
func (m *QMatrix) rowProduct(x []float32, o int, y []float32) float32 {
	if level > levelGo {
		qRowsSIMD(m, y, x, nil, 1, o, o+1, 0)
		clearUpper()
	} else {
		qRowsGo(m, y, x, nil, 1, o, o+1, 0)
	}
	return y[o]
}
