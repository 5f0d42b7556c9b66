package tensor

import "fmt"

// Kernels of causal attention for training with head size 8, on keys and
// values stored transposed per head: kT[d*ld+j] is channel d of key j
// (ld ≥ AttendScratch(T), padding zero). A row of probabilities p has
// AttendScratch(n) values for n visible keys: the probabilities, then zeros.
// The math (Vaswani et al. 2017, eq. 1, and its derivative):
//
//	forward   P = softmax(scale·q·Kᵀ) (masked keys 0);  o = P·V
//	backward  dP = dO·Vᵀ;  dS = scale·P∘(dP − rowsum(P∘dP));  dQ = dS·K;
//	          dK += dSᵀ·Q;  dV += Pᵀ·dO
//
// The SIMD versions (AVX-512) put 16 keys in a vector, so a head size of 8
// costs no horizontal work except once per row; the portable versions are
// the same loops on scalars.

// AttnRowsHS is the head size the row kernels handle.
const AttnRowsHS = 8

// AttnRowsFast reports whether the row kernels run on SIMD instructions,
// which is when they beat blocked matrix products for attention.
func AttnRowsFast() bool { return level >= levelAVX512 }

func checkAttnRow(op string, p []float32, kT, vT []float32, ld, n int) {
	if n < 1 || AttendScratch(n) > ld || len(p) < AttendScratch(n) || len(kT) < 7*ld+n || len(vT) < 7*ld+n {
		panic(fmt.Sprintf("tensor.%s: %d keys, stride %d, p %d, kT %d, vT %d values", op, n, ld, len(p), len(kT), len(vT)))
	}
}

// AttnRowForward: one query row q (8) over keys [0,n) except the masked
// range [ma,mb): p[:AttendScratch(n)] receives the probabilities (0 where
// masked and past n) and out[:8] the attended values. scr (AttendScratch(n)
// values) holds the scores, so that p, a row of a large matrix, is written
// once.
func AttnRowForward(p, scr, out, q, kT, vT []float32, ld, n, ma, mb int, scale float32) {
	checkAttnRow("AttnRowForward", p, kT, vT, ld, n)
	if len(scr) < AttendScratch(n) {
		panic(fmt.Sprintf("tensor.AttnRowForward: scratch has %d values, want %d", len(scr), AttendScratch(n)))
	}
	if ma < 0 || ma > mb || mb >= n {
		panic(fmt.Sprintf("tensor.AttnRowForward: masked range [%d,%d) of %d keys", ma, mb, n))
	}
	if level >= levelAVX512 {
		attnRowForwardSIMD(p, scr, out[:8], q[:8], kT, vT, ld, n, ma, mb, scale)
		clearUpper()
		return
	}
	np := AttendScratch(n)
	p = p[:np]
	for j := range p {
		p[j] = 0
		if j < n && (j < ma || j >= mb) {
			var s float32
			for d := 0; d < 8; d++ {
				s += q[d] * kT[d*ld+j]
			}
			p[j] = s * scale
		}
	}
	// softmax over the visible keys: masked entries are exactly 0 after it
	mx := negInf
	for j := 0; j < n; j++ {
		if j < ma || j >= mb {
			mx = max(mx, p[j])
		}
	}
	var sum float32
	for j := 0; j < n; j++ {
		if j < ma || j >= mb {
			p[j] = expf(p[j] - mx)
			sum += p[j]
		}
	}
	inv := 1 / sum
	for d := 0; d < 8; d++ {
		out[d] = 0
	}
	for j := 0; j < n; j++ {
		p[j] *= inv
		for d := 0; d < 8; d++ {
			out[d] += p[j] * vT[d*ld+j]
		}
	}
}

// AttnRowBackward: for one query row with probabilities p over n keys and
// output gradient do (8), writes ds[:AttendScratch(n)] (the score gradient,
// scale included, zero past n) and dq[:8].
func AttnRowBackward(ds, dq, p, do, kT, vT []float32, ld, n int, scale float32) {
	checkAttnRow("AttnRowBackward", p, kT, vT, ld, n)
	np := AttendScratch(n)
	if len(ds) < np {
		panic(fmt.Sprintf("tensor.AttnRowBackward: ds has %d values, want %d", len(ds), np))
	}
	if level >= levelAVX512 {
		attnRowBackwardSIMD(ds[:np], dq[:8], p[:np], do[:8], kT, vT, ld, n, scale)
		clearUpper()
		return
	}
	var dot float32
	for j := 0; j < np; j++ {
		var s float32
		if j < n {
			for d := 0; d < 8; d++ {
				s += do[d] * vT[d*ld+j]
			}
		}
		ds[j] = s
		dot += p[j] * s
	}
	for d := 0; d < 8; d++ {
		dq[d] = 0
	}
	for j := 0; j < np; j++ {
		ds[j] = scale * p[j] * (ds[j] - dot)
		if j < n {
			for d := 0; d < 8; d++ {
				dq[d] += ds[j] * kT[d*ld+j]
			}
		}
	}
}

// AttnColsAccum adds the key-side gradient of T causal rows: for each key j,
// dT[d*ld+j] += Σ_{t ≥ j} w[t*ldw+j] · g[t*ldg+d], with w the (T, ldw)
// rows of probabilities (for dV, g = dO) or of score gradients (for dK,
// g = Q), each row t valid up to AttendScratch(t+1) and zero past t.
func AttnColsAccum(dT []float32, ld int, w []float32, ldw int, g []float32, ldg, T int) {
	tp := AttendScratch(T)
	if T < 1 || ld < tp || ldw < tp || len(dT) < 7*ld+tp || len(w) < (T-1)*ldw+tp || len(g) < (T-1)*ldg+8 {
		panic(fmt.Sprintf("tensor.AttnColsAccum: T %d, ld %d, ldw %d, dT %d, w %d, g %d values", T, ld, ldw, len(dT), len(w), len(g)))
	}
	if level >= levelAVX512 {
		attnColsAccumSIMD(dT, ld, w, ldw, g, ldg, T)
		clearUpper()
		return
	}
	for t := 0; t < T; t++ {
		wt := w[t*ldw : t*ldw+t+1]
		for d := 0; d < 8; d++ {
			gd := g[t*ldg+d]
			row := dT[d*ld : d*ld+t+1]
			for j, x := range wt {
				row[j] += x * gd
			}
		}
	}
}
