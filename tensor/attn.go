package tensor

import (
	"fmt"
	"math"
)

// AttendT is the attention of one decoding position: nq query heads that
// share one key/value head (grouped-query attention, Ainslie et al. 2023)
// attend over n cached positions whose keys and values are stored
// transposed, channel-major: k[d*ld+p] is channel d of position p's key.
//
//	q (nq, hs), k and v (hs rows of stride ld, n ≤ ld positions) -> out (nq, hs)
//	out[h][d] = Σ_p softmax_p(scale · q[h]·k_p) · v_p[d]   (Vaswani et al. 2017, eq. 1)
//
// att is scratch of at least AttendTScratch(nq, n) values. With AVX-512 and
// a head size that is a multiple of 8, the scores of 8 channels are formed in
// registers in one pass over the keys and the weighted sum of values in one
// pass over att, instead of one pass per channel; with a head size above 8,
// three heads at a time share each pass, the same values as one at a time.
func AttendT(out, q []float32, nq, hs int, k, v []float32, ld, n int, scale float32, att []float32) {
	checkAttend("AttendT", out, q, nq, hs, len(k), len(v), ld, n, len(att), AttendTScratch(nq, n))
	if level >= levelAVX512 && hs%8 == 0 {
		if hs > 8 {
			attendHeads(out, q, nq, hs, k, v, ld, n, scale, att)
		} else {
			for h := range nq {
				attendHead8SIMD(out[h*8:(h+1)*8], q[h*8:(h+1)*8], k, v, ld, n, scale, att)
			}
		}
		clearUpper()
		return
	}
	for h := 0; h < nq; h++ {
		attendHead(out[h*hs:(h+1)*hs], q[h*hs:(h+1)*hs], k, v, ld, n, scale, att[:n])
	}
}

// attendHeads is AttendT's AVX-512 path for a head size that is a multiple
// of 8 above 8, keys and values in float32 or halves: three query heads at a
// time over each pass of the keys and values, then the rest one by one.
func attendHeads[T kvValue](out, q []float32, nq, hs int, k, v []T, ld, n int, scale float32, att []float32) {
	h := 0
	for ; h+3 <= nq; h += 3 {
		attend3SIMD(out[h*hs:(h+3)*hs], q[h*hs:(h+3)*hs], hs, k, v, ld, n, scale, att)
	}
	for ; h < nq; h++ {
		attendHeadSIMD(out[h*hs:(h+1)*hs], q[h*hs:(h+1)*hs], k, v, ld, n, scale, att)
	}
}

// checkAttend panics, naming the function, unless the slices' lengths fit
// nq heads of size hs over n positions with a stride of ld.
func checkAttend(name string, out, q []float32, nq, hs, lenK, lenV, ld, n, lenAtt, scratch int) {
	switch {
	case n < 1 || n > ld:
		panic(fmt.Sprintf("tensor.%s: %d positions with a stride of %d", name, n, ld))
	case len(q) < nq*hs || len(out) < nq*hs:
		panic(fmt.Sprintf("tensor.%s: q has %d and out %d values, want %d", name, len(q), len(out), nq*hs))
	case lenK < (hs-1)*ld+n || lenV < (hs-1)*ld+n:
		panic(fmt.Sprintf("tensor.%s: k has %d and v %d values, want %d", name, lenK, lenV, (hs-1)*ld+n))
	case lenAtt < scratch:
		panic(fmt.Sprintf("tensor.%s: att has %d values, want %d", name, lenAtt, scratch))
	}
}

// AttendScratch is n positions' scores rounded up to a multiple of 16.
func AttendScratch(n int) int { return (n + 15) &^ 15 }

// AttendTScratch is the scratch AttendT needs for nq heads and n positions:
// the scores of up to three heads at a time.
func AttendTScratch(nq, n int) int { return min(max(nq, 1), 3) * AttendScratch(n) }

// attendHead is AttendT for one head with the vector ops: scores by one AXPY
// per channel, weighted values by one dot product per channel.
func attendHead(out, q, k, v []float32, ld, n int, scale float32, att []float32) {
	clear(att)
	for d := range q {
		Axpy(q[d]*scale, k[d*ld:d*ld+n], att)
	}
	inv := 1 / ExpSub(att, att, Max(att))
	for d := range out {
		out[d] = Dot(att, v[d*ld:d*ld+n]) * inv
	}
}

var negInf = float32(math.Inf(-1))
