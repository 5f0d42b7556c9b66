package safetensors

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// rawFile builds a file by hand: the length field, header JSON, data.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.safetensors")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A file written byte by byte following the format description (not by
// Write) reads back as the values put in.
func TestOpenHandWritten(t *testing.T) {
	var data []byte
	for _, v := range []float32{1.5, -2, 0.25} {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	data = binary.LittleEndian.AppendUint16(data, 0x3c00) // F16 1.0
	data = binary.LittleEndian.AppendUint16(data, 0xc000) // F16 -2.0
	data = binary.LittleEndian.AppendUint16(data, 0x3f80) // BF16 1.0
	data = binary.LittleEndian.AppendUint16(data, 0x4049) // BF16 3.140625
	hdr := `{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2],"data_offsets":[12,16]},` +
		`"a":{"dtype":"F32","shape":[1,3],"data_offsets":[0,12]},"c":{"dtype":"BF16","shape":[2,1],"data_offsets":[16,20]}}`
	f, err := Open(writeTemp(t, rawFile(hdr, data)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata["format"] != "pt" || len(f.Tensors) != 3 || f.Tensors[0].Name != "a" {
		t.Fatalf("header %+v", f.Header)
	}
	for name, want := range map[string][]float32{"a": {1.5, -2, 0.25}, "b": {1, -2}, "c": {1, 3.140625}} {
		got := make([]float32, len(want))
		if err := f.ReadF32(name, got); err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v, %v; want %v", name, got, err, want)
		}
	}
	if err := f.ReadF32("a", make([]float32, 2)); err == nil || !strings.Contains(err.Error(), "tensor a") {
		t.Errorf("wrong destination size: %v", err)
	}
	if _, err := f.Raw("zz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tensor: %v", err)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.safetensors")
	vals := []float32{0, 1, -1.5, 3.140625, 1e-3, 65504}
	big := func(off int, dst []float32) {
		for i := range dst {
			dst[i] = float32(off + i)
		}
	}
	ts := []Tensor{
		{Name: "f32", DType: F32, Shape: []int{2, 3}, Data: vals},
		{Name: "f16", DType: F16, Shape: []int{6}, Data: vals},
		{Name: "bf16", DType: BF16, Shape: []int{3, 2}, Data: vals},
		{Name: "filled", DType: F32, Shape: []int{chunk + 5}, Fill: big},
	}
	if err := Write(p, map[string]string{"format": "pt"}, ts); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if (len(f.mem)-int(f.DataLen))%8 != 0 {
		t.Errorf("data section starts at %d, not 8-aligned", len(f.mem)-int(f.DataLen))
	}
	for _, x := range ts[:3] {
		got := make([]float32, len(vals))
		if err := f.ReadF32(x.Name, got); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			want := v
			switch x.DType {
			case F16:
				want = F16ToF32(F32ToF16(v))
			case BF16:
				want = BF16ToF32(F32ToBF16(v))
			}
			if got[i] != want {
				t.Errorf("%s[%d] = %v, want %v", x.Name, i, got[i], want)
			}
		}
		if info, _ := f.Info(x.Name); !slices.Equal(info.Shape, x.Shape) {
			t.Errorf("%s shape %v", x.Name, info.Shape)
		}
	}
	got := make([]float32, chunk+5)
	if err := f.ReadF32("filled", got); err != nil || got[chunk+4] != chunk+4 || got[7] != 7 {
		t.Errorf("filled: %v, %v", got[chunk+4], err)
	}
	if err := Write(p, nil, []Tensor{{Name: "x", DType: "I8", Shape: []int{1}, Data: []float32{1}}}); err == nil {
		t.Error("I8 written")
	}
}

func TestOpenErrors(t *testing.T) {
	f32 := func(name string, a, b int) string {
		return `"` + name + `":{"dtype":"F32","shape":[` + itoa((b-a)/4) + `],"data_offsets":[` + itoa(a) + `,` + itoa(b) + `]}`
	}
	data := make([]byte, 16)
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "too short"},
		{"header beyond file", append(binary.LittleEndian.AppendUint64(nil, 1000), "{}"...), "header length 1000 exceeds"},
		{"not json", rawFile("{x", data), "header"},
		{"not an object", rawFile("[]", data), "not a JSON object"},
		{"trailing", rawFile("{} {}", data), "data after"},
		{"past the end", rawFile("{"+f32("w", 0, 20)+"}", data), `tensor "w": data_offsets [0, 20] run past the 16 data bytes`},
		{"overlap", rawFile("{"+f32("a", 0, 8)+","+f32("b", 4, 12)+"}", data), `overlap tensor "a"`},
		{"size mismatch", rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, data), "needs 12"},
		{"reversed", rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}`, data), "not an ordered range"},
		{"unknown dtype", rawFile(`{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`, data), `unknown dtype "Q4"`},
		{"no offsets", rawFile(`{"a":{"dtype":"F32","shape":[1]}}`, data), "no data_offsets"},
		{"negative dim", rawFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, data), "out of range"},
		{"twice", rawFile("{"+f32("a", 0, 8)+","+f32("a", 8, 16)+"}", data), `"a": listed twice`},
		{"bad metadata", rawFile(`{"__metadata__":{"x":1}}`, data), "__metadata__"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTemp(t, tc.file)
			f, err := Open(p)
			if err == nil {
				f.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("error %q; want the file name and %q", err, tc.want)
			}
		})
	}
}

func TestUnsupportedDType(t *testing.T) {
	p := writeTemp(t, rawFile(`{"q":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}`, []byte{1, 2, 3, 4}))
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = f.ReadF32("q", make([]float32, 4))
	if err == nil || !strings.Contains(err.Error(), "tensor q: dtype I8 is not supported") || !strings.Contains(err.Error(), p) {
		t.Errorf("error %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func FuzzHeader(f *testing.F) {
	f.Add(rawFile(`{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(rawFile(`{"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[],"data_offsets":[8,10]}}`, make([]byte, 10)))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b, int64(len(b)))
		if err != nil {
			return
		}
		var end int64
		for _, x := range h.Tensors {
			if x.Begin < end || x.End > h.DataLen || x.End-x.Begin != x.Numel()*int64(x.DType.Size()) {
				t.Fatalf("accepted bad range %+v (data %d)", x, h.DataLen)
			}
			end = x.End
		}
	})
}
