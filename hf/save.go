package hf

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"fspo/atomicfile"
	"fspo/model"
	"fspo/safetensors"
)

// copiedFiles are the files Save copies from the source folder unchanged.
var copiedFiles = []string{TokenizerFile, TokenizerConfigFile, GenerationConfigFile, "special_tokens_map.json", "tokenizer.model",
	"tok512.bin", "tokenizer.bin"} // the last two: llama2.c tokenizers of converted llama2.c models

// Save writes m as a Hugging Face folder in dir: config.json (the source
// folder's fields, those the engine's config determines rewritten),
// model.safetensors in dtype (the source's when empty; F32 without a
// source) with transformers' key names and RoPE layout, and the source's
// tokenizer and generation files. src may be nil.
func Save(dir string, m *model.Model, src *Folder, dtype safetensors.DType) error {
	if dtype == "" {
		dtype = safetensors.F32
		if src != nil && src.DType != "" {
			dtype = src.DType
		}
	}
	if !dtype.Supported() {
		return fmt.Errorf("hf save %s: dtype %s is not supported (supported: F32, F16, BF16)", dir, dtype)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("hf save: %w", err)
	}
	cfg, err := configJSON(m.Config, src, dtype)
	if err != nil {
		return fmt.Errorf("hf save %s: %w", dir, err)
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, ConfigFile), cfg); err != nil {
		return fmt.Errorf("hf save: %w", err)
	}
	if err := safetensors.Write(filepath.Join(dir, WeightsFile), map[string]string{"format": "pt"}, tensors(m, dtype)); err != nil {
		return fmt.Errorf("hf save: %w", err)
	}
	// A stale index beside the new single file would name other weights.
	if err := os.Remove(filepath.Join(dir, IndexFile)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("hf save: %w", err)
	}
	if src == nil || sameDir(src.Dir, dir) {
		return nil
	}
	for _, name := range copiedFiles {
		if err := copyFile(filepath.Join(src.Dir, name), filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("hf save: %w", err)
		}
	}
	return nil
}

// tensors lists m's weights under Hugging Face names, sorted by name (as
// the safetensors Python package orders them), query and key rows back in
// the half RoPE layout.
func tensors(m *model.Model, dtype safetensors.DType) []safetensors.Tensor {
	es := entries(m.Config, m.W)
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	ts := make([]safetensors.Tensor, len(es))
	for i, e := range es {
		ts[i] = safetensors.Tensor{Name: e.name, DType: dtype, Shape: e.shape, Data: e.dst}
		if e.hs > 0 {
			ts[i].Data, ts[i].Fill = nil, halfLayout(e.dst, e.hs*e.cols(), func(head []float32) { model.InterleavedToHalf(head, e.hs, e.cols()) })
		}
	}
	return ts
}

// halfLayout returns a safetensors Fill giving w with each block of n
// values (one head) permuted by perm, without copying w whole.
func halfLayout(w []float32, n int, perm func([]float32)) func(off int, dst []float32) {
	head := make([]float32, n)
	return func(off int, dst []float32) {
		for done := 0; done < len(dst); {
			i := off + done
			start := i / n * n
			copy(head, w[start:start+n])
			perm(head)
			done += copy(dst[done:], head[i-start:])
		}
	}
}

// configJSON is config.json for c: the source's fields unchanged when they
// describe c (only the dtype set), otherwise with the fields c determines
// rewritten; indented with sorted keys, as transformers writes it.
func configJSON(c model.Config, src *Folder, dtype safetensors.DType) ([]byte, error) {
	out := map[string]any{}
	dtypeField := "torch_dtype"
	if src != nil {
		for k, v := range src.Config {
			out[k] = v
		}
		if _, ok := src.Config["dtype"]; ok && src.Config["torch_dtype"] == nil {
			dtypeField = "dtype"
		}
	}
	out[dtypeField] = torchDType(dtype)
	if src == nil || !describes(src, c) {
		setConfig(out, c, src)
	}
	js, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(js, '\n'), nil
}

// ConfigJSON is the config.json Save writes for c without a source folder.
func ConfigJSON(c model.Config, dtype safetensors.DType) ([]byte, error) {
	return configJSON(c, nil, dtype)
}

// describes reports whether src's config.json parses to c.
func describes(src *Folder, c model.Config) bool {
	js, err := json.Marshal(src.Config)
	if err != nil {
		return false
	}
	got, _, err := ParseConfig(js)
	return err == nil && reflect.DeepEqual(got, c)
}

// setConfig writes the fields of config.json that c determines into out.
func setConfig(out map[string]any, c model.Config, src *Folder) {
	modelType := c.Arch
	if modelType == "" {
		modelType = "llama"
	}
	if src != nil {
		modelType = src.ModelType
	}
	set := map[string]any{
		"model_type": modelType, "hidden_size": c.Dim, "intermediate_size": c.Hidden,
		"num_hidden_layers": c.Layers, "num_attention_heads": c.Heads, "num_key_value_heads": c.KVHeads,
		"head_dim": c.HeadSize(), "vocab_size": c.Vocab, "max_position_embeddings": c.SeqLen,
		"rms_norm_eps": c.NormEps, "tie_word_embeddings": c.SharedClassifier, "hidden_act": "silu",
		"architectures": []string{architecture(modelType)}, "attention_bias": c.QKVBias,
	}
	if _, ok := out["rope_parameters"]; ok {
		delete(out, "rope_parameters") // rewritten in the older spelling below
	}
	set["rope_theta"] = c.RopeTheta
	set["rope_scaling"] = ropeScalingJSON(c.RopeScaling)
	for k, v := range set {
		out[k] = v
	}
}

func ropeScalingJSON(r *model.RopeScaling) any {
	if r == nil {
		return nil
	}
	return map[string]any{"rope_type": r.Type, "factor": r.Factor, "low_freq_factor": r.LowFreqFactor,
		"high_freq_factor": r.HighFreqFactor, "original_max_position_embeddings": r.OriginalMaxPositions}
}

// architecture is transformers' model class for a model_type.
func architecture(modelType string) string {
	switch modelType {
	case "qwen2":
		return "Qwen2ForCausalLM"
	case "qwen3":
		return "Qwen3ForCausalLM"
	case "mistral":
		return "MistralForCausalLM"
	}
	return "LlamaForCausalLM"
}

func sameDir(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// copyFile copies src to dst atomically; a missing src is not an error.
func copyFile(src, dst string) error {
	if err := atomicfile.Copy(src, dst); !os.IsNotExist(err) {
		return err
	}
	return nil
}
