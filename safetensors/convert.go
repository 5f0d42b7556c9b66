package safetensors

import (
	"encoding/binary"
	"math"

	"fspo/tensor"
)

// The conversions live in the tensor package, which also runs the weights
// in these types; these names keep the format's own vocabulary.

// BF16ToF32 widens a bfloat16 exactly.
func BF16ToF32(h uint16) float32 { return tensor.BF16ToF32(h) }

// F16ToF32 widens an IEEE half exactly (subnormals, infinities and NaNs included).
func F16ToF32(h uint16) float32 { return tensor.F16ToF32(h) }

// F32ToBF16 rounds to the nearest bfloat16, ties to even; NaN stays NaN.
func F32ToBF16(f float32) uint16 { return tensor.F32ToBF16(f) }

// F32ToF16 rounds to the nearest IEEE half, ties to even; values beyond the
// half range become infinities, NaN stays NaN.
func F32ToF16(f float32) uint16 { return tensor.F32ToF16(f) }

// decode converts little-endian raw elements of dtype d into dst (len(raw)
// = len(dst) × element size).
func decode(d DType, raw []byte, dst []float32) {
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	default:
		panic("safetensors: decode of " + string(d))
	}
}

// encode appends src in dtype d to buf.
func encode(d DType, buf []byte, src []float32) []byte {
	switch d {
	case F32:
		for _, v := range src {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
	case BF16:
		for _, v := range src {
			buf = binary.LittleEndian.AppendUint16(buf, F32ToBF16(v))
		}
	case F16:
		for _, v := range src {
			buf = binary.LittleEndian.AppendUint16(buf, F32ToF16(v))
		}
	default:
		panic("safetensors: encode of " + string(d))
	}
	return buf
}
