package tensor

import (
	"fmt"
	"math"
)

// Vector ops on float32 slices. Length mismatches are programmer errors and
// panic naming the op. Results of reductions depend on the summation order,
// which differs between the SIMD and portable paths (within float32 rounding).

func sameLen(op string, n int, s ...[]float32) {
	for _, v := range s {
		if len(v) != n {
			panic(fmt.Sprintf("tensor.%s: lengths differ (%d and %d)", op, n, len(v)))
		}
	}
}

// Dot returns sum_i a[i]*b[i].
func Dot(a, b []float32) float32 {
	sameLen("Dot", len(a), b)
	if level > levelGo {
		return cleared(dotSIMD(a, b))
	}
	return dotGo(a, b)
}

// Axpy sets y += alpha*x.
func Axpy(alpha float32, x, y []float32) {
	sameLen("Axpy", len(x), y)
	if level > levelGo {
		axpySIMD(alpha, x, y)
		clearUpper()
		return
	}
	axpyGo(alpha, x, y)
}

func axpyGo(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// Scale sets x *= alpha.
func Scale(alpha float32, x []float32) {
	if level > levelGo {
		scaleSIMD(alpha, x)
		clearUpper()
		return
	}
	for i := range x {
		x[i] *= alpha
	}
}

// Add sets dst = a + b elementwise; dst may alias a or b.
func Add(dst, a, b []float32) {
	sameLen("Add", len(dst), a, b)
	if level > levelGo {
		addSIMD(dst, a, b)
		clearUpper()
		return
	}
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

// Mul sets dst = a * b elementwise; dst may alias a or b.
func Mul(dst, a, b []float32) {
	sameLen("Mul", len(dst), a, b)
	if level > levelGo {
		mulSIMD(dst, a, b)
		clearUpper()
		return
	}
	for i := range dst {
		dst[i] = a[i] * b[i]
	}
}

// Sum returns the sum of x.
func Sum(x []float32) float32 {
	if level > levelGo {
		return cleared(sumSIMD(x))
	}
	var s float32
	for _, v := range x {
		s += v
	}
	return s
}

// SumSquares returns sum_i x[i]^2.
func SumSquares(x []float32) float32 {
	if level > levelGo {
		return cleared(sumSquaresSIMD(x))
	}
	var s float32
	for _, v := range x {
		s += v * v
	}
	return s
}

// Max returns the largest element of x, or -Inf for an empty x. NaNs are
// not looked for.
func Max(x []float32) float32 {
	if level > levelGo {
		return cleared(maxSIMD(x))
	}
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}

// Argmax returns the index of the first largest element of x, or -1 for an
// empty x.
func Argmax(x []float32) int {
	if len(x) == 0 {
		return -1
	}
	if level > levelGo {
		return cleared(argmaxSIMD(x))
	}
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// ExpSub sets dst[i] = exp(x[i]-m) and returns the sum of dst; dst may alias
// x. It is the middle of a softmax, with m the maximum of x. Results below
// the smallest normal float32 (x-m < -87.336) are 0 and results above
// 2^127 (x-m > 88.376) are +Inf.
func ExpSub(dst, x []float32, m float32) (sum float32) {
	sameLen("ExpSub", len(dst), x)
	if level > levelGo {
		return cleared(expSubSIMD(dst, x, m))
	}
	for i, v := range x {
		e := expf(v - m)
		dst[i] = e
		sum += e
	}
	return sum
}

// cleared returns r after clearing the vector registers' upper halves, for
// a SIMD kernel's result: cleared(f(x)) runs f first.
func cleared[T float32 | int](r T) T {
	clearUpper()
	return r
}
