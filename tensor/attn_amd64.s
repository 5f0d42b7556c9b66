//go:build goexperiment.simd && amd64

#include "textflag.h"

// func scores8x16(n16 int, k *float32, ld int, q *float32, att *float32, acc bool)
//
// For n16 blocks of 16 positions p: att[p] (+)= the scores of eight key
// channels, k's rows ld floats apart, with q[0:8] (already scaled), in
// attendHeadSIMD's order: s = k0·q0, t = k1·q1, then s and t take the even
// and odd channels' FMAs in turn, s+t, plus att[p] when acc.
// Registers: SI k at the block, R8 ld in bytes, R9 3·ld, R10 5·ld, R11 7·ld,
// DI att, Z8–Z15 the eight q values, DX acc.
TEXT ·scores8x16(SB), NOSPLIT, $0-41
	MOVQ n16+0(FP), CX
	MOVQ k+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	MOVQ q+24(FP), AX
	MOVQ att+32(FP), DI
	MOVBQZX acc+40(FP), DX
	LEAQ (R8)(R8*2), R9
	LEAQ (R8)(R8*4), R10
	LEAQ (R9)(R8*4), R11
	VBROADCASTSS 0(AX), Z8
	VBROADCASTSS 4(AX), Z9
	VBROADCASTSS 8(AX), Z10
	VBROADCASTSS 12(AX), Z11
	VBROADCASTSS 16(AX), Z12
	VBROADCASTSS 20(AX), Z13
	VBROADCASTSS 24(AX), Z14
	VBROADCASTSS 28(AX), Z15
	TESTQ CX, CX
	JEQ scdone

scloop:
	VMULPS (SI), Z8, Z0
	VMULPS (SI)(R8*1), Z9, Z1
	VFMADD231PS (SI)(R8*2), Z10, Z0
	VFMADD231PS (SI)(R9*1), Z11, Z1
	VFMADD231PS (SI)(R8*4), Z12, Z0
	VFMADD231PS (SI)(R10*1), Z13, Z1
	VFMADD231PS (SI)(R9*2), Z14, Z0
	VFMADD231PS (SI)(R11*1), Z15, Z1
	VADDPS Z1, Z0, Z0
	TESTQ DX, DX
	JEQ 2(PC)
	VADDPS (DI), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNE scloop

scdone:
	VZEROUPPER
	RET

// func weighted8x16(n16 int, v *float32, ld int, att *float32, out *float32)
//
// The eight sums Σ_p att[p]·v_d[p] over n16 blocks of 16 positions, for
// eight value channels d ld floats apart, each a chain of FMAs in p order
// from zero (attendHeadSIMD's), their lanes stored to out[0:128] for the
// tail and the reduction in Go.
TEXT ·weighted8x16(SB), NOSPLIT, $0-40
	MOVQ n16+0(FP), CX
	MOVQ v+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	MOVQ att+24(FP), DI
	MOVQ out+32(FP), DX
	LEAQ (R8)(R8*2), R9
	LEAQ (R8)(R8*4), R10
	LEAQ (R9)(R8*4), R11
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	TESTQ CX, CX
	JEQ wtstore

wtloop:
	VMOVUPS (DI), Z0
	VFMADD231PS (SI), Z0, Z16
	VFMADD231PS (SI)(R8*1), Z0, Z17
	VFMADD231PS (SI)(R8*2), Z0, Z18
	VFMADD231PS (SI)(R9*1), Z0, Z19
	VFMADD231PS (SI)(R8*4), Z0, Z20
	VFMADD231PS (SI)(R10*1), Z0, Z21
	VFMADD231PS (SI)(R9*2), Z0, Z22
	VFMADD231PS (SI)(R11*1), Z0, Z23
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNE wtloop

wtstore:
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
