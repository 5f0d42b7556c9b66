package peft

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"fspo/model"
	"fspo/safetensors"
)

func tinyConfig() model.Config {
	return model.Config{Dim: 16, Hidden: 24, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 37, SeqLen: 32, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 10000}
}

func randomLoRA(t *testing.T, c model.Config, targets []string) *model.LoRA {
	l, err := model.NewLoRA(c, 3, 6, targets, 1)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 3))
	for _, tt := range l.Tensors {
		for i := range tt.B {
			tt.B[i] = float32(rng.NormFloat64())
		}
	}
	return l
}

// TestRoundTrip: an adapter written as a PEFT folder reads back equal, with
// PEFT's key names, shapes, r, alpha and target modules.
func TestRoundTrip(t *testing.T) {
	c := tinyConfig()
	l := randomLoRA(t, c, []string{"q", "k", "v", "o", "gate", "up", "down"})
	dir := t.TempDir()
	if err := Write(dir, c, l, "org/base"); err != nil {
		t.Fatal(err)
	}
	back, cfg, err := Read(dir, c)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.R != 3 || cfg.LoraAlpha != 6 || cfg.BaseModel != "org/base" || !slices.Equal(cfg.TargetModules, []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}) {
		t.Errorf("config %+v", cfg)
	}
	if back.Rank != l.Rank || back.Alpha != l.Alpha || len(back.Tensors) != len(l.Tensors) {
		t.Fatalf("read %d tensors rank %d alpha %g", len(back.Tensors), back.Rank, back.Alpha)
	}
	for i, tt := range l.Tensors {
		b := back.Tensors[i]
		if b.Layer != tt.Layer || b.Target != tt.Target || !slices.Equal(b.A, tt.A) || !slices.Equal(b.B, tt.B) {
			t.Errorf("layer %d %s changed in the round trip", tt.Layer, tt.Target)
		}
	}
	f, err := safetensors.Open(filepath.Join(dir, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, ok := f.Info("base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight")
	if !ok || !slices.Equal(info.Shape, []int{8, 3}) {
		t.Errorf("k_proj lora_B: %v %v", ok, info.Shape)
	}
}

// TestMergeInHFLayout: what PEFT computes from the folder — the Hugging Face
// weight (query and key rows in the half RoPE layout) plus (alpha/r)·B·A —
// is the Hugging Face layout of the engine's merged weight.
func TestMergeInHFLayout(t *testing.T) {
	c := tinyConfig()
	l := randomLoRA(t, c, []string{"q", "k", "down"})
	dir := t.TempDir()
	if err := Write(dir, c, l, "base"); err != nil {
		t.Fatal(err)
	}
	p := model.NewParams(c)
	rng := rand.New(rand.NewPCG(4, 5))
	for _, tt := range p.Tensors(c) {
		for i := range tt.Data {
			tt.Data[i] = float32(rng.NormFloat64())
		}
	}
	merged := p.Clone(c)
	if err := l.Merge(c, merged); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := float64(l.Alpha) / float64(l.Rank)
	for _, target := range []string{"q", "k", "down"} {
		w, out, in, _ := c.LoRAMatrix(p, target)
		mw, _, _, _ := c.LoRAMatrix(merged, target)
		for layer := range c.Layers {
			base, want := slices.Clone(w[layer*out*in:(layer+1)*out*in]), slices.Clone(mw[layer*out*in:(layer+1)*out*in])
			if target != "down" { // the Hugging Face layout of query and key rows
				model.InterleavedToHalf(base, c.HeadSize(), in)
				model.InterleavedToHalf(want, c.HeadSize(), in)
			}
			name := "base_model.model.model.layers." + string(rune('0'+layer)) + "." + modules[target] + ".lora_"
			a, b := make([]float32, l.Rank*in), make([]float32, out*l.Rank)
			if err := f.ReadF32(name+"A.weight", a); err != nil {
				t.Fatal(err)
			}
			if err := f.ReadF32(name+"B.weight", b); err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for o := range out {
				for i := range in {
					var ba float64
					for r := range l.Rank {
						ba += float64(b[o*l.Rank+r]) * float64(a[r*in+i])
					}
					worst = math.Max(worst, math.Abs(float64(base[o*in+i])+s*ba-float64(want[o*in+i])))
				}
			}
			if worst > 1e-5 {
				t.Errorf("layer %d %s: PEFT merge differs from the engine's by %.2e", layer, target, worst)
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{`{"peft_type": "IA3", "r": 8, "lora_alpha": 16}`, "peft_type"},
		{`{"peft_type": "LORA", "r": 0, "lora_alpha": 16}`, "r 0"},
		{`{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "bias": "all"}`, "bias"},
		{`{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "use_rslora": true}`, "use_rslora"},
		{`{"peft_type": "LORA", "r": 8}`, "lora_alpha"},
		{`{"peft_type": `, ConfigFile},
	} {
		if _, err := ParseConfig([]byte(tc.config)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one naming %s", tc.config, err, tc.want)
		}
	}
	for _, key := range []string{"base_model.model.model.layers.0.self_attn.q_norm.lora_A.weight", "model.layers.0.mlp.up_proj.lora_A.weight",
		"base_model.model.model.layers.99999999999999999999.mlp.up_proj.lora_B.weight"} {
		if _, _, _, err := ParseKey(key); err == nil {
			t.Errorf("%s: accepted", key)
		}
	}
	if l, tg, part, err := ParseKey("base_model.model.model.layers.12.mlp.gate_proj.lora_B.weight"); err != nil || l != 12 || tg != "gate" || part != "B" {
		t.Errorf("gate_proj: %d %s %s %v", l, tg, part, err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err == nil && (c.R <= 0 || !(c.LoraAlpha > 0) || c.PeftType != "LORA") {
			t.Fatalf("accepted %+v", c)
		}
		_, _, _, _ = ParseKey(string(data))
	})
}
