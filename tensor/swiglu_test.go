package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSwiGLUBits: on every level, SwiGLU and SwiGLUBackward give the bits
// of plain loops over the same level's ExpSub (the exponentials' last bit
// may differ between levels; nothing else does), for lengths with and
// without a tail past the last eight and inputs from far negative (exp(−z)
// overflows) to far positive; and they are silu(h1)·h3 and its gradients
// (float64 formulas, to 1e-5).
func TestSwiGLUBits(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 7, 8, 29, 1536 * 3} {
		h1, h3, dout := randSlice(r, n), randSlice(r, n), randSlice(r, n)
		for i := range h1 {
			h1[i] *= float32([]float64{1, 4, 40, 120}[i%4])
		}
		forLevels(t, func(t *testing.T) {
			out, dh1, dh3 := make([]float32, n), make([]float32, n), make([]float32, n)
			SwiGLU(out, h1, h3)
			SwiGLUBackward(dh1, dh3, dout, h1, h3)
			e := make([]float32, n)
			for i, z := range h1 {
				e[i] = -z
			}
			ExpSub(e, e, 0)
			for i, z := range h1 {
				sg := 1 / (1 + e[i])
				want := [3]float32{z / (1 + e[i]) * h3[i], dout[i] * h3[i] * sg * (1 + float32(z*(1-sg))), dout[i] * z * sg}
				s := 1 / (1 + math.Exp(-float64(z)))
				exact := [3]float64{float64(z) * s * float64(h3[i]), float64(dout[i]) * float64(h3[i]) * s * (1 + float64(z)*(1-s)), float64(dout[i]) * float64(z) * s}
				for k, g := range [3]float32{out[i], dh1[i], dh3[i]} {
					if math.Float32bits(g) != math.Float32bits(want[k]) {
						t.Fatalf("n=%d [%d] z=%v: result %d is %v, the plain loop's %v", n, i, z, k, g, want[k])
					}
					if d := math.Abs(float64(g) - exact[k]); d > 1e-5*math.Max(1, math.Abs(exact[k])) {
						t.Fatalf("n=%d [%d] z=%v: result %d is %v, want %v", n, i, z, k, g, exact[k])
					}
				}
			}
		})
	}
}

// TestSoftmaxBackwardBits: SoftmaxBackward gives, on every level, the bits
// of Dot, Mul, Axpy and Scale run one after the other (the attention
// backward's four passes it replaces), for lengths with and without a
// partial eight; and d − Σ p∘d times p and scale (float64, to 1e-5).
func TestSoftmaxBackwardBits(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	forLevels(t, func(t *testing.T) {
		for _, n := range []int{1, 5, 8, 16, 63, 257} {
			p, d := randSlice(r, n), randSlice(r, n)
			for i := range p {
				p[i] = float32(math.Abs(float64(p[i]))) / float32(n)
			}
			want := append([]float32(nil), d...)
			dot := Dot(p, want)
			Mul(want, p, want)
			Axpy(-dot, p, want)
			Scale(0.125, want)
			got := append([]float32(nil), d...)
			SoftmaxBackward(got, p, 0.125)
			var exactDot float64
			for i := range p {
				exactDot += float64(p[i]) * float64(d[i])
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n=%d [%d]: %v, the four passes give %v", n, i, got[i], want[i])
				}
				exact := 0.125 * float64(p[i]) * (float64(d[i]) - exactDot)
				if math.Abs(float64(got[i])-exact) > 1e-5 {
					t.Fatalf("n=%d [%d]: %v, want %v", n, i, got[i], exact)
				}
			}
		}
	})
}
