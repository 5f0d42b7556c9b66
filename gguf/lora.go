package gguf

import (
	"fmt"
	"slices"

	"fspo/model"
)

// LoRA and LoRATensor are the engine's adapter types (model.LoRA).
type (
	LoRA       = model.LoRA
	LoRATensor = model.LoRATensor
)

// LoRATargets maps the adapter target names to llama.cpp's tensor names.
var LoRATargets = map[string]string{
	"q": "attn_q.weight", "k": "attn_k.weight", "v": "attn_v.weight", "o": "attn_output.weight",
	"gate": "ffn_gate.weight", "up": "ffn_up.weight", "down": "ffn_down.weight",
}

// WriteLoRA writes a llama.cpp LoRA adapter for a base model of config c
// (general.type = adapter, adapter.type = lora, adapter.lora.alpha; for each
// adapted tensor NAME, NAME.lora_a with ggml dims [in, rank] and
// NAME.lora_b with [rank, out], both F32), atomically. For NeoX-style
// architectures B's query/key rows are permuted as the base weights are.
func WriteLoRA(path string, c model.Config, l LoRA) error {
	w, err := LoRAWriter(c, l)
	if err != nil {
		return fmt.Errorf("write gguf lora %s: %w", path, err)
	}
	return w.WriteFile(path)
}

// LoRAWriter prepares what WriteLoRA writes.
func LoRAWriter(c model.Config, l LoRA) (*Writer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := l.Validate(c); err != nil {
		return nil, err
	}
	arch := c.Arch
	if arch == "" {
		arch = "llama"
	}
	w := &Writer{}
	w.Add("general.architecture", arch)
	w.Add("general.type", "adapter")
	w.Add("adapter.type", "lora")
	w.Add("adapter.lora.alpha", l.Alpha)
	for _, t := range l.Tensors {
		if err := addLoRATensor(w, c, l.Rank, t); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func addLoRATensor(w *Writer, c model.Config, rank int, t LoRATensor) error {
	name, ok := LoRATargets[t.Target]
	if !ok {
		return fmt.Errorf("lora target %q is not one of q, k, v, o, gate, up, down", t.Target)
	}
	if t.Layer < 0 || t.Layer >= c.Layers {
		return fmt.Errorf("lora target %s: layer %d outside 0..%d", t.Target, t.Layer, c.Layers-1)
	}
	i := slices.IndexFunc(specs, func(s tensorSpec) bool { return s.name == name })
	s := specs[i]
	shape := s.shape(c)
	out, in := shape[0], shape[1]
	if len(t.A) != rank*in || len(t.B) != out*rank {
		return fmt.Errorf("lora layer %d %s: A has %d values, B %d; want %d×%d and %d×%d", t.Layer, t.Target, len(t.A), len(t.B), rank, in, out, rank)
	}
	b := t.B
	if hs := ropeHeadSize(c, s); hs > 0 {
		b = slices.Clone(b)
		model.InterleavedToHalf(b, hs, rank)
	}
	base := s.fileName(t.Layer)
	if err := w.AddTensor(base+".lora_a", F32, []int{rank, in}, t.A); err != nil {
		return err
	}
	return w.AddTensor(base+".lora_b", F32, []int{out, rank}, b)
}
