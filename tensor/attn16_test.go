package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestAttendT16: attention over keys and values stored as halves gives, at
// every level, the bits AttendT gives on the same halves widened (F16ToF32,
// the scalar reference) — for heads three at a time and alone, head sizes
// the kernels take (multiples of 8 above 8) and others, full blocks of 16
// positions and tails. Positions past n hold an infinity and NaN that must
// not count.
func TestAttendT16(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		for _, tc := range []struct{ nq, hs, ld, n int }{
			{3, 64, 448, 400}, {3, 64, 448, 7}, {3, 64, 448, 16}, {4, 64, 64, 45}, {1, 64, 32, 32},
			{7, 16, 48, 33}, {6, 24, 48, 48}, {2, 8, 512, 300}, {1, 8, 16, 1}, {2, 6, 32, 20},
		} {
			t.Run(fmt.Sprintf("nq%d_hs%d_ld%d_n%d", tc.nq, tc.hs, tc.ld, tc.n), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.hs)))
				half := func(n int) []uint16 {
					x := make([]uint16, n)
					for i := range x {
						x[i] = F32ToF16(float32(rng.NormFloat64()))
					}
					return x
				}
				q, k, v := make([]float32, tc.nq*tc.hs), half(tc.hs*tc.ld), half(tc.hs*tc.ld)
				for i := range q {
					q[i] = float32(rng.NormFloat64())
				}
				for d := range tc.hs {
					for p := tc.n; p < tc.ld; p++ {
						k[d*tc.ld+p], v[d*tc.ld+p] = 0x7c00, 0x7e00 // +Inf, NaN
					}
				}
				kw, vw := make([]float32, len(k)), make([]float32, len(v))
				for i := range k {
					kw[i], vw[i] = F16ToF32(k[i]), F16ToF32(v[i])
				}
				got, want := make([]float32, tc.nq*tc.hs), make([]float32, tc.nq*tc.hs)
				AttendT16(got, q, tc.nq, tc.hs, k, v, tc.ld, tc.n, 0.125, make([]float32, AttendT16Scratch(tc.nq, tc.hs, tc.n)))
				AttendT(want, q, tc.nq, tc.hs, kw, vw, tc.ld, tc.n, 0.125, make([]float32, AttendTScratch(tc.nq, tc.n)))
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) || math.IsNaN(float64(got[i])) {
						t.Fatalf("out[%d] = %v from halves, %v from the widened values", i, got[i], want[i])
					}
				}
			})
		}
	})
}

// TestAttendT16Scratch: AttendT16 asks for room to widen a head's keys and
// values beyond AttendT's scratch, and panics, naming itself, without it.
func TestAttendT16Scratch(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "tensor.AttendT16: att has") {
			t.Fatalf("AttendT16 with AttendT's scratch: %v", r)
		}
	}()
	k := make([]uint16, 8*32)
	AttendT16(make([]float32, 8), make([]float32, 8), 1, 8, k, k, 32, 17, 1, make([]float32, AttendTScratch(1, 17)))
}

// TestWidenF16: every one of the 65,536 halves, at every level and at every
// offset of a block of 16, widens to F16ToF32's value (NaNs to a NaN).
func TestWidenF16(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		src := make([]uint16, 1<<16)
		for i := range src {
			src[i] = uint16(i)
		}
		for _, off := range []int{0, 5} {
			dst := make([]float32, len(src)-off)
			WidenF16(dst, src[off:])
			for i, h := range src[off:] {
				want := F16ToF32(h)
				if got := dst[i]; math.Float32bits(got) != math.Float32bits(want) && !(math.IsNaN(float64(got)) && math.IsNaN(float64(want))) {
					t.Fatalf("half %#04x widened to %v (%#08x), want %v", h, got, math.Float32bits(got), want)
				}
			}
		}
	})
}

// TestNarrowF16 rounds as F32ToF16 inside the half range and holds what is
// beyond it at the largest finite half, at every level: hand-picked values
// (ties, subnormals, the range's edges) and 2^18 random bit patterns, at two
// offsets of a block of 16 (NaNs to a NaN).
func TestNarrowF16(t *testing.T) {
	want := []uint16{0, F32ToF16(-1.5), 0x7bff, 0x7bff, 0xfbff, 0x7bff, F32ToF16(1e-8), F32ToF16(3.14159)}
	forLevels(t, func(t *testing.T) {
		src := []float32{0, -1.5, 65504, 65520, -1e9, float32(math.Inf(1)), 1e-8, 3.14159}
		dst := make([]uint16, len(src))
		NarrowF16(dst, src)
		for i := range want {
			if dst[i] != want[i] {
				t.Errorf("NarrowF16(%v) = %#04x, want %#04x", src[i], dst[i], want[i])
			}
		}
		rng := rand.New(rand.NewPCG(4, 4))
		src = make([]float32, 1<<18)
		for i := range src {
			switch i % 4 {
			case 0: // any bits: NaNs, infinities, subnormals of both types
				src[i] = math.Float32frombits(rng.Uint32())
			case 1: // ties: a half's value plus half its last place
				h := F16ToF32(uint16(rng.IntN(0x7c00)))
				src[i] = math.Float32frombits(math.Float32bits(h) | 1<<12)
			default:
				src[i] = float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(40)-24)))
			}
		}
		for _, off := range []int{0, 3} {
			dst := make([]uint16, len(src)-off)
			NarrowF16(dst, src[off:])
			for i, x := range src[off:] {
				w := F32ToF16Held(x)
				if dst[i] != w && !(math.IsNaN(float64(x)) && F16ToF32(dst[i]) != F16ToF32(dst[i])) {
					t.Fatalf("NarrowF16(%v (%#08x)) = %#04x, want %#04x", x, math.Float32bits(x), dst[i], w)
				}
			}
		}
	})
}

// BenchmarkAttendT16_180M is BenchmarkAttendT180M with the keys and values
// stored as halves: half the bytes from memory.
func BenchmarkAttendT16_180M(b *testing.B) {
	const rows, layers, kvHeads, group, hs, n, ld = 16, 30, 3, 3, 64, 400, 448
	r := rand.New(rand.NewPCG(2, 7))
	k, v := make([][]uint16, rows*layers*kvHeads), make([][]uint16, rows*layers*kvHeads)
	for i := range k {
		k[i], v[i] = make([]uint16, hs*ld), make([]uint16, hs*ld)
		NarrowF16(k[i], randSlice(r, hs*ld))
		NarrowF16(v[i], randSlice(r, hs*ld))
	}
	q, out := randSlice(r, group*hs), make([]float32, group*hs)
	att := make([]float32, AttendT16Scratch(group, hs, n))
	for b.Loop() {
		for i := range k {
			AttendT16(out, q, group, hs, k[i], v[i], ld, n, 0.125, att)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1e3, "ms/step")
}
