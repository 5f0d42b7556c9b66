//go:build goexperiment.simd && amd64

#include "textflag.h"
#include "dot_amd64.h"

// The half-precision batch kernels (mulHalfDot): dot4x4 over BF16 pairs on
// VDPBF16PS, and over F16 rows widened as they load.

// func bf16dot4x4(n32 int, a *uint16, lda int, b *uint16, ldb int, c *float32, ldc int, acc bool, pf *uint16)
//
// dot4x4 on BF16 rows (AVX512-BF16): C[i][j] (+)= A[i]·B[j] for four
// rows i of A and four rows j of B, each n32 blocks of 32 BF16 values long
// (lda, ldb in values). Per block: four B and four A vectors loaded, 16
// VDPBF16PS — each of the 16 lanes of a sum adds its pair of products
// (Intel SDM: products exact, each addition rounded to nearest even,
// denormals flushed) — then the lanes are reduced as dot4x4 reduces them,
// so a row's results are those of bf16dot4x1 for it alone. pf, four rows
// ldb apart, is prefetched as B is read. VDPBF16PS is not known to Go's
// assembler: its bytes are VPDPBUSD's for the same registers with prefix
// bits pp = F3 and opcode 0x52 (EVEX.512.F3.0F38.W0 52 /r).
TEXT ·bf16dot4x4(SB), NOSPLIT, $0-72
	MOVQ n32+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R11
	SHLQ $1, R11
	MOVQ b+24(FP), BX
	MOVQ ldb+32(FP), R13
	SHLQ $1, R13
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), AX
	SHLQ $2, AX
	MOVBQZX acc+56(FP), R10
	MOVQ pf+64(FP), R9
	LEAQ (R11)(R11*2), R12
	LEAQ (R13)(R13*2), R14
	D44ZERO
	TESTQ CX, CX
	JEQ b44reduce

b44loop:
	VMOVDQU32 (BX), Z0
	VMOVDQU32 (BX)(R13*1), Z1
	VMOVDQU32 (BX)(R13*2), Z2
	VMOVDQU32 (BX)(R14*1), Z3
	PREFETCHT0 (R9)
	PREFETCHT0 (R9)(R13*1)
	PREFETCHT0 (R9)(R13*2)
	PREFETCHT0 (R9)(R14*1)
	VMOVDQU32 (SI), Z4
	VMOVDQU32 (SI)(R11*1), Z5
	VMOVDQU32 (SI)(R11*2), Z6
	VMOVDQU32 (SI)(R12*1), Z7
	BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xc0 // VDPBF16PS Z0, Z4, Z16
	BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xc9 // VDPBF16PS Z1, Z4, Z17
	BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xd2 // VDPBF16PS Z2, Z4, Z18
	BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xdb // VDPBF16PS Z3, Z4, Z19
	BYTE $0x62; BYTE $0xe2; BYTE $0x56; BYTE $0x48; BYTE $0x52; BYTE $0xe0 // VDPBF16PS Z0, Z5, Z20
	BYTE $0x62; BYTE $0xe2; BYTE $0x56; BYTE $0x48; BYTE $0x52; BYTE $0xe9 // VDPBF16PS Z1, Z5, Z21
	BYTE $0x62; BYTE $0xe2; BYTE $0x56; BYTE $0x48; BYTE $0x52; BYTE $0xf2 // VDPBF16PS Z2, Z5, Z22
	BYTE $0x62; BYTE $0xe2; BYTE $0x56; BYTE $0x48; BYTE $0x52; BYTE $0xfb // VDPBF16PS Z3, Z5, Z23
	BYTE $0x62; BYTE $0x62; BYTE $0x4e; BYTE $0x48; BYTE $0x52; BYTE $0xc0 // VDPBF16PS Z0, Z6, Z24
	BYTE $0x62; BYTE $0x62; BYTE $0x4e; BYTE $0x48; BYTE $0x52; BYTE $0xc9 // VDPBF16PS Z1, Z6, Z25
	BYTE $0x62; BYTE $0x62; BYTE $0x4e; BYTE $0x48; BYTE $0x52; BYTE $0xd2 // VDPBF16PS Z2, Z6, Z26
	BYTE $0x62; BYTE $0x62; BYTE $0x4e; BYTE $0x48; BYTE $0x52; BYTE $0xdb // VDPBF16PS Z3, Z6, Z27
	BYTE $0x62; BYTE $0x62; BYTE $0x46; BYTE $0x48; BYTE $0x52; BYTE $0xe0 // VDPBF16PS Z0, Z7, Z28
	BYTE $0x62; BYTE $0x62; BYTE $0x46; BYTE $0x48; BYTE $0x52; BYTE $0xe9 // VDPBF16PS Z1, Z7, Z29
	BYTE $0x62; BYTE $0x62; BYTE $0x46; BYTE $0x48; BYTE $0x52; BYTE $0xf2 // VDPBF16PS Z2, Z7, Z30
	BYTE $0x62; BYTE $0x62; BYTE $0x46; BYTE $0x48; BYTE $0x52; BYTE $0xfb // VDPBF16PS Z3, Z7, Z31
	ADDQ $64, SI
	ADDQ $64, BX
	ADDQ $64, R9
	DECQ CX
	JNE b44loop

b44reduce:
	D44ROW(Z16, Z17, Z18, Z19, Y16, Y17, Y18, Y19)
	ADDQ AX, DX
	D44ROW(Z20, Z21, Z22, Z23, Y20, Y21, Y22, Y23)
	ADDQ AX, DX
	D44ROW(Z24, Z25, Z26, Z27, Y24, Y25, Y26, Y27)
	ADDQ AX, DX
	D44ROW(Z28, Z29, Z30, Z31, Y28, Y29, Y30, Y31)
	VZEROUPPER
	RET

// func bf16dot4x1(n32 int, a *uint16, b *uint16, ldb int, c *float32, acc bool, pf *uint16)
//
// bf16dot4x4 for one row of A: c[j] (+)= A·B[j], j < 4, the same lanes and
// reduction.
TEXT ·bf16dot4x1(SB), NOSPLIT, $0-56
	MOVQ n32+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), BX
	MOVQ ldb+24(FP), R13
	SHLQ $1, R13
	MOVQ c+32(FP), DX
	MOVBQZX acc+40(FP), R10
	MOVQ pf+48(FP), R9
	LEAQ (R13)(R13*2), R14
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	TESTQ CX, CX
	JEQ b41reduce

b41loop:
	VMOVDQU32 (BX), Z0
	VMOVDQU32 (BX)(R13*1), Z1
	VMOVDQU32 (BX)(R13*2), Z2
	VMOVDQU32 (BX)(R14*1), Z3
	PREFETCHT0 (R9)
	PREFETCHT0 (R9)(R13*1)
	PREFETCHT0 (R9)(R13*2)
	PREFETCHT0 (R9)(R14*1)
	VMOVDQU32 (SI), Z4
	BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xc0 // VDPBF16PS Z0, Z4, Z16
	BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xc9 // VDPBF16PS Z1, Z4, Z17
	BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xd2 // VDPBF16PS Z2, Z4, Z18
	BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xdb // VDPBF16PS Z3, Z4, Z19
	ADDQ $64, SI
	ADDQ $64, BX
	ADDQ $64, R9
	DECQ CX
	JNE b41loop

b41reduce:
	D44ROW(Z16, Z17, Z18, Z19, Y16, Y17, Y18, Y19)
	VZEROUPPER
	RET

// func f16dot4x4(n16 int, a *float32, lda int, b *uint16, ldb int, c *float32, ldc int, acc bool, pf *uint16)
//
// dot4x4 with B's rows in F16, widened as they are loaded (VCVTPH2PS,
// exact): the same products, sums and reduction as dot4x4 over the rows
// widened to float32, so the bits of that product. ldb is in values; pf
// (four rows ldb apart) is prefetched as B is read.
TEXT ·f16dot4x4(SB), NOSPLIT, $0-72
	MOVQ n16+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R11
	SHLQ $2, R11
	MOVQ b+24(FP), BX
	MOVQ ldb+32(FP), R13
	SHLQ $1, R13
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), AX
	SHLQ $2, AX
	MOVBQZX acc+56(FP), R10
	MOVQ pf+64(FP), R9
	LEAQ (R11)(R11*2), R12
	LEAQ (R13)(R13*2), R14
	D44ZERO
	TESTQ CX, CX
	JEQ h44reduce

h44loop:
	VCVTPH2PS (BX), Z0
	VCVTPH2PS (BX)(R13*1), Z1
	VCVTPH2PS (BX)(R13*2), Z2
	VCVTPH2PS (BX)(R14*1), Z3
	PREFETCHT0 (R9)
	PREFETCHT0 (R9)(R13*1)
	PREFETCHT0 (R9)(R13*2)
	PREFETCHT0 (R9)(R14*1)
	VMOVUPS (SI), Z4
	VMOVUPS (SI)(R11*1), Z5
	VMOVUPS (SI)(R11*2), Z6
	VMOVUPS (SI)(R12*1), Z7
	D44FMA
	ADDQ $64, SI
	ADDQ $32, BX
	ADDQ $32, R9
	DECQ CX
	JNE h44loop

h44reduce:
	D44ROW(Z16, Z17, Z18, Z19, Y16, Y17, Y18, Y19)
	ADDQ AX, DX
	D44ROW(Z20, Z21, Z22, Z23, Y20, Y21, Y22, Y23)
	ADDQ AX, DX
	D44ROW(Z24, Z25, Z26, Z27, Y24, Y25, Y26, Y27)
	ADDQ AX, DX
	D44ROW(Z28, Z29, Z30, Z31, Y28, Y29, Y30, Y31)
	VZEROUPPER
	RET

// func f16dot4x1(n16 int, a *float32, b *uint16, ldb int, c *float32, acc bool, pf *uint16)
//
// f16dot4x4 for one row of A: the same lanes and reduction.
TEXT ·f16dot4x1(SB), NOSPLIT, $0-56
	MOVQ n16+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), BX
	MOVQ ldb+24(FP), R13
	SHLQ $1, R13
	MOVQ c+32(FP), DX
	MOVBQZX acc+40(FP), R10
	MOVQ pf+48(FP), R9
	LEAQ (R13)(R13*2), R14
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	TESTQ CX, CX
	JEQ h41reduce

h41loop:
	VCVTPH2PS (BX), Z0
	VCVTPH2PS (BX)(R13*1), Z1
	VCVTPH2PS (BX)(R13*2), Z2
	VCVTPH2PS (BX)(R14*1), Z3
	PREFETCHT0 (R9)
	PREFETCHT0 (R9)(R13*1)
	PREFETCHT0 (R9)(R13*2)
	PREFETCHT0 (R9)(R14*1)
	VMOVUPS (SI), Z4
	VFMADD231PS Z4, Z0, Z16
	VFMADD231PS Z4, Z1, Z17
	VFMADD231PS Z4, Z2, Z18
	VFMADD231PS Z4, Z3, Z19
	ADDQ $64, SI
	ADDQ $32, BX
	ADDQ $32, R9
	DECQ CX
	JNE h41loop

h41reduce:
	D44ROW(Z16, Z17, Z18, Z19, Y16, Y17, Y18, Y19)
	VZEROUPPER
	RET
