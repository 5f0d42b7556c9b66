package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// TensorType is a ggml tensor element type (ggml.h enum ggml_type).
type TensorType uint32

// The tensor types this package reads and writes. Every other ggml type is
// recognised by name only, to say which one a file holds.
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q8_0 TensorType = 8
	BF16 TensorType = 30
)

// ggmlTypeNames names the ggml types by number (ggml.h, enum ggml_type).
var ggmlTypeNames = map[TensorType]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
	10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
	16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S",
	23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16",
	34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}

func (t TensorType) String() string {
	if n, ok := ggmlTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type%d", uint32(t))
}

// q8Block is the number of values in one Q8_0 block; a block is stored as
// an F16 scale d followed by 32 int8 quants q, value i being d·q[i] (ggml's
// block_q8_0, 34 bytes).
const (
	q8Block     = 32
	q8BlockSize = 2 + q8Block
)

// layout gives a supported type's block length (values) and block size (bytes).
func (t TensorType) layout() (values, bytes int, ok bool) {
	switch t {
	case F32:
		return 1, 4, true
	case F16, BF16:
		return 1, 2, true
	case Q8_0:
		return q8Block, q8BlockSize, true
	}
	return 0, 0, false
}

// rowBytes is the storage size of n values of type t (n a multiple of the block length).
func (t TensorType) rowBytes(n uint64) uint64 {
	v, b, _ := t.layout()
	return n / uint64(v) * uint64(b)
}

// decode converts raw tensor bytes of type t into float32 values.
func decode(t TensorType, raw []byte, out []float32) {
	le := binary.LittleEndian
	switch t {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = F16ToF32(le.Uint16(raw[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(le.Uint16(raw[2*i:])) << 16)
		}
	case Q8_0:
		for b := 0; b < len(out)/q8Block; b++ {
			blk := raw[b*q8BlockSize:]
			d := F16ToF32(le.Uint16(blk))
			for i := range q8Block {
				out[b*q8Block+i] = d * float32(int8(blk[2+i]))
			}
		}
	default:
		panic("gguf: decode of unsupported type " + t.String())
	}
}

// encode appends the values x in type t to dst (len(x) a multiple of the block length).
func encode(t TensorType, x []float32, dst []byte) []byte {
	le := binary.LittleEndian
	switch t {
	case F32:
		for _, v := range x {
			dst = le.AppendUint32(dst, math.Float32bits(v))
		}
	case F16:
		for _, v := range x {
			dst = le.AppendUint16(dst, F32ToF16(v))
		}
	case BF16:
		for _, v := range x {
			dst = le.AppendUint16(dst, f32ToBF16(v))
		}
	case Q8_0:
		for b := 0; b < len(x)/q8Block; b++ {
			dst = appendQ8Block(dst, x[b*q8Block:(b+1)*q8Block])
		}
	default:
		panic("gguf: encode of unsupported type " + t.String())
	}
	return dst
}

// appendQ8Block quantizes 32 values as ggml's reference quantizer does:
// d = max|x|/127, q = round(x/d) (half away from zero), d stored as F16.
func appendQ8Block(dst []byte, x []float32) []byte {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(d))
	for _, v := range x {
		dst = append(dst, byte(int8(math.Round(float64(v*id)))))
	}
	return dst
}

// F16ToF32 converts an IEEE 754 half-precision value.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
	case frac == 0:
		return math.Float32frombits(sign)
	}
	// subnormal: frac · 2^-24
	v := float32(frac) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}

// F32ToF16 rounds to the nearest half-precision value (ties to even);
// beyond the F16 range it gives ±Inf, NaN stays NaN.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	frac := b & 0x7fffff
	if exp == 0xff {
		if frac != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 { // subnormal or zero in F16
		if e < -10 {
			return sign
		}
		m := frac | 0x800000 // implicit 1
		shift := uint32(14 - e)
		h := m >> shift
		rem := m & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rem > halfway || (rem == halfway && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | frac>>13
	rem := frac & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to Inf: still correct
	}
	return sign | uint16(h)
}

// f32ToBF16 rounds to the nearest bfloat16 (ties to even), NaN kept quiet.
func f32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}
