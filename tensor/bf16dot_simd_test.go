//go:build goexperiment.simd && amd64

package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBF16Dot: a BF16 matrix times a batch of 7–32 activation rows
// (mulBF16Dot) is the product of the BF16 weights with the activations
// rounded to BF16, within float32 summation error (float64 reference over
// the same rounded values), for rows stored whole and in pieces, beta 0
// and 1, on a team and on the pool; its bits do not depend on the split or
// on the other rows of the batch (a row's sums are the same in a batch of
// 7 and of 13, through bf16dot4x4 and bf16dot4x1), and they are close to
// the tiles' (mulBF16Tiles), which round the activations the same way.
func TestBF16Dot(t *testing.T) {
	if !(level >= levelAVX512 && haveBF16) {
		t.Skip("the BF16 dot kernels need AVX512-BF16, which this CPU lacks")
	}
	team := NewTeam()
	defer team.Close()
	r := rand.New(rand.NewPCG(41, 42))
	for _, sh := range [][2]int{{8, 64}, {20, 96}, {44, 576}, {12, 4160}} {
		rows, cols := sh[0], sh[1]
		m, err := Quantize(BF16, randSlice(r, rows*cols), rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		if !bf16DotOK(m) {
			t.Fatalf("%d×%d: bf16DotOK false", rows, cols)
		}
		w := make([]float32, rows*cols)
		for o := range rows {
			m.Row(o, w[o*cols:(o+1)*cols])
		}
		const M = 13
		x := randSlice(r, M*cols)
		y0 := randSlice(r, M*rows)
		for _, beta := range []float32{0, 1} {
			want, mag := make([]float64, M*rows), make([]float64, M*rows)
			for i := range M {
				for o := range rows {
					var s, a float64
					for k := range cols {
						p := float64(BF16ToF32(F32ToBF16(x[i*cols+k]))) * float64(w[o*cols+k])
						s, a = s+p, a+math.Abs(p)
					}
					if beta == 1 {
						s += float64(y0[i*rows+o])
						a += math.Abs(float64(y0[i*rows+o]))
					}
					want[i*rows+o], mag[i*rows+o] = s, a
				}
			}
			onTeam, onPool := append([]float32(nil), y0...), append([]float32(nil), y0...)
			m.MulTOn(team, onTeam, x, M, beta)
			m.MulTOn(nil, onPool, x, M, beta)
			first := append([]float32(nil), y0[:7*rows]...)
			m.MulTOn(team, first, x, 7, beta)
			tiles := append([]float32(nil), y0...)
			m.mulBF16Tiles(tiles, x, M, beta)
			for i, v := range onTeam {
				if err := math.Abs(float64(v) - want[i]); err > float64(cols+2)*0x1p-24*mag[i] {
					t.Fatalf("%d×%d beta %g: y[%d] = %g, want %g (error %.3g)", rows, cols, beta, i, v, want[i], err)
				}
				if math.Float32bits(onPool[i]) != math.Float32bits(v) {
					t.Fatalf("%d×%d beta %g: y[%d] = %g on the pool, %g on the team", rows, cols, beta, i, onPool[i], v)
				}
				if i < len(first) && math.Float32bits(first[i]) != math.Float32bits(v) {
					t.Fatalf("%d×%d beta %g: y[%d] = %g in a batch of 7, %g in a batch of 13", rows, cols, beta, i, first[i], v)
				}
				if err := math.Abs(float64(tiles[i]) - float64(v)); err > 2*float64(cols+2)*0x1p-24*mag[i] {
					t.Fatalf("%d×%d beta %g: y[%d] = %g, the tiles give %g", rows, cols, beta, i, v, tiles[i])
				}
			}
		}
	}
}

// TestRoundBF16Row: roundBF16Row rounds as F32ToBF16 does, ties to even
// included, for a row that is not a multiple of 16 long.
func TestRoundBF16Row(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	row := randSlice(r, 37)
	for i := range row {
		if i%3 == 0 { // halfway between two BF16 values
			row[i] = math.Float32frombits(math.Float32bits(row[i])&^0xffff | 0x8000)
		}
	}
	dst := make([]uint16, len(row))
	roundBF16Row(dst, row)
	for i, v := range row {
		if dst[i] != F32ToBF16(v) {
			t.Fatalf("value %d (%g): %#x, F32ToBF16 gives %#x", i, v, dst[i], F32ToBF16(v))
		}
	}
}
