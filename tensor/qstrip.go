package tensor

import "encoding/binary"

// Q8_0 matrices in strips. Where AVX-512 VNNI runs (q8TilesOK), a Q8_0
// matrix is stored in the layout its VPDPBUSD kernels read instead of row
// after row: strips of 16 rows (the last padded with zero-scale rows), and
// in a strip, block by block (32 columns), 8 groups of 64 bytes — group g
// holds columns 4g…4g+3 of the 16 rows, each weight stored as w+128 (an
// unsigned byte, as VPDPBUSD multiplies) — then the block's 16 scales
// apart in sd, in F16 as GGUF stores them (34 bytes per 32 weights, Q8_0's
// own size; F32 scales made it 36, a decoded row's stream 6% longer). A
// decoded row's product then streams one strip after the other with a
// multiply-add instruction per 64 weights (q8Strip16x1),
// and a prompt's or a batch's tiles read the strips as they are, where a
// row-major matrix had to be repacked on every product: in serving 16 users
// that packing took more time than the tiles' arithmetic.

const (
	tileRows   = 16         // weight rows of a strip and a tile (one 512-bit vector of int32)
	tileActs   = 8          // activation rows of a tile
	stripBlock = 8 * 64     // bytes of a strip's block: 16 rows × 32 weights
	stripFlip  = 0x80808080 // w+128 on four bytes at once (a byte xor 0x80)
)

// strips is how many strips of 16 rows m has.
func (m *QMatrix) strips() int { return (m.Rows + tileRows - 1) / tileRows }

// newStrips allocates m's strips (zero scales: every value 0, padding
// rows included).
func (m *QMatrix) newStrips() {
	nb := m.Cols / Q8Block
	m.sq = MakeWeights[byte](m.strips() * nb * stripBlock)
	m.sd = make([]uint16, m.strips()*nb*tileRows)
}

// stripAt is where block b of row o lies: the offset of its first four
// weights in sq (the next four 64 bytes on) and of its scale in sd.
func (m *QMatrix) stripAt(o, b int) (w, d int) {
	k := o/tileRows*(m.Cols/Q8Block) + b
	return k*stripBlock + o%tileRows*4, k*tileRows + o%tileRows
}

// setStripBlock stores block b of row o: its 32 weights q and scale d (an
// F16 value: Q8_0's scales are).
func (m *QMatrix) setStripBlock(o, b int, q []int8, d float32) {
	w, k := m.stripAt(o, b)
	for g := range 8 {
		v := uint32(uint8(q[4*g])) | uint32(uint8(q[4*g+1]))<<8 | uint32(uint8(q[4*g+2]))<<16 | uint32(uint8(q[4*g+3]))<<24
		binary.LittleEndian.PutUint32(m.sq[w+g*64:], v^stripFlip)
	}
	m.sd[k] = F32ToF16(d)
}

// stripBlockWeights writes block b of row o's 32 weights into q and
// returns its scale.
func (m *QMatrix) stripBlockWeights(o, b int, q *[Q8Block]int8) float32 {
	w, k := m.stripAt(o, b)
	for g := range 8 {
		for j, v := range m.sq[w+g*64:][:4] {
			q[4*g+j] = int8(v ^ 0x80)
		}
	}
	return F16ToF32(m.sd[k])
}

// q8Values writes row o's weights into q and its block scales into d,
// whatever the layout.
func (m *QMatrix) q8Values(o int, q []int8, d []float32) {
	nb := m.Cols / Q8Block
	if m.sq == nil {
		for p := range m.pieces() {
			off, c0, n := m.piece(o, p)
			copy(q[c0:c0+n], m.q[off:])
			copy(d[c0/Q8Block:(c0+n)/Q8Block], m.d[off/Q8Block:])
		}
		return
	}
	for b := range nb {
		d[b] = m.stripBlockWeights(o, b, (*[Q8Block]int8)(q[b*Q8Block:]))
	}
}

// stripsFromRows stores row-major Q8_0 weights q and scales d in strips.
func (m *QMatrix) stripsFromRows(q []int8, d []float32) {
	m.newStrips()
	nb := m.Cols / Q8Block
	ParallelFor(m.Rows, max(1, (1<<15)/m.Cols), func(lo, hi int) {
		for o := lo; o < hi; o++ {
			for b := range nb {
				m.setStripBlock(o, b, q[o*m.Cols+b*Q8Block:][:Q8Block], d[o*nb+b])
			}
		}
	})
}

// mulStrips is MulTOn for a matrix in strips: many rows as tiles, a few
// rows strip by strip (team halves or ParallelFor items of whole strips).
func (m *QMatrix) mulStrips(t *Team, y, x []float32, M int, beta float32) {
	if M > qDirectRows && q8TilesOK() {
		if t != nil && M > TeamRows {
			t = nil
		}
		m.mulQ8Tiles(t, y, x, M, beta)
		return
	}
	a := quantizeActs(x, M, m.Cols)
	defer q8ActPool.Put(a)
	strips := func(lo, hi int) {
		if q8TilesOK() {
			q8StripsSIMD(m, y, a, M, lo, hi, beta)
		} else {
			q8StripsGo(m, y, a, M, lo, hi, beta)
		}
	}
	S := m.strips()
	if t != nil && M <= TeamRows {
		n := min(2, S)
		t.For(n, func(_, i int) { strips(i*S/n, (i+1)*S/n) })
		return
	}
	ParallelFor(S, max(1, (1<<15)/(tileRows*m.Cols)), strips)
}

// q8StripsGo computes the outputs of strips lo..hi-1 for every activation
// row (portable): per block the integer sum, scaled as the VNNI kernels
// scale it (the two scales' product times the sum, added block by block).
func q8StripsGo(m *QMatrix, y []float32, a *q8Acts, M, lo, hi int, beta float32) {
	nb := m.Cols / Q8Block
	for o := lo * tileRows; o < min(m.Rows, hi*tileRows); o++ {
		for r := range M {
			var s float32
			for b := range nb {
				var wq [Q8Block]int8
				wd := m.stripBlockWeights(o, b, &wq)
				var is int32
				for k, v := range a.s[(r*nb+b)*Q8Block:][:Q8Block] {
					is += int32(wq[k]) * int32(v)
				}
				s += float32(is) * (wd * a.d[r*nb+b])
			}
			if beta != 0 {
				s += y[r*m.Rows+o]
			}
			y[r*m.Rows+o] = s
		}
	}
}
