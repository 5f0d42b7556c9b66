package gguf_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"fspo/gguf"
	"fspo/gguf/internal/reftest"
	"fspo/internal/modeltest"
	"fspo/model"
	"fspo/tensor"
)

// TestLoadAsEqualsConversion: a GGUF file (F32, F16, BF16 or Q8_0; llama
// with GQA and llama3 rope scaling, qwen2 biases and qwen3 q/k norms with
// NeoX RoPE, and stories260K, whose 172-wide rows Q8_0 keeps in F16) loaded
// straight into F16, BF16 or Q8_0 computes the logits, to the bit, of the
// file loaded as F32 and converted with SetDType — without an F32 copy of
// its matrices.
func TestLoadAsEqualsConversion(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for name := range reftest.RandomConfigs {
		path, _, err := reftest.Random(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		m, meta, err := gguf.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
		for _, typ := range []gguf.TensorType{gguf.F16, gguf.BF16, gguf.Q8_0} {
			out := filepath.Join(dir, name+"-"+typ.String()+".gguf")
			if err := gguf.WriteModel(out, m.Config, m.W, meta, gguf.WriteOptions{Type: typ, Name: name}); err != nil {
				t.Fatal(err)
			}
			files = append(files, out)
		}
	}
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
		sub := filepath.Join(dir, "stories-"+typ.String())
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		path, _, _, err := reftest.Stories(sub, typ)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	tokens := []int{1, 50, 300, 7, 2, 99, 12}
	logits := func(m *model.Model) []float32 { return modeltest.DecodeLogits(t, m, tokens) } // after each token, decoding one at a time
	for _, path := range files {
		for _, dt := range []tensor.DType{tensor.F16, tensor.BF16, tensor.Q8_0} {
			want, _, err := gguf.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := want.SetDType(dt); err != nil {
				t.Fatalf("%s as %s: %v", filepath.Base(path), dt, err)
			}
			got, tok, err := gguf.LoadAs(path, dt)
			if err != nil {
				t.Fatalf("%s as %s: %v", filepath.Base(path), dt, err)
			}
			if tok == nil || got.DType() != dt || got.W.Emb != nil || got.WeightBytes() != want.WeightBytes() || len(got.Fallbacks()) != len(want.Fallbacks()) {
				t.Errorf("%s as %s: dtype %s, F32 embedding %v, %d weight bytes (converted %d), fallbacks %v / %v", filepath.Base(path), dt,
					got.DType(), got.W.Emb != nil, got.WeightBytes(), want.WeightBytes(), got.Fallbacks(), want.Fallbacks())
			}
			a, b := logits(got), logits(want)
			for i := range a {
				if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
					t.Fatalf("%s as %s: logit %d is %v, converting the F32 model gives %v", filepath.Base(path), dt, i, a[i], b[i])
				}
			}
		}
	}
}
