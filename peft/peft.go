// Package peft writes and reads LoRA adapters as Hugging Face PEFT adapter
// folders (adapter_config.json + adapter_model.safetensors), the form
// transformers' PeftModel and vLLM's --enable-lora load: module names as
// transformers' Llama/Qwen models name them, lora_A (rank, in) and lora_B
// (out, rank) in float32, the query and key rows of lora_B in transformers'
// half RoPE layout (the engine keeps them interleaved, as its weights).
package peft

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"fspo/atomicfile"
	"fspo/model"
	"fspo/safetensors"
)

// File names of an adapter folder.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
)

// modules maps the engine's LoRA targets to transformers' module paths
// below a layer.
var modules = map[string]string{
	"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
	"gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj",
}

// Config is adapter_config.json (the fields a LoRA adapter needs).
type Config struct {
	PeftType          string   `json:"peft_type"`
	TaskType          string   `json:"task_type"`
	BaseModel         string   `json:"base_model_name_or_path"`
	R                 int      `json:"r"`
	LoraAlpha         float64  `json:"lora_alpha"`
	LoraDropout       float64  `json:"lora_dropout"`
	TargetModules     []string `json:"target_modules"`
	Bias              string   `json:"bias"`
	FanInFanOut       bool     `json:"fan_in_fan_out"`
	InferenceMode     bool     `json:"inference_mode"`
	UseRSLoRA         bool     `json:"use_rslora"`
	ModulesToSave     []string `json:"modules_to_save"`
	LayersToTransform []int    `json:"layers_to_transform"`
}

// Write writes l, an adapter of a model of configuration c, as a PEFT
// folder dir; base names the base model (base_model_name_or_path).
func Write(dir string, c model.Config, l *model.LoRA, base string) error {
	if err := l.Validate(c); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg := Config{PeftType: "LORA", TaskType: "CAUSAL_LM", BaseModel: base, R: l.Rank, LoraAlpha: float64(l.Alpha),
		Bias: "none", InferenceMode: true}
	for _, t := range l.Targets() {
		mod := modules[t]
		cfg.TargetModules = append(cfg.TargetModules, mod[strings.LastIndexByte(mod, '.')+1:]) // q_proj, …
	}
	js, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	var ts []safetensors.Tensor
	hs := c.HeadSize()
	for _, t := range l.Tensors {
		_, out, in, _ := c.LoRAMatrix(&model.Params{}, t.Target)
		name := fmt.Sprintf("base_model.model.model.layers.%d.%s.", t.Layer, modules[t.Target])
		b := t.B
		if t.Target == "q" || t.Target == "k" {
			b = slices.Clone(b)
			model.InterleavedToHalf(b, hs, l.Rank)
		}
		ts = append(ts,
			safetensors.Tensor{Name: name + "lora_A.weight", DType: safetensors.F32, Shape: []int{l.Rank, in}, Data: t.A},
			safetensors.Tensor{Name: name + "lora_B.weight", DType: safetensors.F32, Shape: []int{out, l.Rank}, Data: b})
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	if err := safetensors.Write(filepath.Join(dir, WeightsFile), map[string]string{"format": "pt"}, ts); err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, ConfigFile), append(js, '\n'))
}

// ParseConfig reads adapter_config.json's bytes, accepting only what the
// engine computes: a LoRA of positive rank on the Llama/Qwen projection
// modules, without bias, dropout-free at inference, not rank-stabilized.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", ConfigFile, err)
	}
	switch {
	case c.PeftType != "LORA":
		return c, fmt.Errorf("%s: peft_type %q: only LORA adapters are supported", ConfigFile, c.PeftType)
	case c.R <= 0:
		return c, fmt.Errorf("%s: r %d must be positive", ConfigFile, c.R)
	case !(c.LoraAlpha > 0):
		return c, fmt.Errorf("%s: lora_alpha %g must be positive", ConfigFile, c.LoraAlpha)
	case c.Bias != "" && c.Bias != "none":
		return c, fmt.Errorf("%s: bias %q: only \"none\" is supported", ConfigFile, c.Bias)
	case c.FanInFanOut:
		return c, fmt.Errorf("%s: fan_in_fan_out: only Linear (not Conv1D) modules are supported", ConfigFile)
	case c.UseRSLoRA:
		return c, fmt.Errorf("%s: use_rslora: only the alpha/r scale is supported", ConfigFile)
	case len(c.ModulesToSave) > 0:
		return c, fmt.Errorf("%s: modules_to_save %v: full modules besides the adapter are not supported", ConfigFile, c.ModulesToSave)
	}
	return c, nil
}

// keyRE matches a PEFT tensor name of a Llama/Qwen model.
var keyRE = regexp.MustCompile(`^base_model\.model\.model\.layers\.(\d+)\.((?:self_attn|mlp)\.[a-z_]+_proj)\.lora_([AB])\.weight$`)

// ParseKey splits a tensor name into its layer, engine target and part
// ("A" or "B").
func ParseKey(name string) (layer int, target, part string, err error) {
	m := keyRE.FindStringSubmatch(name)
	if m == nil {
		return 0, "", "", fmt.Errorf("%s: tensor %q is not base_model.model.model.layers.N.MODULE.lora_A|lora_B.weight", WeightsFile, name)
	}
	layer, err = strconv.Atoi(m[1])
	if err != nil || layer > 1<<20 {
		return 0, "", "", fmt.Errorf("%s: tensor %q: layer %q out of range", WeightsFile, name, m[1])
	}
	for t, mod := range modules {
		if mod == m[2] {
			return layer, t, m[3], nil
		}
	}
	return 0, "", "", fmt.Errorf("%s: tensor %q: module %s is not a projection the engine adapts", WeightsFile, name, m[2])
}

// Read reads a PEFT folder written for a model of configuration c.
func Read(dir string, c model.Config) (*model.LoRA, Config, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, Config{}, err
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, cfg, fmt.Errorf("%s: %w", dir, err)
	}
	f, err := safetensors.Open(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, cfg, err
	}
	defer f.Close()
	l := &model.LoRA{Rank: cfg.R, Alpha: float32(cfg.LoraAlpha)}
	idx := map[[2]any]int{}
	for _, info := range f.Tensors {
		name := info.Name
		layer, target, part, err := ParseKey(name)
		if err != nil {
			return nil, cfg, fmt.Errorf("%s: %w", dir, err)
		}
		_, out, in, _ := c.LoRAMatrix(&model.Params{}, target)
		rows, cols := cfg.R, in
		if part == "B" {
			rows, cols = out, cfg.R
		}
		if !slices.Equal(info.Shape, []int{rows, cols}) {
			return nil, cfg, fmt.Errorf("%s: %s: tensor %s has shape %v, want [%d %d] for this base model and r %d", dir, WeightsFile, name, info.Shape, rows, cols, cfg.R)
		}
		data := make([]float32, rows*cols)
		if err := f.ReadF32(name, data); err != nil {
			return nil, cfg, fmt.Errorf("%s: %w", dir, err)
		}
		key := [2]any{layer, target}
		k, ok := idx[key]
		if !ok {
			k = len(l.Tensors)
			idx[key] = k
			l.Tensors = append(l.Tensors, model.LoRATensor{Layer: layer, Target: target})
		}
		if part == "A" {
			l.Tensors[k].A = data
		} else {
			if target == "q" || target == "k" {
				model.HalfToInterleaved(data, c.HeadSize(), cfg.R)
			}
			l.Tensors[k].B = data
		}
	}
	sort.Slice(l.Tensors, func(i, j int) bool {
		a, b := l.Tensors[i], l.Tensors[j]
		return a.Layer < b.Layer || a.Layer == b.Layer && slices.Index(model.LoRATargets, a.Target) < slices.Index(model.LoRATargets, b.Target)
	})
	if err := l.Validate(c); err != nil {
		return nil, cfg, fmt.Errorf("%s: %w", dir, err)
	}
	return l, cfg, nil
}

// readRaw reads every tensor of a safetensors file as float32, by name.
func readRaw(path string) (map[string][]float32, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]float32{}
	for _, info := range f.Tensors {
		data := make([]float32, info.Numel())
		if err := f.ReadF32(info.Name, data); err != nil {
			return nil, err
		}
		out[info.Name] = data
	}
	return out, nil
}
