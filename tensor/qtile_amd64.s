//go:build goexperiment.simd && amd64

#include "textflag.h"

// func q8Tile16x8(w *byte, dw *uint16, x *int8, xc *int32, xd *float32, nb int, out *float32)
//
// out[j*16+i] = Σ_b dw[b*16+i]·xd[b*8+j]·(Σ_k w_b[i][k]·x_b[j][k]) for 16
// weight rows i and 8 activation rows j, b over nb blocks of 32 columns
// (AVX-512 VNNI). Per block the weights are 8 groups of 64 bytes, group g
// holding columns 4g..4g+3 of rows 0..15 as unsigned bytes w+128; the
// activations are 8 rows of 32 int8; xc holds -128·Σ_k x_b[j][k] per row,
// the start of its integer sum, so that it ends at Σ_k w·x exactly.
// Z0–Z7: the block's integer sums; Z8–Z15: the float sums; Z16: weights;
// Z17: the block's weight scales (16 F16 values, widened as they load —
// exact); Z18: a scale product.

// ZERO8 clears eight vector registers; STORE8 stores them to out[0:128].
#define ZERO8(a, b, c, d, e, f, g, h) \
	VPXORD a, a, a; VPXORD b, b, b; VPXORD c, c, c; VPXORD d, d, d; \
	VPXORD e, e, e; VPXORD f, f, f; VPXORD g, g, g; VPXORD h, h, h

#define STORE8(a, b, c, d, e, f, g, h) \
	VMOVUPS a, 0(R8); VMOVUPS b, 64(R8); VMOVUPS c, 128(R8); VMOVUPS d, 192(R8); \
	VMOVUPS e, 256(R8); VMOVUPS f, 320(R8); VMOVUPS g, 384(R8); VMOVUPS h, 448(R8)

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

// Q8ARGS loads the arguments of q8Tile16x8 and q8Strip16x1 (the same).
#define Q8ARGS \
	MOVQ w+0(FP), AX; MOVQ dw+8(FP), BX; MOVQ x+16(FP), CX; MOVQ xc+24(FP), DX; \
	MOVQ xd+32(FP), SI; MOVQ nb+40(FP), DI; MOVQ out+48(FP), R8

TEXT ·q8Tile16x8(SB), NOSPLIT, $0-56
	Q8ARGS
	ZERO8(Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
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
	VCVTPH2PS (BX), Z17
	SCALE(0, Z0, Z8)
	SCALE(1, Z1, Z9)
	SCALE(2, Z2, Z10)
	SCALE(3, Z3, Z11)
	SCALE(4, Z4, Z12)
	SCALE(5, Z5, Z13)
	SCALE(6, Z6, Z14)
	SCALE(7, Z7, Z15)
	ADDQ $512, AX
	ADDQ $32, BX
	ADDQ $256, CX
	ADDQ $32, DX
	ADDQ $32, SI
	DECQ DI
	JNZ block

done:
	STORE8(Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	VZEROUPPER
	RET

// func q8Strip16x1(w *byte, dw *uint16, x *int8, xc *int32, xd *float32, nb int, out *float32)
//
// q8Tile16x8 for one activation row (x: its nb blocks of 32 int8 in a row,
// xc and xd one per block): out[i] for the strip's 16 rows. The block's
// integer sum is taken in two halves (even and odd groups, Z0 and Z1: two
// chains of VPDPBUSD instead of one) and added — integers, so the sum is
// q8Tile16x8's exactly — then scaled and added as q8Tile16x8 does.
// The block 4 KiB ahead (8 blocks on; the next strip's where this strip
// ends, as it follows) is prefetched line by line: a decoded row streams
// every weight of the model from memory, and over a 1B model's layers (986
// MB of Q8_0, one thread; BenchmarkQMulTCold) the hardware prefetchers
// alone kept ~75% of a streaming sum's rate; with this prefetch the same
// sweep takes 0.90–0.95 of the time.
// Past a matrix's end the prefetches touch lines beyond it, harmlessly
// (a prefetch never faults).
#define PF8(off) \
	PREFETCHT0 (off+0)(AX); PREFETCHT0 (off+64)(AX); PREFETCHT0 (off+128)(AX); PREFETCHT0 (off+192)(AX); \
	PREFETCHT0 (off+256)(AX); PREFETCHT0 (off+320)(AX); PREFETCHT0 (off+384)(AX); PREFETCHT0 (off+448)(AX)

#define DOT1(g, Zw, Zs) \
	VMOVDQU32 (g*64)(AX), Zw; \
	VPDPBUSD.BCST (g*4)(CX), Zw, Zs

TEXT ·q8Strip16x1(SB), NOSPLIT, $0-56
	Q8ARGS
	VPXORD Z8, Z8, Z8
	TESTQ DI, DI
	JLE done1

block1:
	PF8(4096)
	VPBROADCASTD 0(DX), Z0
	VPXORD Z1, Z1, Z1
	DOT1(0, Z16, Z0)
	DOT1(1, Z17, Z1)
	DOT1(2, Z18, Z0)
	DOT1(3, Z19, Z1)
	DOT1(4, Z20, Z0)
	DOT1(5, Z21, Z1)
	DOT1(6, Z22, Z0)
	DOT1(7, Z23, Z1)
	VPADDD Z1, Z0, Z0
	VCVTPH2PS (BX), Z17
	VCVTDQ2PS Z0, Z0
	VMULPS.BCST 0(SI), Z17, Z18
	VFMADD231PS Z18, Z0, Z8
	ADDQ $512, AX
	ADDQ $32, BX
	ADDQ $32, CX
	ADDQ $4, DX
	ADDQ $4, SI
	DECQ DI
	JNZ block1

done1:
	VMOVUPS Z8, (R8)
	VZEROUPPER
	RET

// func transpose16x16u32(src *uint32, lds int, dst *uint32)
//
// dst[j*16+i] = src[i*lds+j] for i, j < 16: sixteen rows of 16 32-bit
// values (lds apart, in values) written as 16 contiguous columns — a BF16
// strip's pairs of columns (packBF16Strip). Unpacks of 32- and 64-bit
// elements, then two rounds of 128-bit lane shuffles.
TEXT ·transpose16x16u32(SB), NOSPLIT, $0-24
	MOVQ src+0(FP), SI
	MOVQ lds+8(FP), R8
	SHLQ $2, R8
	MOVQ dst+16(FP), DI
	VMOVDQU32 (SI), Z0
	ADDQ R8, SI
	VMOVDQU32 (SI), Z1
	ADDQ R8, SI
	VMOVDQU32 (SI), Z2
	ADDQ R8, SI
	VMOVDQU32 (SI), Z3
	ADDQ R8, SI
	VMOVDQU32 (SI), Z4
	ADDQ R8, SI
	VMOVDQU32 (SI), Z5
	ADDQ R8, SI
	VMOVDQU32 (SI), Z6
	ADDQ R8, SI
	VMOVDQU32 (SI), Z7
	ADDQ R8, SI
	VMOVDQU32 (SI), Z8
	ADDQ R8, SI
	VMOVDQU32 (SI), Z9
	ADDQ R8, SI
	VMOVDQU32 (SI), Z10
	ADDQ R8, SI
	VMOVDQU32 (SI), Z11
	ADDQ R8, SI
	VMOVDQU32 (SI), Z12
	ADDQ R8, SI
	VMOVDQU32 (SI), Z13
	ADDQ R8, SI
	VMOVDQU32 (SI), Z14
	ADDQ R8, SI
	VMOVDQU32 (SI), Z15
	VPUNPCKLDQ Z1, Z0, Z16
	VPUNPCKHDQ Z1, Z0, Z17
	VPUNPCKLDQ Z3, Z2, Z18
	VPUNPCKHDQ Z3, Z2, Z19
	VPUNPCKLDQ Z5, Z4, Z20
	VPUNPCKHDQ Z5, Z4, Z21
	VPUNPCKLDQ Z7, Z6, Z22
	VPUNPCKHDQ Z7, Z6, Z23
	VPUNPCKLDQ Z9, Z8, Z24
	VPUNPCKHDQ Z9, Z8, Z25
	VPUNPCKLDQ Z11, Z10, Z26
	VPUNPCKHDQ Z11, Z10, Z27
	VPUNPCKLDQ Z13, Z12, Z28
	VPUNPCKHDQ Z13, Z12, Z29
	VPUNPCKLDQ Z15, Z14, Z30
	VPUNPCKHDQ Z15, Z14, Z31
	VPUNPCKLQDQ Z18, Z16, Z0
	VPUNPCKHQDQ Z18, Z16, Z1
	VPUNPCKLQDQ Z19, Z17, Z2
	VPUNPCKHQDQ Z19, Z17, Z3
	VPUNPCKLQDQ Z22, Z20, Z4
	VPUNPCKHQDQ Z22, Z20, Z5
	VPUNPCKLQDQ Z23, Z21, Z6
	VPUNPCKHQDQ Z23, Z21, Z7
	VPUNPCKLQDQ Z26, Z24, Z8
	VPUNPCKHQDQ Z26, Z24, Z9
	VPUNPCKLQDQ Z27, Z25, Z10
	VPUNPCKHQDQ Z27, Z25, Z11
	VPUNPCKLQDQ Z30, Z28, Z12
	VPUNPCKHQDQ Z30, Z28, Z13
	VPUNPCKLQDQ Z31, Z29, Z14
	VPUNPCKHQDQ Z31, Z29, Z15
	VSHUFI32X4 $0x88, Z4, Z0, Z16
	VSHUFI32X4 $0xdd, Z4, Z0, Z20
	VSHUFI32X4 $0x88, Z5, Z1, Z17
	VSHUFI32X4 $0xdd, Z5, Z1, Z21
	VSHUFI32X4 $0x88, Z6, Z2, Z18
	VSHUFI32X4 $0xdd, Z6, Z2, Z22
	VSHUFI32X4 $0x88, Z7, Z3, Z19
	VSHUFI32X4 $0xdd, Z7, Z3, Z23
	VSHUFI32X4 $0x88, Z12, Z8, Z24
	VSHUFI32X4 $0xdd, Z12, Z8, Z28
	VSHUFI32X4 $0x88, Z13, Z9, Z25
	VSHUFI32X4 $0xdd, Z13, Z9, Z29
	VSHUFI32X4 $0x88, Z14, Z10, Z26
	VSHUFI32X4 $0xdd, Z14, Z10, Z30
	VSHUFI32X4 $0x88, Z15, Z11, Z27
	VSHUFI32X4 $0xdd, Z15, Z11, Z31
	VSHUFI32X4 $0x88, Z24, Z16, Z0
	VSHUFI32X4 $0xdd, Z24, Z16, Z8
	VSHUFI32X4 $0x88, Z25, Z17, Z1
	VSHUFI32X4 $0xdd, Z25, Z17, Z9
	VSHUFI32X4 $0x88, Z26, Z18, Z2
	VSHUFI32X4 $0xdd, Z26, Z18, Z10
	VSHUFI32X4 $0x88, Z27, Z19, Z3
	VSHUFI32X4 $0xdd, Z27, Z19, Z11
	VSHUFI32X4 $0x88, Z28, Z20, Z4
	VSHUFI32X4 $0xdd, Z28, Z20, Z12
	VSHUFI32X4 $0x88, Z29, Z21, Z5
	VSHUFI32X4 $0xdd, Z29, Z21, Z13
	VSHUFI32X4 $0x88, Z30, Z22, Z6
	VSHUFI32X4 $0xdd, Z30, Z22, Z14
	VSHUFI32X4 $0x88, Z31, Z23, Z7
	VSHUFI32X4 $0xdd, Z31, Z23, Z15
	VMOVDQU32 Z0, 0(DI)
	VMOVDQU32 Z1, 64(DI)
	VMOVDQU32 Z2, 128(DI)
	VMOVDQU32 Z3, 192(DI)
	VMOVDQU32 Z4, 256(DI)
	VMOVDQU32 Z5, 320(DI)
	VMOVDQU32 Z6, 384(DI)
	VMOVDQU32 Z7, 448(DI)
	VMOVDQU32 Z8, 512(DI)
	VMOVDQU32 Z9, 576(DI)
	VMOVDQU32 Z10, 640(DI)
	VMOVDQU32 Z11, 704(DI)
	VMOVDQU32 Z12, 768(DI)
	VMOVDQU32 Z13, 832(DI)
	VMOVDQU32 Z14, 896(DI)
	VMOVDQU32 Z15, 960(DI)
	VZEROUPPER
	RET

// func bf16Tile16x16(w *uint32, x *uint32, n int, out *float32)
//
// out[j*16+i] = Σ_k w[i][k]·x[j][k] for 16 weight rows i and 16 activation
// rows j, all BF16, k over 4n columns (AVX512-BF16). The weights are pairs
// of columns, 16 rows' pairs in 64 bytes; the activations likewise, 16
// rows' pairs in 64 bytes; two pairs a step. VDPBF16PS (Z0–Z15 += Z16 or
// Z17 · one activation row's pair, broadcast) is not known to Go's
// assembler: its bytes are those of VPDPBUSD.BCST with the same operands
// but prefix bits pp = F3 and opcode 0x52 (Intel SDM, VDPBF16PS:
// EVEX.512.F3.0F38.W0 52 /r). Sixteen running sums, each taking two
// VDPBF16PS a step: with eight (16 × 8 tiles) the instruction's latency
// bounded the tile.
TEXT ·bf16Tile16x16(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), AX
	MOVQ x+8(FP), CX
	MOVQ n+16(FP), DI
	MOVQ out+24(FP), R8
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	TESTQ DI, DI
	JLE b16done

b16step:
	VMOVDQU32 0(AX), Z16
	VMOVDQU32 64(AX), Z17
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x01 // VDPBF16PS.BCST 0(CX), Z16, Z0
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x49; BYTE $0x01 // VDPBF16PS.BCST 4(CX), Z16, Z1
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x51; BYTE $0x02 // VDPBF16PS.BCST 8(CX), Z16, Z2
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x59; BYTE $0x03 // VDPBF16PS.BCST 12(CX), Z16, Z3
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x61; BYTE $0x04 // VDPBF16PS.BCST 16(CX), Z16, Z4
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x69; BYTE $0x05 // VDPBF16PS.BCST 20(CX), Z16, Z5
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x71; BYTE $0x06 // VDPBF16PS.BCST 24(CX), Z16, Z6
	BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x79; BYTE $0x07 // VDPBF16PS.BCST 28(CX), Z16, Z7
	BYTE $0x62; BYTE $0x72; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x41; BYTE $0x08 // VDPBF16PS.BCST 32(CX), Z16, Z8
	BYTE $0x62; BYTE $0x72; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x49; BYTE $0x09 // VDPBF16PS.BCST 36(CX), Z16, Z9
	BYTE $0x62; BYTE $0x72; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x51; BYTE $0x0a // VDPBF16PS.BCST 40(CX), Z16, Z10
	BYTE $0x62; BYTE $0x72; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x59; BYTE $0x0b // VDPBF16PS.BCST 44(CX), Z16, Z11
	BYTE $0x62; BYTE $0x72; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x61; BYTE $0x0c // VDPBF16PS.BCST 48(CX), Z16, Z12
	BYTE $0x62; BYTE $0x72; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x69; BYTE $0x0d // VDPBF16PS.BCST 52(CX), Z16, Z13
	BYTE $0x62; BYTE $0x72; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x71; BYTE $0x0e // VDPBF16PS.BCST 56(CX), Z16, Z14
	BYTE $0x62; BYTE $0x72; BYTE $0x7e; BYTE $0x50; BYTE $0x52; BYTE $0x79; BYTE $0x0f // VDPBF16PS.BCST 60(CX), Z16, Z15
	BYTE $0x62; BYTE $0xf2; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x41; BYTE $0x10 // VDPBF16PS.BCST 64(CX), Z17, Z0
	BYTE $0x62; BYTE $0xf2; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x49; BYTE $0x11 // VDPBF16PS.BCST 68(CX), Z17, Z1
	BYTE $0x62; BYTE $0xf2; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x51; BYTE $0x12 // VDPBF16PS.BCST 72(CX), Z17, Z2
	BYTE $0x62; BYTE $0xf2; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x59; BYTE $0x13 // VDPBF16PS.BCST 76(CX), Z17, Z3
	BYTE $0x62; BYTE $0xf2; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x61; BYTE $0x14 // VDPBF16PS.BCST 80(CX), Z17, Z4
	BYTE $0x62; BYTE $0xf2; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x69; BYTE $0x15 // VDPBF16PS.BCST 84(CX), Z17, Z5
	BYTE $0x62; BYTE $0xf2; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x71; BYTE $0x16 // VDPBF16PS.BCST 88(CX), Z17, Z6
	BYTE $0x62; BYTE $0xf2; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x79; BYTE $0x17 // VDPBF16PS.BCST 92(CX), Z17, Z7
	BYTE $0x62; BYTE $0x72; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x41; BYTE $0x18 // VDPBF16PS.BCST 96(CX), Z17, Z8
	BYTE $0x62; BYTE $0x72; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x49; BYTE $0x19 // VDPBF16PS.BCST 100(CX), Z17, Z9
	BYTE $0x62; BYTE $0x72; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x51; BYTE $0x1a // VDPBF16PS.BCST 104(CX), Z17, Z10
	BYTE $0x62; BYTE $0x72; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x59; BYTE $0x1b // VDPBF16PS.BCST 108(CX), Z17, Z11
	BYTE $0x62; BYTE $0x72; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x61; BYTE $0x1c // VDPBF16PS.BCST 112(CX), Z17, Z12
	BYTE $0x62; BYTE $0x72; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x69; BYTE $0x1d // VDPBF16PS.BCST 116(CX), Z17, Z13
	BYTE $0x62; BYTE $0x72; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x71; BYTE $0x1e // VDPBF16PS.BCST 120(CX), Z17, Z14
	BYTE $0x62; BYTE $0x72; BYTE $0x76; BYTE $0x50; BYTE $0x52; BYTE $0x79; BYTE $0x1f // VDPBF16PS.BCST 124(CX), Z17, Z15
	ADDQ $128, AX
	ADDQ $128, CX
	DECQ DI
	JNZ b16step

b16done:
	VMOVDQU32 Z0, 0(R8)
	VMOVDQU32 Z1, 64(R8)
	VMOVDQU32 Z2, 128(R8)
	VMOVDQU32 Z3, 192(R8)
	VMOVDQU32 Z4, 256(R8)
	VMOVDQU32 Z5, 320(R8)
	VMOVDQU32 Z6, 384(R8)
	VMOVDQU32 Z7, 448(R8)
	VMOVDQU32 Z8, 512(R8)
	VMOVDQU32 Z9, 576(R8)
	VMOVDQU32 Z10, 640(R8)
	VMOVDQU32 Z11, 704(R8)
	VMOVDQU32 Z12, 768(R8)
	VMOVDQU32 Z13, 832(R8)
	VMOVDQU32 Z14, 896(R8)
	VMOVDQU32 Z15, 960(R8)
	VZEROUPPER
	RET
