//go:build goexperiment.simd && amd64

package tensor

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestQuantizeBlockSIMD: the 8-bit tiles' quantization of an activation block
// gives QuantizeQ8Block's values and scale exactly — halves rounded away from
// zero included (blocks scaled so that the largest value is 127 make v·(1/d)
// land on k + ½) — and the sum of the values.
func TestQuantizeBlockSIMD(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	var x [Q8Block]float32
	for n := range 20000 {
		scale := float32(r.NormFloat64() * 3)
		for i := range x {
			switch n % 4 {
			case 0: // halves: the largest value is 127 (d = 1)
				x[i] = float32(r.IntN(254)-127) + 0.5*float32(r.IntN(2))
			case 1:
				x[i] = 0
			default:
				x[i] = float32(r.NormFloat64()) * scale
			}
		}
		if n%4 == 0 {
			x[r.IntN(Q8Block)] = 127
		}
		if n%4 == 1 && n%8 == 1 {
			x[3] = -1e-3
		}
		var want, got [Q8Block]int8
		wd := F16ToF32(QuantizeQ8Block(want[:], x[:]))
		gd, sum := quantizeBlockSIMD(got[:], x[:])
		var wsum int32
		for _, v := range want {
			wsum += int32(v)
		}
		if got != want || gd != wd || sum != wsum {
			t.Fatalf("block %d %v:\nvalues %v scale %v sum %d,\nwant   %v scale %v sum %d", n, x, got, gd, sum, want, wd, wsum)
		}
	}
}

// TestPackBF16Row: the BF16 tiles' rounding of an activation row is
// F32ToBF16's, ties to even included, with the pairs of columns placed at the
// tile's stride, the row's tail (not a multiple of 16) included.
func TestPackBF16Row(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, cols := range []int{4, 16, 36, 576} {
		row := make([]float32, cols)
		for i := range row {
			row[i] = float32(r.NormFloat64())
			if i%3 == 0 { // halfway between two BF16 values: ties go to even
				row[i] = math.Float32frombits(math.Float32bits(row[i])&^0xffff | 0x8000)
			}
		}
		row[1] = 1e-40    // a denormal
		const stride = 16 // mulBF16Tiles' activation rows a tile
		dst := make([]uint32, cols/2*stride)
		packBF16Row(dst, row, stride)
		for p := range cols / 2 {
			want := uint32(F32ToBF16(row[2*p])) | uint32(F32ToBF16(row[2*p+1]))<<16
			if dst[p*stride] != want {
				t.Fatalf("%d columns, pair %d: %#08x, want %#08x", cols, p, dst[p*stride], want)
			}
		}
	}
}

// TestQ8Strips: a Q8_0 matrix in strips (where AVX-512 VNNI runs) gives
// each activation row the same bits alone (the one-row strip kernel), with
// a few others and in a batch of tiles (on the threads or a team), so a sequence decodes alike alone
// and batched; and the portable kernel over strips (a lower level) keeps
// Q8_0's definition. Rows that fill no whole strip, one strip, long rows.
func TestQ8Strips(t *testing.T) {
	if !q8TilesOK() {
		t.Skip("Q8_0 strips need AVX-512 VNNI, which this CPU lacks")
	}
	r := rand.New(rand.NewPCG(31, 32))
	for _, sh := range [][2]int{{5, 64}, {16, 96}, {40, 576}, {33, 4160}} {
		rows, cols := sh[0], sh[1]
		m, err := Quantize(Q8_0, randSlice(r, rows*cols), rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		if m.sq == nil || m.q != nil {
			t.Fatalf("%d×%d: not stored in strips", rows, cols)
		}
		const M = 11 // > qDirectRows: tiles
		x := randSlice(r, M*cols)
		batch := make([]float32, M*rows)
		m.MulT(batch, x, M, 0)
		onTeam := make([]float32, M*rows)
		team := NewTeam()
		m.MulTOn(team, onTeam, x, M, 0)
		team.Close()
		if !slices.Equal(onTeam, batch) {
			t.Fatalf("%d×%d: the batch on a team differs", rows, cols)
		}
		few := make([]float32, 3*rows)
		m.MulT(few, x, 3, 0)
		alone := make([]float32, rows)
		for j := range M {
			m.MulT(alone, x[j*cols:(j+1)*cols], 1, 0)
			for o, v := range alone {
				if v != batch[j*rows+o] || j < 3 && v != few[j*rows+o] {
					t.Fatalf("%d×%d row %d out %d: alone %v, in a batch %v", rows, cols, j, o, v, batch[j*rows+o])
				}
			}
		}
		func() {
			defer func(l int) { level = l }(level)
			level = levelGo
			for _, M := range []int{1, 3, 9} {
				checkMulT(t, m, x[:M*cols], randSlice(r, M*rows), M, 1)
			}
		}()
	}
}

// TestPackBF16Strip: a strip of a BF16 matrix packs, for each pair of
// columns, the 16 rows' two values (rows after the matrix's last zero):
// whole strips through the 16 × 16 transposes with a remainder of pairs,
// rows in pieces, and a partial last strip.
func TestPackBF16Strip(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	for _, sh := range [][2]int{{16, 64}, {37, 68}, {32, 4160}, {20, 576}} {
		rows, cols := sh[0], sh[1]
		m, err := Quantize(BF16, randSlice(r, rows*cols), rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		w := make([]float32, rows*cols)
		for o := range rows {
			m.Row(o, w[o*cols:(o+1)*cols])
		}
		var s tileStrip
		for r0 := 0; r0 < rows; r0 += tileRows {
			n := min(tileRows, rows-r0)
			m.packBF16Strip(&s, r0, n)
			for p := range cols / 2 {
				for i := range tileRows {
					var want uint32
					if i < n {
						o := (r0 + i) * cols
						want = uint32(F32ToBF16(w[o+2*p])) | uint32(F32ToBF16(w[o+2*p+1]))<<16
					}
					if got := s.h[p*tileRows+i]; got != want {
						t.Fatalf("%d×%d strip at %d: pair %d of row %d = %#x, want %#x", rows, cols, r0, p, i, got, want)
					}
				}
			}
		}
	}
}
