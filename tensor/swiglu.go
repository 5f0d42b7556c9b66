package tensor

// SwiGLU sets out[i] = silu(h1[i])·h3[i] = h1[i] / (1 + exp(−h1[i])) · h3[i]
// (Shazeer 2020), the exponentials ExpSub's and the quotient and product in
// that order, so that every level gives the same bits.
func SwiGLU(out, h1, h3 []float32) {
	sameLen("SwiGLU", len(out), h1, h3)
	negate(out, h1)
	ExpSub(out, out, 0)
	i := 0
	if level > levelGo {
		i = swigluSIMD(out, h1, h3)
		clearUpper()
	}
	for ; i < len(out); i++ {
		out[i] = h1[i] / (1 + out[i]) * h3[i]
	}
}

// SwiGLUBackward sets, from dout, the gradients of SwiGLU's inputs:
// dh3 = dout·silu(h1) and dh1 = dout·h3·silu′(h1), with
// silu′(z) = σ(z)·(1 + z·(1 − σ(z))); the same bits on every level.
func SwiGLUBackward(dh1, dh3, dout, h1, h3 []float32) {
	sameLen("SwiGLUBackward", len(dh1), dh3, dout, h1, h3)
	negate(dh1, h1)
	ExpSub(dh1, dh1, 0)
	i := 0
	if level > levelGo {
		i = swigluBackSIMD(dh1, dh3, dout, h1, h3)
		clearUpper()
	}
	for ; i < len(dh1); i++ {
		z := h1[i]
		sg := 1 / (1 + dh1[i])
		dh3[i] = dout[i] * z * sg
		// the conversion keeps z·(1−σ) rounded on its own (no fused
		// multiply-add), as the vector loop computes it
		dh1[i] = dout[i] * h3[i] * sg * (1 + float32(z*(1-sg)))
	}
}

// negate sets dst[i] = −x[i].
func negate(dst, x []float32) {
	i := 0
	if level > levelGo {
		i = negateSIMD(dst, x)
		clearUpper()
	}
	for ; i < len(dst); i++ {
		dst[i] = -x[i]
	}
}

// SoftmaxBackward sets d = scale · p ∘ (d − Σᵢ pᵢdᵢ): from the gradient d of
// a softmax's output p, the gradient of its scaled input, in one pass after
// the dot product. Its bits are those of Dot, Mul, Axpy and Scale run one
// after the other on the same level.
func SoftmaxBackward(d, p []float32, scale float32) {
	sameLen("SoftmaxBackward", len(d), p)
	dot := Dot(p, d)
	i := 0
	if level > levelGo {
		i = softmaxBackSIMD(d, p, -dot, scale)
		clearUpper()
	}
	for ; i < len(d); i++ {
		t := float32(p[i] * d[i])
		t += float32(-dot * p[i]) // rounded on its own, as Axpy's plain loop rounds it
		d[i] = t * scale
	}
}
