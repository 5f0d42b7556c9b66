//go:build goexperiment.simd && amd64

#include "textflag.h"

// func q8Tile16x8(w *byte, dw *float32, x *int8, xc *int32, xd *float32, nb int, out *float32)
//
// out[j*16+i] = Σ_b dw[b*16+i]·xd[b*8+j]·(Σ_k w_b[i][k]·x_b[j][k]) for 16
// weight rows i and 8 activation rows j, b over nb blocks of 32 columns
// (AVX-512 VNNI). Per block the weights are 8 groups of 64 bytes, group g
// holding columns 4g..4g+3 of rows 0..15 as unsigned bytes w+128; the
// activations are 8 rows of 32 int8; xc holds -128·Σ_k x_b[j][k] per row,
// the start of its integer sum, so that it ends at Σ_k w·x exactly.
// Z0–Z7: the block's integer sums; Z8–Z15: the float sums; Z16: weights;
// Z17: the block's weight scales; Z18: a scale product.

#define DOT(g) \
	VMOVDQU32 (g*64)(AX), Z16; \
	VPDPBUSD.BCST (0*32+g*4)(CX), Z16, Z0; \
	VPDPBUSD.BCST (1*32+g*4)(CX), Z16, Z1; \
	VPDPBUSD.BCST (2*32+g*4)(CX), Z16, Z2; \
	VPDPBUSD.BCST (3*32+g*4)(CX), Z16, Z3; \
	VPDPBUSD.BCST (4*32+g*4)(CX), Z16, Z4; \
	VPDPBUSD.BCST (5*32+g*4)(CX), Z16, Z5; \
	VPDPBUSD.BCST (6*32+g*4)(CX), Z16, Z6; \
	VPDPBUSD.BCST (7*32+g*4)(CX), Z16, Z7

#define SCALE(j, Zi, Zf) \
	VCVTDQ2PS Zi, Zi; \
	VMULPS.BCST (j*4)(SI), Z17, Z18; \
	VFMADD231PS Z18, Zi, Zf

TEXT ·q8Tile16x8(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), AX
	MOVQ dw+8(FP), BX
	MOVQ x+16(FP), CX
	MOVQ xc+24(FP), DX
	MOVQ xd+32(FP), SI
	MOVQ nb+40(FP), DI
	MOVQ out+48(FP), R8
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	TESTQ DI, DI
	JLE done

block:
	VPBROADCASTD 0(DX), Z0
	VPBROADCASTD 4(DX), Z1
	VPBROADCASTD 8(DX), Z2
	VPBROADCASTD 12(DX), Z3
	VPBROADCASTD 16(DX), Z4
	VPBROADCASTD 20(DX), Z5
	VPBROADCASTD 24(DX), Z6
	VPBROADCASTD 28(DX), Z7
	DOT(0)
	DOT(1)
	DOT(2)
	DOT(3)
	DOT(4)
	DOT(5)
	DOT(6)
	DOT(7)
	VMOVUPS (BX), Z17
	SCALE(0, Z0, Z8)
	SCALE(1, Z1, Z9)
	SCALE(2, Z2, Z10)
	SCALE(3, Z3, Z11)
	SCALE(4, Z4, Z12)
	SCALE(5, Z5, Z13)
	SCALE(6, Z6, Z14)
	SCALE(7, Z7, Z15)
	ADDQ $512, AX
	ADDQ $64, BX
	ADDQ $256, CX
	ADDQ $32, DX
	ADDQ $32, SI
	DECQ DI
	JNZ block

done:
	VMOVUPS Z8, 0(R8)
	VMOVUPS Z9, 64(R8)
	VMOVUPS Z10, 128(R8)
	VMOVUPS Z11, 192(R8)
	VMOVUPS Z12, 256(R8)
	VMOVUPS Z13, 320(R8)
	VMOVUPS Z14, 384(R8)
	VMOVUPS Z15, 448(R8)
	VZEROUPPER
	RET
