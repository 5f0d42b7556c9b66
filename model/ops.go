package model

import (
	"math"

	"fspo/tensor"
)

// Each op's forward and backward side by side. Shapes: M rows of width n.

// rmsnormForward: x (M,n), g (n) -> out (M,n); rstd (M) keeps 1/rms for backward.
// out = x / sqrt(mean(x²) + eps) * g   (Zhang & Sennrich 2019)
func rmsnormForward(out, rstd, x, g []float32, n int, eps float32) {
	for r := 0; r*n < len(x); r++ {
		xr := x[r*n : (r+1)*n]
		s := float32(1 / math.Sqrt(float64(tensor.SumSquares(xr)/float32(n)+eps)))
		if rstd != nil {
			rstd[r] = s
		}
		or := out[r*n : (r+1)*n]
		tensor.Mul(or, xr, g)
		tensor.Scale(s, or)
	}
}

// rmsnormBackward: given dout (M,n), adds to dx (M,n) and dg (n).
// dx = s·(dout∘g) − x·s³/n·Σ(dout∘g∘x);  dg = Σ_rows dout∘x·s
func rmsnormBackward(dx, dg, dout, x, g, rstd []float32, n int) {
	tmp := make([]float32, n)
	for r := 0; r*n < len(x); r++ {
		xr, dr, dxr := x[r*n:(r+1)*n], dout[r*n:(r+1)*n], dx[r*n:(r+1)*n]
		s := rstd[r]
		tensor.Mul(tmp, dr, g)
		c := tensor.Dot(tmp, xr) * s * s * s / float32(n)
		tensor.Axpy(s, tmp, dxr)
		tensor.Axpy(-c, xr, dxr)
		tensor.Mul(tmp, dr, xr)
		tensor.Axpy(s, tmp, dg)
	}
}

// ropeForward rotates adjacent pairs (2i, 2i+1) within each head of x (M, width)
// by the angle of each row's position (Su et al. 2021, RoFormer eq. 34).
func (m *Model) ropeForward(x []float32, width int, pos []int32) { m.rope(x, width, pos, 1) }

// ropeBackward applies the transposed (inverse) rotation to a gradient in place.
func (m *Model) ropeBackward(dx []float32, width int, pos []int32) { m.rope(dx, width, pos, -1) }

// rope rotates by each row's angle (sign 1) or by its negative (sign −1:
// the transposed rotation; the sine's sign flip is exact).
func (m *Model) rope(x []float32, width int, pos []int32, sign float32) {
	hs := m.Config.HeadSize()
	half := hs / 2
	for r, p := range pos {
		cs, sn := m.ropeCos[int(p)*half:int(p+1)*half], m.ropeSin[int(p)*half:int(p+1)*half]
		row := x[r*width : (r+1)*width]
		for h := 0; h < width; h += hs {
			v := row[h : h+hs]
			for i := 0; i < half; i++ {
				a, b, s := v[2*i], v[2*i+1], sign*sn[i]
				v[2*i] = a*cs[i] - b*s
				v[2*i+1] = a*s + b*cs[i]
			}
		}
	}
}

// logSoftmaxAt returns log softmax(logits)[target] and the log-sum-exp;
// scratch (len(logits)) receives exp(logits − max).
func logSoftmaxAt(logits, scratch []float32, target int) (logp, lse float32) {
	mx := tensor.Max(logits)
	sum := tensor.ExpSub(scratch, logits, mx)
	lse = mx + float32(math.Log(float64(sum)))
	return logits[target] - lse, lse
}
