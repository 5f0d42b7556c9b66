//go:build goexperiment.simd && amd64

package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestHalfDot: a BF16 or F16 matrix times a batch of 7–32 activation rows
// (mulHalfDot) is, within float32 summation error (float64 reference), the
// product of the stored weights with the activations — rounded to BF16 for
// a BF16 matrix — for rows stored whole and (BF16) in pieces, beta 0 and 1,
// on a team and on the pool; its bits do not depend on the split or on the
// other rows of the batch (a row's sums are the same in a batch of 7 and of
// 13, through the 4×4 and 4×1 kernels). For F16 they are the bits of the
// panels' product where its Gemm takes dot products (at least 64 rows and
// columns: dot4x4 over the widened rows); for BF16 close to the tiles'
// (mulBF16Tiles), which round the activations the same way.
func TestHalfDot(t *testing.T) {
	if level < levelAVX512 {
		t.Skip("the half-precision dot kernels need AVX-512, which this CPU lacks")
	}
	team := NewTeam()
	defer team.Close()
	r := rand.New(rand.NewPCG(41, 42))
	for _, dt := range []DType{BF16, F16} {
		if dt == BF16 && !haveBF16 {
			t.Log("BF16 skipped: this CPU lacks AVX512-BF16")
			continue
		}
		for _, sh := range [][2]int{{8, 64}, {20, 96}, {68, 576}, {12, 4160}} {
			rows, cols := sh[0], sh[1]
			m, err := Quantize(dt, randSlice(r, rows*cols), rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			if want := dt == BF16 || m.pieces() == 1; halfDotOK(m) != want {
				t.Fatalf("%v %d×%d: halfDotOK %v", dt, rows, cols, !want)
			}
			if !halfDotOK(m) {
				continue // F16 rows in pieces: the panels
			}
			checkHalfDot(t, team, r, m)
		}
	}
}

func checkHalfDot(t *testing.T, team *Team, r *rand.Rand, m *QMatrix) {
	rows, cols := m.Rows, m.Cols
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
					xv := x[i*cols+k]
					if m.DType == BF16 {
						xv = BF16ToF32(F32ToBF16(xv))
					}
					p := float64(xv) * float64(w[o*cols+k])
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
		other := append([]float32(nil), y0...)
		if m.DType == BF16 {
			m.mulBF16Tiles(other, x, M, beta)
		} else {
			m.mulPanels(other, x, M, beta)
		}
		name := fmt.Sprintf("%v %d×%d beta %g", m.DType, rows, cols, beta)
		for i, v := range onTeam {
			if err := math.Abs(float64(v) - want[i]); err > float64(cols+2)*0x1p-24*mag[i] {
				t.Fatalf("%s: y[%d] = %g, want %g (error %.3g)", name, i, v, want[i], err)
			}
			if math.Float32bits(onPool[i]) != math.Float32bits(v) {
				t.Fatalf("%s: y[%d] = %g on the pool, %g on the team", name, i, onPool[i], v)
			}
			if i < len(first) && math.Float32bits(first[i]) != math.Float32bits(v) {
				t.Fatalf("%s: y[%d] = %g in a batch of 7, %g in a batch of 13", name, i, first[i], v)
			}
			if m.DType == F16 && rows >= 64 && cols >= 64 && math.Float32bits(other[i]) != math.Float32bits(v) {
				t.Fatalf("%s: y[%d] = %g, the panels give %g", name, i, v, other[i])
			}
			if err := math.Abs(float64(other[i]) - float64(v)); err > 2*float64(cols+2)*0x1p-24*mag[i] {
				t.Fatalf("%s: y[%d] = %g, the tiles give %g", name, i, v, other[i])
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
