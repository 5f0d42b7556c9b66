//go:build goexperiment.simd && amd64

package tensor

import (
	"math"
	"simd/archsimd"
	"sync"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// Q8_0 products of many activation rows (a prompt) on AVX-512 VNNI: the
// activations are quantized to Q8_0 blocks as for a few rows (quantizeActs'
// values), and a tile of 16 weight rows × 8 activation rows is summed in
// integers block by block with VPDPBUSD (q8Tile16x8, in assembly: archsimd
// has no VNNI instructions), then scaled and added in float32 block by
// block in column order, as qRowsGo adds them. VPDPBUSD multiplies unsigned
// by signed bytes, so the weights are packed as w+128 and each activation
// block's sum starts at -128·Σx: no products saturate and the integer sums
// are exact, −128 weights included. The weights are packed 16 rows at a
// time (a strip: the matrix is read once) and the strip serves every
// activation row from the cache (9 KiB of weights for rows of 576).

// q8Tile16x8 is the tile kernel (qtile_amd64.s).
//
//go:noescape
func q8Tile16x8(w *byte, dw *uint16, x *int8, xc *int32, xd *float32, nb int, out *float32)

var (
	haveVNNI = archsimd.X86.AVX512VNNI()
	haveBF16 = cpu.X86.HasAVX512BF16
)

// q8TilesOK is whether mulQ8Tiles runs here.
func q8TilesOK() bool { return level >= levelAVX512 && haveVNNI }

// bf16TilesOK is whether mulBF16Tiles runs here for rows of cols columns.
func bf16TilesOK(cols int) bool { return level >= levelAVX512 && haveBF16 && cols%4 == 0 }

// tileActsQ8 holds activation rows quantized and laid out for the kernel:
// for each group of 8 rows and each block, the 8 rows' 32 values (x), the
// start of their integer sums (c: -128·Σx) and their scales (d).
type tileActsQ8 struct {
	x []int8
	c []int32
	d []float32
}

var tileActsPool = sync.Pool{New: func() any { return new(tileActsQ8) }}

// mulBF16Tiles is MulT for a BF16 matrix and many activation rows: the
// activations are rounded to BF16 (as llama.cpp rounds them for BF16
// weights) and a tile of 16 weight rows × 16 activation rows sums pairs of
// products into float32 with VDPBF16PS — twice the multiply-adds of an
// F32 FMA a step (Intel SDM: products exact, each sum rounded to nearest
// even; denormal inputs and outputs flushed to zero). The weights are
// packed a strip of 16 rows at a time, pairs of columns together.
func (m *QMatrix) mulBF16Tiles(y, x []float32, M int, beta float32) {
	const acts = 16 // activation rows of a tile (bf16Tile16x16)
	pairs := m.Cols / 2
	groups := (M + acts - 1) / acts
	xb := tileBF16Pool.Get().(*[]uint32)
	defer tileBF16Pool.Put(xb)
	*xb = grown(*xb, groups*pairs*acts)
	a := *xb
	clear(a[(M/acts)*pairs*acts:])
	ParallelFor(groups, 1, func(lo, hi int) {
		for r := lo * acts; r < min(M, hi*acts); r++ {
			g, j := r/acts, r%acts
			packBF16Row(a[g*pairs*acts+j:], x[r*m.Cols:][:m.Cols], acts)
		}
	})
	m.mulTiles(nil, y, M, acts, beta, func(s *tileStrip, r0, n int) { m.packBF16Strip(s, r0, n) },
		func(s *tileStrip, _, g int, out []float32) {
			bf16Tile16x16(&s.h[0], &a[g*pairs*acts], pairs/2, &out[0])
		})
}

var tileBF16Pool = sync.Pool{New: func() any { return new([]uint32) }}

// packBF16Row rounds row to BF16 as F32ToBF16 does (NaN aside: it is
// garbage in a product anyway) and writes its pairs of columns to dst[0],
// dst[stride], dst[2·stride]… (AVX-512, 16 values a step).
func packBF16Row(dst []uint32, row []float32, stride int) {
	c := 0
	for ; c+16 <= len(row); c += 16 {
		var t [8]uint32
		roundBF16x16(row[c : c+16]).AsUint32x8().Store(&t)
		d := dst[c/2*stride:]
		_ = d[7*stride]
		for i, v := range t {
			d[i*stride] = v
		}
	}
	for ; c < len(row); c += 2 {
		dst[c/2*stride] = uint32(F32ToBF16(row[c])) | uint32(F32ToBF16(row[c+1]))<<16
	}
}

// packBF16Strip packs rows r0..r0+n-1 (n ≤ 16) of a BF16 matrix into s:
// for each pair of columns the 16 rows' two values; rows after n are zero.
// A whole strip is transposed 16 pairs × 16 rows at a time
// (transpose16x16u32), a piece's last pairs and a partial strip value by
// value.
func (m *QMatrix) packBF16Strip(s *tileStrip, r0, n int) {
	pairs := m.Cols / 2
	s.h = grown(s.h, pairs*tileRows)
	if n == tileRows {
		for pc := range m.pieces() {
			off, c0, w := m.piece(r0, pc)
			src := unsafe.Slice((*uint32)(unsafe.Pointer(&m.h[off])), tileRows*w/2) // rows w/2 pairs apart
			p := 0
			for ; p+16 <= w/2; p += 16 {
				transpose16x16u32(&src[p], w/2, &s.h[(c0/2+p)*tileRows])
			}
			for i := range tileRows {
				for q := p; q < w/2; q++ {
					s.h[(c0/2+q)*tileRows+i] = src[i*w/2+q]
				}
			}
		}
		return
	}
	for i := range tileRows {
		if i >= n {
			for p := range pairs {
				s.h[p*tileRows+i] = 0
			}
			continue
		}
		for pc := range m.pieces() {
			off, c0, w := m.piece(r0+i, pc)
			h, d := m.h[off:off+w], s.h[c0/2*tileRows+i:]
			for p := range w / 2 {
				d[p*tileRows] = uint32(h[2*p]) | uint32(h[2*p+1])<<16
			}
		}
	}
}

// tileStrip is a packed strip of 16 BF16 weight rows: per pair of columns
// the 16 rows' pairs.
type tileStrip struct {
	h []uint32
}

var tileStripPool = sync.Pool{New: func() any { return new(tileStrip) }}

// mulQ8Tiles is MulTOn for a Q8_0 matrix in strips and many activation
// rows (on team t when not nil).
func (m *QMatrix) mulQ8Tiles(t *Team, y, x []float32, M int, beta float32) {
	nb := m.Cols / Q8Block
	a := packTileActs(x, M, m.Cols, t == nil)
	defer tileActsPool.Put(a)
	m.mulTiles(t, y, M, tileActs, beta, nil, func(_ *tileStrip, strip, g int, out []float32) {
		q8Tile16x8(&m.sq[strip*nb*stripBlock], &m.sd[strip*nb*tileRows], &a.x[g*nb*tileActs*Q8Block], &a.c[g*nb*tileActs], &a.d[g*nb*tileActs], nb, &out[0])
	})
}

// q8Strip16x1 is the kernel of one activation row over a strip
// (qtile_amd64.s): q8Tile16x8's sums for one row.
//
//go:noescape
func q8Strip16x1(w *byte, dw *uint16, x *int8, xc *int32, xd *float32, nb int, out *float32)

// q8StripsSIMD is q8StripsGo on AVX-512 VNNI: each activation row against
// each strip, the strip staying in cache for the next row. A row's outputs
// are its tile outputs bit for bit (the same integer sums, scaled and added
// in the same order), so a sequence decodes alike alone and in a batch.
func q8StripsSIMD(m *QMatrix, y []float32, a *q8Acts, M, lo, hi int, beta float32) {
	nb := m.Cols / Q8Block
	var out [tileRows]float32
	for strip := lo; strip < hi; strip++ {
		r0 := strip * tileRows
		n := min(tileRows, m.Rows-r0)
		for r := range M {
			k := r * nb
			q8Strip16x1(&m.sq[strip*nb*stripBlock], &m.sd[strip*nb*tileRows], &a.s[k*Q8Block], &a.c[k], &a.d[k], nb, &out[0])
			dst := y[r*m.Rows+r0:][:n]
			if beta == 0 {
				copy(dst, out[:n])
				continue
			}
			for i, v := range out[:n] {
				dst[i] += v
			}
		}
	}
}

// mulTiles runs the tiles of a product over the threads, a strip of 16
// weight rows at a time (pack, unless nil, fills the strip's buffers with
// rows r0…r0+n-1) against every group of acts activation rows (8 or 16:
// tile writes their acts × 16 outputs), and writes y. A batch of decoded rows runs on
// team t when not nil (in four items of strips: its partner spins, and
// ParallelFor's helpers would wait for its core), else on ParallelFor.
func (m *QMatrix) mulTiles(t *Team, y []float32, M, acts int, beta float32, pack func(s *tileStrip, r0, n int), tile func(s *tileStrip, strip, g int, out []float32)) {
	groups := (M + acts - 1) / acts
	run := ParallelFor
	if t != nil {
		run = func(S, _ int, f func(lo, hi int)) {
			// four items, two a thread, as mulHalfDot: a 16-user decoding
			// step of the 180M model in Q8_0 (counts alternating in one
			// process) 38.2 ms with 32 items, 34.4–35.9 with 2, 4 or 8
			n := min(S, 4)
			t.For(n, func(_, i int) { f(i*S/n, (i+1)*S/n) })
		}
	}
	run(m.strips(), 1, func(lo, hi int) {
		s := tileStripPool.Get().(*tileStrip)
		defer tileStripPool.Put(s)
		var buf [16 * tileRows]float32
		out := buf[:acts*tileRows]
		for strip := lo; strip < hi; strip++ {
			r0 := strip * tileRows
			n := min(tileRows, m.Rows-r0)
			if pack != nil {
				pack(s, r0, n)
			}
			for g := range groups {
				tile(s, strip, g, out)
				for j := range min(acts, M-g*acts) {
					dst, o := y[(g*acts+j)*m.Rows+r0:][:n], out[j*tileRows:][:n]
					if beta == 0 {
						copy(dst, o)
						continue
					}
					addSIMD(dst, dst, o)
				}
			}
		}
		clearUpper() // this may run on a pool goroutine that runs scalar code next
	})
}

// grown is s resliced to n elements, reallocated when its capacity is short.
func grown[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// packTileActs quantizes the M rows of x (cols long) to Q8_0 blocks as
// quantizeActs does and lays them out for q8Tile16x8, on every thread when
// parallel; the rows that pad the last group of 8 are zero.
func packTileActs(x []float32, M, cols int, parallel bool) *tileActsQ8 {
	nb := cols / Q8Block
	groups := (M + tileActs - 1) / tileActs
	a := tileActsPool.Get().(*tileActsQ8)
	a.x = grown(a.x, groups*nb*tileActs*Q8Block)
	a.c, a.d = grown(a.c, groups*nb*tileActs), grown(a.d, groups*nb*tileActs)
	clear(a.x[(M/tileActs)*nb*tileActs*Q8Block:])
	clear(a.c[(M/tileActs)*nb*tileActs:])
	clear(a.d[(M/tileActs)*nb*tileActs:])
	quant := func(lo, hi int) {
		for r := lo * tileActs; r < min(M, hi*tileActs); r++ {
			g, j := r/tileActs, r%tileActs
			for b := range nb {
				k := (g*nb+b)*tileActs + j
				d, sum := quantizeBlockSIMD(a.x[k*Q8Block:][:Q8Block], x[r*cols+b*Q8Block:])
				a.d[k], a.c[k] = d, -128*sum
			}
		}
	}
	if parallel {
		ParallelFor(groups, 1, quant)
	} else {
		quant(0, groups)
	}
	return a
}

// quantizeBlockSIMD is QuantizeQ8Block on AVX-512 with the scale returned as
// float32 (its F16 value), and the sum of the 32 values written to q. The
// rounding is QuantizeQ8Block's, half away from zero, done exactly in
// float32: t = |x|·(1/d) < 2^24, so its whole part (truncation), the rest
// t − whole and the comparison of the rest with ½ are exact.
func quantizeBlockSIMD(q []int8, x []float32) (float32, int32) {
	x, q = x[:Q8Block], q[:Q8Block]
	abs := archsimd.BroadcastInt32x16(math.MaxInt32)
	v0, v1 := archsimd.LoadFloat32x16Slice(x[:16]), archsimd.LoadFloat32x16Slice(x[16:])
	a0, a1 := v0.AsInt32x16().And(abs).AsFloat32x16(), v1.AsInt32x16().And(abs).AsFloat32x16()
	m16 := a0.Max(a1)
	m8 := m16.GetLo().Max(m16.GetHi())
	m4 := m8.GetLo().Max(m8.GetHi())
	var l [4]float32
	m4.Store(&l)
	amax := max(l[0], l[1], l[2], l[3])
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	ids, half := archsimd.BroadcastFloat32x16(id), archsimd.BroadcastFloat32x16(0.5)
	one, zero := archsimd.BroadcastInt32x16(1), archsimd.Int32x16{}
	round := func(v, a archsimd.Float32x16) archsimd.Int32x16 {
		t := a.Mul(ids) // |v·id|: v·id is rounded as |v|·id is
		w := t.ConvertToInt32()
		w = w.Add(one).Merge(w, t.Sub(w.ConvertToFloat32()).GreaterEqual(half))
		return zero.Sub(w).Merge(w, v.Less(archsimd.Float32x16{}))
	}
	i0, i1 := round(v0, a0), round(v1, a1)
	i0.TruncateToInt8().Store((*[16]int8)(q[:16]))
	i1.TruncateToInt8().Store((*[16]int8)(q[16:]))
	s8 := i0.Add(i1)
	var sl [16]int32
	s8.Store(&sl)
	var sum int32
	for _, v := range sl {
		sum += v
	}
	return F16ToF32(F32ToF16(d)), sum
}

// bf16Tile16x16 and transpose16x16u32 are in qtile_amd64.s.
//
//go:noescape
func bf16Tile16x16(w *uint32, x *uint32, n int, out *float32)

// transpose16x16u32: see bf16Tile16x16.
//
//go:noescape
func transpose16x16u32(src *uint32, lds int, dst *uint32)
