package optim

import (
	"math"

	"fspo/tensor"
)

// GradNorm is the global L2 norm over all gradients, accumulated in float64.
func GradNorm(grads []tensor.Tensor) float64 {
	var sum float64
	for _, g := range grads {
		for _, v := range g.Data {
			x := float64(v)
			sum += x * x
		}
	}
	return math.Sqrt(sum)
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
		for _, g := range grads {
			d := g.Data
			for i := range d {
				d[i] *= c
			}
		}
	}
	return float32(n)
}
