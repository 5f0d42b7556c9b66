// Macros of the dot-product kernels (gemmk_amd64.s, halfdot_amd64.s).

// D44ZERO clears Z16–Z31, where the dot kernels keep their sums; D44FMA
// adds the products of four A vectors (Z4–Z7) and four B vectors (Z0–Z3) to
// a 4 × 4 dot block's sums: Z(16 + 4i + j) += Z(4+i) · Zj.
#define D44ZERO \
	VPXORD Z16, Z16, Z16; \
	VPXORD Z17, Z17, Z17; \
	VPXORD Z18, Z18, Z18; \
	VPXORD Z19, Z19, Z19; \
	VPXORD Z20, Z20, Z20; \
	VPXORD Z21, Z21, Z21; \
	VPXORD Z22, Z22, Z22; \
	VPXORD Z23, Z23, Z23; \
	VPXORD Z24, Z24, Z24; \
	VPXORD Z25, Z25, Z25; \
	VPXORD Z26, Z26, Z26; \
	VPXORD Z27, Z27, Z27; \
	VPXORD Z28, Z28, Z28; \
	VPXORD Z29, Z29, Z29; \
	VPXORD Z30, Z30, Z30; \
	VPXORD Z31, Z31, Z31

#define D44FMA \
	VFMADD231PS Z4, Z0, Z16; \
	VFMADD231PS Z4, Z1, Z17; \
	VFMADD231PS Z4, Z2, Z18; \
	VFMADD231PS Z4, Z3, Z19; \
	VFMADD231PS Z5, Z0, Z20; \
	VFMADD231PS Z5, Z1, Z21; \
	VFMADD231PS Z5, Z2, Z22; \
	VFMADD231PS Z5, Z3, Z23; \
	VFMADD231PS Z6, Z0, Z24; \
	VFMADD231PS Z6, Z1, Z25; \
	VFMADD231PS Z6, Z2, Z26; \
	VFMADD231PS Z6, Z3, Z27; \
	VFMADD231PS Z7, Z0, Z28; \
	VFMADD231PS Z7, Z1, Z29; \
	VFMADD231PS Z7, Z2, Z30; \
	VFMADD231PS Z7, Z3, Z31


// D44ROW reduces one row's four sums (z0–z3, their low halves y0–y3) to
// [Σz0, Σz1, Σz2, Σz3] at DX (added to it when R10 ≠ 0), as dot1x4w does:
// fold (the 256-bit halves added: Y8–Y11, which VHADDPS can name), then
// hsum4 (pairwise sums of the pairs, then the 128-bit halves added).
#define D44ROW(z0, z1, z2, z3, y0, y1, y2, y3) \
	VEXTRACTF64X4 $1, z0, Y8; \
	VADDPS y0, Y8, Y8; \
	VEXTRACTF64X4 $1, z1, Y9; \
	VADDPS y1, Y9, Y9; \
	VEXTRACTF64X4 $1, z2, Y10; \
	VADDPS y2, Y10, Y10; \
	VEXTRACTF64X4 $1, z3, Y11; \
	VADDPS y3, Y11, Y11; \
	VHADDPS Y9, Y8, Y8; \
	VHADDPS Y11, Y10, Y10; \
	VHADDPS Y10, Y8, Y8; \
	VEXTRACTF128 $1, Y8, X9; \
	VADDPS X9, X8, X8; \
	CMPQ R10, $0; \
	JEQ 2(PC); \
	VADDPS (DX), X8, X8; \
	VMOVUPS X8, (DX)
