package gguf

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestF16(t *testing.T) {
	for h := range 1 << 16 {
		f := F16ToF32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		if back := F32ToF16(f); back != uint16(h) {
			t.Fatalf("F16 %#04x → %v → %#04x", h, f, back)
		}
	}
	cases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, // 65520 ties up to Inf
		{1 + 0x1p-11, 0x3c00}, {1 + 3*0x1p-11, 0x3c02}, // ties to even
		{0x1p-24, 0x0001}, {0x1p-25, 0x0000}, {1.5 * 0x1p-24, 0x0002}, {0x1p-14, 0x0400},
		{float32(math.Inf(-1)), 0xfc00}, {1e-10, 0},
	}
	for _, c := range cases {
		if got := F32ToF16(c.in); got != c.want {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	if got := f32ToBF16(1 + 0x1p-8); got != 0x3f80 {
		t.Errorf("bf16 tie: %#04x", got)
	}
	if got := f32ToBF16(1 + 3*0x1p-8); got != 0x3f82 {
		t.Errorf("bf16 tie up: %#04x", got)
	}
}

// TestQ8_0Layout decodes a hand-made block (ggml's block_q8_0: F16 scale,
// then 32 int8) and checks the quantizer's choice of scale and rounding.
func TestQ8_0Layout(t *testing.T) {
	raw := binary.LittleEndian.AppendUint16(nil, 0x3800) // d = 0.5
	for i := range 32 {
		raw = append(raw, byte(int8(i-16)))
	}
	out := make([]float32, 32)
	decode(Q8_0, raw, out)
	for i, v := range out {
		if want := 0.5 * float32(i-16); v != want {
			t.Fatalf("value %d = %v, want %v", i, v, want)
		}
	}
	x := make([]float32, 32)
	for i := range x {
		x[i] = float32(i) - 10.2
	}
	enc := encode(Q8_0, x, nil)
	d := x[31] / 127 // max |x| is x[31] = 20.8
	if len(enc) != 34 || binary.LittleEndian.Uint16(enc) != F32ToF16(d) {
		t.Fatalf("block of %d bytes, scale %#04x; want 34 bytes, %#04x", len(enc), binary.LittleEndian.Uint16(enc), F32ToF16(d))
	}
	for i, v := range x {
		if want := int8(math.Round(float64(v / d))); int8(enc[2+i]) != want {
			t.Errorf("quant %d = %d, want %d", i, int8(enc[2+i]), want)
		}
	}
	if q := int8(enc[2+31]); q != 127 {
		t.Errorf("the largest value quantizes to %d, want 127", q)
	}
}

func TestVersion2AndAlignment(t *testing.T) {
	good := smallModel(t)
	v2 := append([]byte(nil), good...)
	v2[4] = 2
	if f, err := Parse("v2.gguf", v2); err != nil || f.Version != 2 {
		t.Errorf("version 2: %v", err)
	}
	// general.alignment 64: the data section and offsets follow it.
	data := rawFile([]KV{{"general.alignment", uint32(64)}}, []rawInfo{{"a", []uint64{2}, 0, 0}, {"b", []uint64{2}, 0, 64}}, 0)
	data = append(data, make([]byte, int(pad(uint64(len(data)), 64))-len(data))...)
	start := len(data)
	data = append(data, make([]byte, 72)...)
	binary.LittleEndian.PutUint32(data[start+64:], math.Float32bits(2.5))
	f, err := Parse("aligned.gguf", data)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Tensor("b").Float32(); got[0] != 2.5 || f.Alignment != 64 {
		t.Errorf("tensor b = %v with alignment %d", got, f.Alignment)
	}
	if _, err := Parse("misaligned.gguf", rawFile([]KV{{"general.alignment", uint32(64)}}, []rawInfo{{"a", []uint64{2}, 0, 32}}, 128)); err == nil {
		t.Error("offset 32 accepted with alignment 64")
	}
}
