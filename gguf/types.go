package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"fspo/tensor"
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

// appendQ8Block quantizes 32 values as ggml's reference quantizer does
// (tensor.QuantizeQ8Block): the F16 scale, then the 32 int8 weights.
func appendQ8Block(dst []byte, x []float32) []byte {
	var q [q8Block]int8
	dst = binary.LittleEndian.AppendUint16(dst, tensor.QuantizeQ8Block(q[:], x))
	for _, v := range q {
		dst = append(dst, byte(v))
	}
	return dst
}

// F16ToF32 converts an IEEE 754 half-precision value exactly.
func F16ToF32(h uint16) float32 { return tensor.F16ToF32(h) }

// F32ToF16 rounds to the nearest half-precision value (ties to even);
// beyond the F16 range it gives ±Inf, NaN stays NaN.
func F32ToF16(f float32) uint16 { return tensor.F32ToF16(f) }

// f32ToBF16 rounds to the nearest bfloat16 (ties to even), NaN kept quiet.
func f32ToBF16(f float32) uint16 { return tensor.F32ToBF16(f) }
