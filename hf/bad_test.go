package hf

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/safetensors"
)

// copyTiny copies a tiny model folder into a temporary one, with its
// config.json fields changed by edit (a nil value deletes the field) and
// its weights (as F32) by editW; either may be nil.
func copyTiny(t *testing.T, name string, edit map[string]any, editW func([]safetensors.Tensor) []safetensors.Tensor) string {
	t.Helper()
	src, dir := tiny(name), t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == ConfigFile && edit != nil {
			var cfg map[string]any
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatal(err)
			}
			for k, v := range edit {
				cfg[k] = v
				if v == nil {
					delete(cfg, k)
				}
			}
			b, _ = json.Marshal(cfg)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if editW != nil {
		path := filepath.Join(dir, WeightsFile)
		f, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var ts []safetensors.Tensor
		for _, x := range f.Tensors {
			data := make([]float32, x.Numel())
			if err := f.ReadF32(x.Name, data); err != nil {
				t.Fatal(err)
			}
			ts = append(ts, safetensors.Tensor{Name: x.Name, DType: safetensors.F32, Shape: x.Shape, Data: data})
		}
		f.Close()
		if err := safetensors.Write(path, nil, editW(ts)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func without(name string) func([]safetensors.Tensor) []safetensors.Tensor {
	return func(ts []safetensors.Tensor) []safetensors.Tensor {
		var out []safetensors.Tensor
		for _, x := range ts {
			if x.Name != name {
				out = append(out, x)
			}
		}
		return out
	}
}

func changed(name string, f func(*safetensors.Tensor)) func([]safetensors.Tensor) []safetensors.Tensor {
	return func(ts []safetensors.Tensor) []safetensors.Tensor {
		for i := range ts {
			if ts[i].Name == name {
				f(&ts[i])
			}
		}
		return ts
	}
}

// badCase is a broken folder and what the error must say besides the folder.
type badCase struct {
	name string
	dir  func(t *testing.T) string
	want []string
}

func cfgEdit(model string, edit map[string]any) func(t *testing.T) string {
	return func(t *testing.T) string { return copyTiny(t, model, edit, nil) }
}

func wEdit(model string, edit func([]safetensors.Tensor) []safetensors.Tensor) func(t *testing.T) string {
	return func(t *testing.T) string { return copyTiny(t, model, nil, edit) }
}

// edited is a copy of a tiny model with its files changed by f.
func edited(model string, f func(t *testing.T, dir string)) func(t *testing.T) string {
	return func(t *testing.T) string {
		dir := copyTiny(t, model, nil, nil)
		f(t, dir)
		return dir
	}
}

// configCases break config.json and the weights' names, shapes and values.
func configCases() []badCase {
	const kproj = "model.layers.1.self_attn.k_proj.weight"
	return []badCase{
		{"no config", func(t *testing.T) string { return t.TempDir() }, []string{"config.json", "no such file"}},
		{"missing field", cfgEdit("llama-untied", map[string]any{"hidden_size": nil}), []string{"config.json", "hidden_size: missing"}},
		{"zero kv heads", cfgEdit("llama-untied", map[string]any{"num_key_value_heads": 0}), []string{"config.json", "num_key_value_heads must be positive, is 0"}},
		{"missing eps", cfgEdit("llama-untied", map[string]any{"rms_norm_eps": nil}), []string{"config.json", "rms_norm_eps: missing"}},
		{"model type", cfgEdit("llama-untied", map[string]any{"model_type": "gpt2"}), []string{"config.json", `model_type "gpt2" is not supported (supported: llama, mistral, qwen2, qwen3)`}},
		{"rope scaling", cfgEdit("llama-gqa-scaled", map[string]any{"rope_scaling": map[string]any{"rope_type": "yarn", "factor": 4}}), []string{"config.json", `rope_scaling.rope_type "yarn" is not supported`}},
		{"rope parameters", cfgEdit("llama-untied", map[string]any{"rope_parameters": map[string]any{"rope_type": "dynamic"}}), []string{`rope_parameters.rope_type "dynamic"`}},
		{"sliding window", cfgEdit("llama-untied", map[string]any{"model_type": "mistral", "sliding_window": 16}), []string{"sliding_window 16"}},
		{"llama bias", cfgEdit("llama-untied", map[string]any{"attention_bias": true}), []string{"attention_bias"}},
		{"activation", cfgEdit("llama-untied", map[string]any{"hidden_act": "gelu"}), []string{`hidden_act "gelu"`}},
		{"torch dtype", cfgEdit("llama-untied", map[string]any{"torch_dtype": "int8"}), []string{`torch_dtype "int8"`}},
		{"vocab", cfgEdit("llama-untied", map[string]any{"vocab_size": 65}), []string{"model.safetensors", "model.embed_tokens.weight: 64 rows, but config.json vocab_size is 65"}},
		{"heads", cfgEdit("llama-untied", map[string]any{"num_key_value_heads": 3}), []string{"config.json", "n_heads 4 is not a multiple of n_kv_heads 3"}},
		{"huge config", cfgEdit("llama-untied", map[string]any{"hidden_size": 1 << 20, "intermediate_size": 1 << 20, "vocab_size": 1 << 20}),
			[]string{"model.embed_tokens.weight: 64 rows, but config.json vocab_size is 1048576"}}, // fails before allocating 16 TB
		{"tensor missing", wEdit("llama-untied", without("model.layers.1.mlp.up_proj.weight")), []string{"model.safetensors", "model.layers.1.mlp.up_proj.weight: missing"}},
		{"lm_head missing", wEdit("llama-untied", without("lm_head.weight")), []string{"lm_head.weight: missing"}},
		{"shape", wEdit("llama-untied", changed(kproj, func(x *safetensors.Tensor) { x.Shape = []int{16, 64} })), []string{"model.safetensors", kproj + ": shape [16 64], config.json implies [32 32]"}},
		{"nan", wEdit("qwen2", changed("model.layers.0.self_attn.v_proj.bias", func(x *safetensors.Tensor) { x.Data[3] = float32(math.NaN()) })), []string{"model.safetensors", "model.layers.0.self_attn.v_proj.bias: element 3 is NaN"}},
		{"inf", wEdit("qwen3", changed("model.norm.weight", func(x *safetensors.Tensor) { x.Data[0] = float32(math.Inf(-1)) })), []string{"model.norm.weight: element 0 is -Inf"}},
		{"extra tensor", wEdit("llama-untied", func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.Tensor{Name: "model.layers.0.self_attn.o_proj.bias", DType: safetensors.F32, Shape: []int{32}, Data: make([]float32, 32)})
		}), []string{"model.layers.0.self_attn.o_proj.bias: not part of"}},
	}
}

// fileCases break the safetensors files, the shard index and generation_config.json.
func fileCases() []badCase {
	return []badCase{
		{"truncated", edited("llama-untied", func(t *testing.T, dir string) {
			p := filepath.Join(dir, WeightsFile)
			st, _ := os.Stat(p)
			if err := os.Truncate(p, st.Size()-100); err != nil {
				t.Fatal(err)
			}
		}), []string{"model.safetensors", "run past the"}},
		{"header beyond file", edited("llama-untied", func(t *testing.T, dir string) {
			p := filepath.Join(dir, WeightsFile)
			b, _ := os.ReadFile(p)
			binary.LittleEndian.PutUint64(b, uint64(len(b)))
			os.WriteFile(p, b, 0o644)
		}), []string{"model.safetensors", "header length"}},
		{"unsupported dtype", edited("llama-untied", func(t *testing.T, dir string) {
			hdr := `{"model.embed_tokens.weight":{"dtype":"I8","shape":[64,32],"data_offsets":[0,2048]}}`
			b := append(binary.LittleEndian.AppendUint64(nil, uint64(len(hdr))), hdr...)
			os.WriteFile(filepath.Join(dir, WeightsFile), append(b, make([]byte, 2048)...), 0o644)
		}), []string{"model.safetensors", "tensor model.embed_tokens.weight: dtype I8 is not supported (supported: F32, F16, BF16)"}},
		{"no weights", edited("llama-untied", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, WeightsFile))
		}), []string{"no weights (want model.safetensors or model.safetensors.index.json)"}},
		{"shard missing", edited("llama-untied-sharded", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "model-00002-of-00002.safetensors"))
		}), []string{IndexFile, "model-00002-of-00002.safetensors", "no such file"}},
		{"tensor not in shard", edited("llama-untied-sharded", func(t *testing.T, dir string) {
			p := filepath.Join(dir, IndexFile)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), `"model.norm.weight": "model-00002`, `"model.norm.weight": "model-00001`, 1)), 0o644)
		}), []string{IndexFile, `weight_map["model.norm.weight"]: tensor not in shard`}},
		{"shard outside", edited("llama-untied-sharded", func(t *testing.T, dir string) {
			p := filepath.Join(dir, IndexFile)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), `"model-00002-of-00002.safetensors"`, `"../x.safetensors"`, 1)), 0o644)
		}), []string{IndexFile, "is not a file name in the folder"}},
		{"bad generation config", edited("llama-gqa-scaled", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, GenerationConfigFile), []byte(`{"eos_token_id": {}}`), 0o644)
		}), []string{GenerationConfigFile, "eos_token_id"}},
	}
}

func TestBadInput(t *testing.T) {
	for _, c := range append(configCases(), fileCases()...) {
		t.Run(c.name, func(t *testing.T) {
			dir := c.dir(t)
			_, _, err := Load(dir)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, s := range append(c.want, dir) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

// What the loader accepts besides the generated folders: Mistral without a
// sliding window, the rope_parameters spelling of newer transformers, an
// lm_head beside tied embeddings, a RoPE frequency table in the file.
func TestLoadVariants(t *testing.T) {
	for _, dir := range []string{
		copyTiny(t, "llama-untied", map[string]any{"model_type": "mistral", "sliding_window": nil}, nil),
		copyTiny(t, "llama-untied", map[string]any{"model_type": "mistral", "sliding_window": 256}, nil),
		copyTiny(t, "llama-gqa-scaled", map[string]any{"rope_scaling": nil, "rope_theta": nil, "torch_dtype": nil, "dtype": "bfloat16",
			"rope_parameters": map[string]any{"rope_type": "llama3", "rope_theta": 10000, "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 64}}, nil),
		copyTiny(t, "qwen2", nil, func(ts []safetensors.Tensor) []safetensors.Tensor {
			var emb safetensors.Tensor
			for _, x := range ts {
				if x.Name == "model.embed_tokens.weight" {
					emb = x
				}
			}
			emb.Name = "lm_head.weight"
			return append(ts, emb, safetensors.Tensor{Name: "model.layers.0.self_attn.rotary_emb.inv_freq", DType: safetensors.F32, Shape: []int{4}, Data: make([]float32, 4)})
		}),
	} {
		if _, _, err := Load(dir); err != nil {
			t.Error(err)
		}
	}
	a, _ := mustLoad(t, tiny("llama-gqa-scaled"))
	b, _ := mustLoad(t, copyTiny(t, "llama-gqa-scaled", map[string]any{"rope_scaling": nil, "rope_theta": nil,
		"rope_parameters": map[string]any{"rope_type": "llama3", "rope_theta": 10000, "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 64}}, nil))
	if *a.Config.RopeScaling != *b.Config.RopeScaling || a.Config.RopeTheta != b.Config.RopeTheta {
		t.Errorf("rope_parameters read as %+v %+v, want %+v %+v", b.Config.RopeScaling, b.Config.RopeTheta, a.Config.RopeScaling, a.Config.RopeTheta)
	}
}

func FuzzLoadConfig(f *testing.F) {
	for _, name := range []string{"llama-gqa-scaled", "llama-untied", "qwen2", "qwen3"} {
		b, err := os.ReadFile(filepath.Join(tiny(name), ConfigFile))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, js []byte) {
		c, _, err := ParseConfig(js)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("accepted a config the engine rejects: %v", verr)
			}
		}
	})
}
