//go:build goexperiment.simd && amd64

#include "textflag.h"

// The constants and steps of math.Exp on amd64 (its FMA path, taken on
// every machine with AVX-512): x·log2(e) rounded to an integer n, the
// argument reduced by n·ln2 in two fused parts and scaled by 1/16, a
// degree-8 polynomial, four squarings of the form y(y+2), and 2^n.
DATA exp64c<>+0(SB)/8, $1.4426950408889634073599246810018920    // log2(e)
DATA exp64c<>+8(SB)/8, $0.69314718055966295651160180568695068359375 // ln2, upper part
DATA exp64c<>+16(SB)/8, $0.28235290563031577122588448175013436025525412068e-12 // ln2, lower part
DATA exp64c<>+24(SB)/8, $0.0625
DATA exp64c<>+32(SB)/8, $2.4801587301587301587e-5
DATA exp64c<>+40(SB)/8, $1.9841269841269841270e-4
DATA exp64c<>+48(SB)/8, $1.3888888888888888889e-3
DATA exp64c<>+56(SB)/8, $8.3333333333333333333e-3
DATA exp64c<>+64(SB)/8, $4.1666666666666666667e-2
DATA exp64c<>+72(SB)/8, $1.6666666666666666667e-1
DATA exp64c<>+80(SB)/8, $0.5
DATA exp64c<>+88(SB)/8, $1.0
DATA exp64c<>+96(SB)/8, $2.0
DATA exp64c<>+104(SB)/8, $-700.0
DATA exp64c<>+112(SB)/8, $700.0
DATA exp64c<>+120(SB)/8, $1023
GLOBL exp64c<>(SB), RODATA, $128

// func expScaledAsm(n8 int, dst, x *float32, m, s float32, sum *float64) int
//
// Registers: CX blocks left, DI dst, SI x, DX sum, AX blocks done; Y14 m,
// Y15 s (float32); Z16–Z31 the constants; X13 the running sum.
TEXT ·expScaledAsm(SB), NOSPLIT, $64-48
	MOVQ n8+0(FP), CX
	MOVQ dst+8(FP), DI
	MOVQ x+16(FP), SI
	VBROADCASTSS m+24(FP), Y14
	VBROADCASTSS s+28(FP), Y15
	MOVQ sum+32(FP), DX
	VMOVSD (DX), X13
	XORQ AX, AX
	LEAQ exp64c<>(SB), BX
	VBROADCASTSD 0(BX), Z16
	VBROADCASTSD 8(BX), Z17
	VBROADCASTSD 16(BX), Z18
	VBROADCASTSD 24(BX), Z19
	VBROADCASTSD 32(BX), Z20
	VBROADCASTSD 40(BX), Z21
	VBROADCASTSD 48(BX), Z22
	VBROADCASTSD 56(BX), Z23
	VBROADCASTSD 64(BX), Z24
	VBROADCASTSD 72(BX), Z25
	VBROADCASTSD 80(BX), Z26
	VBROADCASTSD 88(BX), Z27
	VBROADCASTSD 96(BX), Z28
	VBROADCASTSD 104(BX), Z29
	VBROADCASTSD 112(BX), Z30
	VPBROADCASTQ 120(BX), Z31
	TESTQ CX, CX
	JEQ e64done

e64loop:
	VMOVUPS (SI), Y0
	VSUBPS Y14, Y0, Y0     // x - m (float32)
	VMULPS Y15, Y0, Y0     // (x - m)·s (float32)
	VCVTPS2PD Y0, Z0       // the argument, exactly, as float64
	VCMPPD $0x1D, Z29, Z0, K1 // ≥ -700, ordered
	VCMPPD $0x12, Z30, Z0, K2 // ≤ 700, ordered
	KANDB K1, K2, K1
	KORTESTB K1, K1
	JCC e64done            // a lane out of range or NaN: math.Exp takes it
	VMULPD Z16, Z0, Z1     // x·log2(e)
	VCVTPD2DQ Z1, Y2       // n, rounded to nearest
	VCVTDQ2PD Y2, Z1
	VFNMADD231PD Z17, Z1, Z0 // x - n·ln2u (fused)
	VFNMADD231PD Z18, Z1, Z0 // - n·ln2l (fused)
	VMULPD Z19, Z0, Z0     // /16
	VMOVAPD Z20, Z3
	VFMADD213PD Z21, Z0, Z3
	VFMADD213PD Z22, Z0, Z3
	VFMADD213PD Z23, Z0, Z3
	VFMADD213PD Z24, Z0, Z3
	VFMADD213PD Z25, Z0, Z3
	VFMADD213PD Z26, Z0, Z3
	VFMADD213PD Z27, Z0, Z3
	VMULPD Z3, Z0, Z0
	VADDPD Z28, Z0, Z3
	VMULPD Z3, Z0, Z0
	VADDPD Z28, Z0, Z3
	VMULPD Z3, Z0, Z0
	VADDPD Z28, Z0, Z3
	VMULPD Z3, Z0, Z0
	VADDPD Z28, Z0, Z3
	VFMADD213PD Z27, Z3, Z0 // y(y+2)+1
	VPMOVSXDQ Y2, Z4       // 2^n: (n + 1023) << 52
	VPADDQ Z31, Z4, Z4
	VPSLLQ $52, Z4, Z4
	VMULPD Z4, Z0, Z0
	VCVTPD2PS Z0, Y5       // float32, rounded to nearest
	VMOVUPS Y5, (DI)
	VMOVUPD Z0, 0(SP)      // the sum, in index order
	VADDSD 0(SP), X13, X13
	VADDSD 8(SP), X13, X13
	VADDSD 16(SP), X13, X13
	VADDSD 24(SP), X13, X13
	VADDSD 32(SP), X13, X13
	VADDSD 40(SP), X13, X13
	VADDSD 48(SP), X13, X13
	VADDSD 56(SP), X13, X13
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $8, AX
	DECQ CX
	JNE e64loop

e64done:
	VMOVSD X13, (DX)
	MOVQ AX, ret+40(FP)
	VZEROUPPER
	RET

// func divideByAsm(n8 int, p *float32, d float64)
TEXT ·divideByAsm(SB), NOSPLIT, $0-24
	MOVQ n8+0(FP), CX
	MOVQ p+8(FP), SI
	VBROADCASTSD d+16(FP), Z1
	TESTQ CX, CX
	JEQ divdone

divloop:
	VCVTPS2PD (SI), Z0
	VDIVPD Z1, Z0, Z0
	VCVTPD2PS Z0, Y0
	VMOVUPS Y0, (SI)
	ADDQ $32, SI
	DECQ CX
	JNE divloop

divdone:
	VZEROUPPER
	RET
