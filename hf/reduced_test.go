package hf

import (
	"math"
	"testing"

	"fspo/internal/modeltest"
	"fspo/model"
	"fspo/tensor"
)

// TestLoadAsEqualsConversion: loading a folder straight into F16, BF16 or
// Q8_0 gives the model that loading it as F32 and converting it with
// SetDType gives — the same logits to the bit — for every tiny folder
// (BF16 and F16 files, sharded, tied and untied, qwen2 biases, qwen3 q/k
// norms, llama3 rope scaling); and holds no F32 copy of its matrices.
func TestLoadAsEqualsConversion(t *testing.T) {
	tokens := []int{1, 5, 9, 2, 7, 3}
	logits := func(m *model.Model) []float32 { return modeltest.DecodeLogits(t, m, tokens) } // after each token, decoding one at a time
	defer func(n int) { convertRows = n }(convertRows)
	for _, rows := range []int{256, 8} { // one block of rows per matrix, and several
		convertRows = rows
		testLoadAs(t, logits)
	}
}

func testLoadAs(t *testing.T, logits func(*model.Model) []float32) {
	for _, name := range []string{"llama-gqa-scaled", "llama-gqa-scaled-f16", "llama-untied", "llama-untied-sharded", "qwen2", "qwen3"} {
		for _, dt := range []tensor.DType{tensor.F16, tensor.BF16, tensor.Q8_0} {
			want, _ := mustLoad(t, tiny(name))
			if err := want.SetDType(dt); err != nil {
				t.Fatal(err)
			}
			got, f, err := LoadAs(tiny(name), dt)
			if err != nil {
				t.Fatalf("%s as %s: %v", name, dt, err)
			}
			if got.DType() != dt || f.DType == "" || got.WeightBytes() != want.WeightBytes() || len(got.Fallbacks()) != len(want.Fallbacks()) {
				t.Errorf("%s as %s: dtype %s, %d weight bytes (converted: %d), fallbacks %v / %v", name, dt, got.DType(), got.WeightBytes(), want.WeightBytes(), got.Fallbacks(), want.Fallbacks())
			}
			if got.W.Wq != nil || got.W.Emb != nil {
				t.Errorf("%s as %s: F32 matrices held", name, dt)
			}
			a, b := logits(got), logits(want)
			for i := range a {
				if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
					t.Fatalf("%s as %s: logit %d is %v, converting the F32 model gives %v", name, dt, i, a[i], b[i])
				}
			}
		}
	}
}
