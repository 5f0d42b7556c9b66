package hf

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"fspo/model"
	"fspo/safetensors"
)

// tiny is the folder of the generated test models (go run ./hf/testdata/gen).
func tiny(name string) string { return filepath.Join("testdata", "tiny", name) }

func mustLoad(t *testing.T, dir string) (*model.Model, *Folder) {
	t.Helper()
	m, f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m, f
}

func TestLoadTiny(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dtype   safetensors.DType
		arch    string
		kv, hs  int
		tied    bool
		bias    bool
		qknorm  bool
		scaling bool
	}{
		{"llama-gqa-scaled", safetensors.BF16, "llama", 2, 8, true, false, false, true},
		{"llama-gqa-scaled-f16", safetensors.F16, "llama", 2, 8, true, false, false, true},
		{"llama-untied", safetensors.BF16, "llama", 4, 8, false, false, false, false},
		{"llama-untied-sharded", safetensors.BF16, "llama", 4, 8, false, false, false, false},
		{"qwen2", safetensors.BF16, "qwen2", 2, 8, true, true, false, false},
		{"qwen3", safetensors.BF16, "qwen3", 2, 16, true, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, f := mustLoad(t, tiny(tc.name))
			c := m.Config
			if f.DType != tc.dtype || c.Arch != tc.arch || c.KVHeads != tc.kv || c.HeadSize() != tc.hs ||
				c.SharedClassifier != tc.tied || c.QKVBias != tc.bias || c.QKNorm != tc.qknorm || (c.RopeScaling != nil) != tc.scaling {
				t.Errorf("dtype %s, config %+v; want %+v", f.DType, c, tc)
			}
			if c.Dim != 32 || c.Layers != 2 || c.Heads != 4 || c.Vocab != 64 || c.SeqLen != 256 || c.Hidden != 64 {
				t.Errorf("config %+v", c)
			}
		})
	}
}

// The F16 copy holds the same values as the BF16 model (the generator draws
// values both hold exactly), and the sharded copy the same as the single file.
func TestDTypesAndShardsAgree(t *testing.T) {
	for _, pair := range [][2]string{{"llama-gqa-scaled", "llama-gqa-scaled-f16"}, {"llama-untied", "llama-untied-sharded"}} {
		a, _ := mustLoad(t, tiny(pair[0]))
		b, _ := mustLoad(t, tiny(pair[1]))
		ta, tb := a.W.Tensors(a.Config), b.W.Tensors(b.Config)
		for i := range ta {
			if !slices.Equal(ta[i].Data, tb[i].Data) {
				t.Errorf("%s vs %s: tensor %s differs", pair[0], pair[1], ta[i].Name)
			}
		}
	}
}

func TestGenerationConfig(t *testing.T) {
	_, f := mustLoad(t, tiny("llama-gqa-scaled"))
	g := f.Generation
	if g == nil || !slices.Equal(g.BOS, []int{1}) || !slices.Equal(g.EOS, []int{2, 3}) || g.PAD != nil {
		t.Fatalf("generation config %+v", g)
	}
	if f.GenerationConfigPath != filepath.Join(tiny("llama-gqa-scaled"), GenerationConfigFile) || f.Tokenizer != "" {
		t.Errorf("paths %q %q", f.GenerationConfigPath, f.Tokenizer)
	}
	for _, tc := range []struct {
		js   string
		want []int
	}{{`{"eos_token_id": 7}`, []int{7}}, {`{"eos_token_id": [128001, 128008, 128009]}`, []int{128001, 128008, 128009}}, {`{}`, nil}} {
		g, err := ParseGenerationConfig([]byte(tc.js))
		if err != nil || !slices.Equal(g.EOS, tc.want) {
			t.Errorf("%s: %+v, %v; want eos %v", tc.js, g, err, tc.want)
		}
	}
	if _, err := ParseGenerationConfig([]byte(`{"eos_token_id": "x"}`)); err == nil {
		t.Error("string eos_token_id accepted")
	}
}

// finite guards the weights against a loader that leaves NaNs or zeros.
func TestLoadedWeightsNonZero(t *testing.T) {
	m, _ := mustLoad(t, tiny("qwen3"))
	for _, x := range m.W.Tensors(m.Config) {
		var sum float64
		for _, v := range x.Data {
			sum += math.Abs(float64(v))
		}
		if sum == 0 || math.IsNaN(sum) {
			t.Errorf("tensor %s: sum |w| = %v", x.Name, sum)
		}
	}
}
