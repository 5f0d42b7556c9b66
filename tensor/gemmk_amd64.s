//go:build goexperiment.simd && amd64

#include "textflag.h"
#include "dot_amd64.h"

// func f32Rows4x32(ns, kc int, a *float32, lda int, b *float32, sb int, c *float32, ldc int, acc bool)
//
// C[r][j] (+)= Σ_k A[r][k]·B[k][j] for ns strips of 4 rows r (A given as
// rows, lda apart) and 32 columns j (B's rows sb apart), each sum a chain of
// FMAs in k order from zero, then added to C when acc: the bits of
// k4x32rows. Two strips go together (16 sums, Z16–Z31: 16 independent FMA
// chains, enough to hide the FMA latency on two pipes); a last odd strip
// runs alone. Each A value is broadcast once from memory and feeds two FMAs.
// Registers: SI rows 0–2 (and 4 via DI*4), R8 row 3 (5 via DI*2), R9 row 6
// (7 via DI*1), DI = lda in bytes, BX = B at k, R11 = sb in bytes, CX the k
// count, R12 = C, R13 = ldc in bytes, DX the strips left, AX spare.

// FMA2(row, acc0, acc1): acc0 += A·B[k][0:16], acc1 += A·B[k][16:32].
#define FMA2(src, x, a0, a1) \
	VBROADCASTSS src, x; \
	VFMADD231PS Z0, x, a0; \
	VFMADD231PS Z1, x, a1

// ST2(off, a0, a1): C row at R12+off gets a0, a1 (added to it when acc).
#define ST2(dst0, dst1, a0, a1) \
	CMPB R10, $0; \
	JEQ 3(PC); \
	VADDPS dst0, a0, a0; \
	VADDPS dst1, a1, a1; \
	VMOVUPS a0, dst0; \
	VMOVUPS a1, dst1

TEXT ·f32Rows4x32(SB), NOSPLIT, $0-65
	MOVQ ns+0(FP), DX
	MOVQ a+16(FP), AX
	MOVQ lda+24(FP), DI
	SHLQ $2, DI
	MOVQ sb+40(FP), R11
	SHLQ $2, R11
	MOVQ c+48(FP), R12
	MOVQ ldc+56(FP), R13
	SHLQ $2, R13
	MOVBLZX acc+64(FP), R10

pairs:
	CMPQ DX, $2
	JLT single
	D44ZERO
	MOVQ AX, SI
	LEAQ (AX)(DI*2), R8
	ADDQ DI, R8
	LEAQ (R8)(DI*2), R9
	ADDQ DI, R9
	MOVQ b+32(FP), BX
	MOVQ kc+8(FP), CX
	TESTQ CX, CX
	JEQ store8

loop8:
	VMOVUPS (BX), Z0
	VMOVUPS 64(BX), Z1
	FMA2((SI), Z2, Z16, Z17)
	FMA2((SI)(DI*1), Z3, Z18, Z19)
	FMA2((SI)(DI*2), Z4, Z20, Z21)
	FMA2((R8), Z5, Z22, Z23)
	FMA2((SI)(DI*4), Z6, Z24, Z25)
	FMA2((R8)(DI*2), Z7, Z26, Z27)
	FMA2((R9), Z8, Z28, Z29)
	FMA2((R9)(DI*1), Z9, Z30, Z31)
	ADDQ $4, SI
	ADDQ $4, R8
	ADDQ $4, R9
	ADDQ R11, BX
	DECQ CX
	JNE loop8

store8:
	MOVQ R12, SI
	ST2((SI), 64(SI), Z16, Z17)
	ADDQ R13, SI
	ST2((SI), 64(SI), Z18, Z19)
	ADDQ R13, SI
	ST2((SI), 64(SI), Z20, Z21)
	ADDQ R13, SI
	ST2((SI), 64(SI), Z22, Z23)
	ADDQ R13, SI
	ST2((SI), 64(SI), Z24, Z25)
	ADDQ R13, SI
	ST2((SI), 64(SI), Z26, Z27)
	ADDQ R13, SI
	ST2((SI), 64(SI), Z28, Z29)
	ADDQ R13, SI
	ST2((SI), 64(SI), Z30, Z31)
	ADDQ R13, SI
	MOVQ SI, R12
	LEAQ (AX)(DI*8), AX
	SUBQ $2, DX
	JMP pairs

single:
	TESTQ DX, DX
	JEQ done
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	MOVQ AX, SI
	LEAQ (AX)(DI*2), R8
	ADDQ DI, R8
	MOVQ b+32(FP), BX
	MOVQ kc+8(FP), CX
	TESTQ CX, CX
	JEQ store4

loop4:
	VMOVUPS (BX), Z0
	VMOVUPS 64(BX), Z1
	FMA2((SI), Z2, Z16, Z17)
	FMA2((SI)(DI*1), Z3, Z18, Z19)
	FMA2((SI)(DI*2), Z4, Z20, Z21)
	FMA2((R8), Z5, Z22, Z23)
	ADDQ $4, SI
	ADDQ $4, R8
	ADDQ R11, BX
	DECQ CX
	JNE loop4

store4:
	MOVQ R12, SI
	ST2((SI), 64(SI), Z16, Z17)
	ADDQ R13, SI
	ST2((SI), 64(SI), Z18, Z19)
	ADDQ R13, SI
	ST2((SI), 64(SI), Z20, Z21)
	ADDQ R13, SI
	ST2((SI), 64(SI), Z22, Z23)

done:
	VZEROUPPER
	RET

// func packRows32(k int, src *float32, ld int, dst *float32)
//
// Copies k rows of 32 floats, ld floats apart, to dst (k×32, contiguous),
// prefetching the row 16 ahead: a panel of B cut from a matrix's rows reads
// two cache lines a row ld apart, a pattern the hardware prefetchers follow
// poorly (PREFETCH past the matrix's end does not fault).
TEXT ·packRows32(SB), NOSPLIT, $0-32
	MOVQ k+0(FP), CX
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), BX
	SHLQ $2, BX
	MOVQ dst+24(FP), DI
	MOVQ BX, DX
	SHLQ $4, DX
	TESTQ CX, CX
	JEQ packdone

packloop:
	PREFETCHT0 (SI)(DX*1)
	PREFETCHT0 64(SI)(DX*1)
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ BX, SI
	ADDQ $128, DI
	DECQ CX
	JNE packloop

packdone:
	VZEROUPPER
	RET

// func dot2x4Acc(n16 int, a0, a1, b0, b1, b2, b3 *float32, out *float32)
//
// The main loop of dot2x4w: for k over n16 blocks of 16, the eight sums
// s[i][j] += b_j[k:k+16]·a_i[k:k+16] lane by lane (one FMA each, k in
// order), stored to out as s00..s03, s10..s13 (16 floats each). Written in
// Go, the loop moved its sums between registers and reloaded pointers from
// the stack every step.
TEXT ·dot2x4Acc(SB), NOSPLIT, $0-64
	MOVQ n16+0(FP), CX
	MOVQ a0+8(FP), SI
	MOVQ a1+16(FP), DI
	MOVQ b0+24(FP), BX
	MOVQ b1+32(FP), R8
	MOVQ b2+40(FP), R9
	MOVQ b3+48(FP), R10
	MOVQ out+56(FP), DX
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	TESTQ CX, CX
	JEQ dotstore

dotloop:
	VMOVUPS (BX), Z0
	VMOVUPS (R8), Z1
	VMOVUPS (R9), Z2
	VMOVUPS (R10), Z3
	VMOVUPS (SI), Z4
	VMOVUPS (DI), Z5
	VFMADD231PS Z4, Z0, Z16
	VFMADD231PS Z4, Z1, Z17
	VFMADD231PS Z4, Z2, Z18
	VFMADD231PS Z4, Z3, Z19
	VFMADD231PS Z5, Z0, Z20
	VFMADD231PS Z5, Z1, Z21
	VFMADD231PS Z5, Z2, Z22
	VFMADD231PS Z5, Z3, Z23
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, BX
	ADDQ $64, R8
	ADDQ $64, R9
	ADDQ $64, R10
	DECQ CX
	JNE dotloop

dotstore:
	VMOVUPS Z16, 0(DX)
	VMOVUPS Z17, 64(DX)
	VMOVUPS Z18, 128(DX)
	VMOVUPS Z19, 192(DX)
	VMOVUPS Z20, 256(DX)
	VMOVUPS Z21, 320(DX)
	VMOVUPS Z22, 384(DX)
	VMOVUPS Z23, 448(DX)
	VZEROUPPER
	RET

// func dot4x4(n16 int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc bool, pf *float32)
//
// C[i][j] (+)= A[i]·B[j] for four rows i of A and four rows j of B, each
// n16 blocks of 16 long: 16 sums of 16 lanes (Z16–Z31), each a chain of
// FMAs in k order from zero, folded and reduced as dot1x4w does (the 256-bit
// halves added, then the pairwise sums of hsum4, then the 128-bit halves),
// so a row's results have dot1x4w's bits whatever rows it goes with. Per
// block: four B and four A vectors loaded, 16 FMAs (dot2x4Acc: six loads for
// eight). pf, four rows ldb apart, is prefetched as B is read: the caller's
// next group of B rows, from memory while this group is in cache.
// Registers: SI = A, R11 = lda in bytes, R12 = 3·lda; BX = B, R13 = ldb in
// bytes, R14 = 3·ldb; R9 = pf; DX = C, AX = ldc in bytes; R10 = acc.
TEXT ·dot4x4(SB), NOSPLIT, $0-72
	MOVQ n16+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R11
	SHLQ $2, R11
	MOVQ b+24(FP), BX
	MOVQ ldb+32(FP), R13
	SHLQ $2, R13
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), AX
	SHLQ $2, AX
	MOVBQZX acc+56(FP), R10
	MOVQ pf+64(FP), R9
	LEAQ (R11)(R11*2), R12
	LEAQ (R13)(R13*2), R14
	D44ZERO
	TESTQ CX, CX
	JEQ d44reduce

d44loop:
	VMOVUPS (BX), Z0
	VMOVUPS (BX)(R13*1), Z1
	VMOVUPS (BX)(R13*2), Z2
	VMOVUPS (BX)(R14*1), Z3
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
	ADDQ $64, BX
	ADDQ $64, R9
	DECQ CX
	JNE d44loop

d44reduce:
	D44ROW(Z16, Z17, Z18, Z19, Y16, Y17, Y18, Y19)
	ADDQ AX, DX
	D44ROW(Z20, Z21, Z22, Z23, Y20, Y21, Y22, Y23)
	ADDQ AX, DX
	D44ROW(Z24, Z25, Z26, Z27, Y24, Y25, Y26, Y27)
	ADDQ AX, DX
	D44ROW(Z28, Z29, Z30, Z31, Y28, Y29, Y30, Y31)
	VZEROUPPER
	RET
