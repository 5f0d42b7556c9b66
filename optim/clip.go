package optim

import (
	"math"

	"fspo/tensor"
)

// GradNorm is the global L2 norm over all gradients, accumulated in float64
// in a fixed order whatever the number of threads: each tensor is cut into
// blocks of normBlock values, a block's squares are summed in four running
// sums (value i into sum i mod 4, then (s0+s1)+(s2+s3)), the blocks run in
// parallel, and their sums are added in order.
func GradNorm(grads []tensor.Tensor) float64 {
	blocks := gradBlocks(grads)
	sums := make([]float64, len(blocks))
	tensor.ParallelFor(len(blocks), 1, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			sums[b] = sumSquares(blocks[b])
		}
	})
	var sum float64
	for _, s := range sums {
		sum += s
	}
	return math.Sqrt(sum)
}

// normBlock is how many values of a gradient one block of GradNorm (and of
// the clipping scale) holds.
const normBlock = 1 << 16

// gradBlocks cuts grads into blocks of at most normBlock values, in order.
func gradBlocks(grads []tensor.Tensor) [][]float32 {
	var blocks [][]float32
	for _, g := range grads {
		for lo := 0; lo < len(g.Data); lo += normBlock {
			blocks = append(blocks, g.Data[lo:min(lo+normBlock, len(g.Data))])
		}
	}
	return blocks
}

// sumSquares is Σ x² in float64 (each square exact), in four running sums.
func sumSquares(d []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(d); i += 4 {
		x0, x1, x2, x3 := float64(d[i]), float64(d[i+1]), float64(d[i+2]), float64(d[i+3])
		s0 += x0 * x0
		s1 += x1 * x1
		s2 += x2 * x2
		s3 += x3 * x3
	}
	for j, v := range d[i:] {
		x := float64(v)
		switch j {
		case 0:
			s0 += x * x
		case 1:
			s1 += x * x
		default:
			s2 += x * x
		}
	}
	return (s0 + s1) + (s2 + s3)
}

// ClipGradNorm rescales grads in place so that their global L2 norm is at
// most maxNorm and returns the norm before clipping, following PyTorch's
// torch.nn.utils.clip_grad_norm_: coef = maxNorm / (norm + 1e-6), and the
// gradients are multiplied by coef when coef < 1. The norm is accumulated in
// float64 (PyTorch accumulates in float32) and coef is rounded to float32.
//
// maxNorm <= 0 (or NaN) disables clipping: the norm is returned and grads are
// untouched. A non-finite norm also leaves grads untouched (PyTorch would
// turn them into NaN); the caller should check the returned norm and skip
// the step.
func ClipGradNorm(grads []tensor.Tensor, maxNorm float32) (norm float32) {
	n := GradNorm(grads)
	if !(maxNorm > 0) || math.IsNaN(n) || math.IsInf(n, 0) {
		return float32(n)
	}
	coef := float64(maxNorm) / (n + 1e-6)
	if coef < 1 {
		c := float32(coef)
		blocks := gradBlocks(grads)
		tensor.ParallelFor(len(blocks), 1, func(lo, hi int) {
			for _, d := range blocks[lo:hi] {
				tensor.Scale(c, d) // one product a value: the plain loop's bits
			}
		})
	}
	return float32(n)
}
