package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"fspo/ckpt"
	"fspo/tensor"
)

// LoRA is a low-rank adapter (Hu et al., 2021): each adapted matrix W
// (out, in) of layer Layer acts as W + (Alpha/Rank)·B·A, with A (rank, in)
// and B (out, rank). Rows of B for the query and key matrices are in the
// engine's layout (RoPE pairs interleaved, as Params), like the weights.
type LoRA struct {
	Alpha   float32
	Rank    int
	Tensors []LoRATensor
}

// LoRATensor is the adapter of one matrix.
type LoRATensor struct {
	Layer  int
	Target string    // one of LoRATargets
	A      []float32 // (rank, in), row-major
	B      []float32 // (out, rank), row-major
}

// LoRATargets are the matrices an adapter may target, by their short names:
// attention query, key, value and output; the feed-forward gate, up and down.
var LoRATargets = []string{"q", "k", "v", "o", "gate", "up", "down"}

// Scale is Alpha/Rank, the factor on B·A.
func (l *LoRA) Scale() float32 { return l.Alpha / float32(l.Rank) }

// LoRAMatrix returns the stacked weights (layers, out, in) a target adapts and
// one layer's out and in sizes.
func (c Config) LoRAMatrix(p *Params, target string) (w []float32, out, in int, err error) {
	switch target {
	case "q":
		return p.Wq, c.QDim(), c.Dim, nil
	case "k":
		return p.Wk, c.KVDim(), c.Dim, nil
	case "v":
		return p.Wv, c.KVDim(), c.Dim, nil
	case "o":
		return p.Wo, c.Dim, c.QDim(), nil
	case "gate":
		return p.W1, c.Hidden, c.Dim, nil
	case "up":
		return p.W3, c.Hidden, c.Dim, nil
	case "down":
		return p.W2, c.Dim, c.Hidden, nil
	}
	return nil, 0, 0, fmt.Errorf("lora target %q is not one of %s", target, strings.Join(LoRATargets, ", "))
}

// Validate checks the adapter against a model configuration: a positive rank,
// known targets, layers in range, each (layer, target) once, A and B sized.
func (l *LoRA) Validate(c Config) error {
	if l.Rank <= 0 {
		return fmt.Errorf("lora rank %d must be positive", l.Rank)
	}
	seen := map[[2]any]bool{}
	var scratch Params
	for _, t := range l.Tensors {
		_, out, in, err := c.LoRAMatrix(&scratch, t.Target)
		if err != nil {
			return err
		}
		if t.Layer < 0 || t.Layer >= c.Layers {
			return fmt.Errorf("lora target %s: layer %d outside 0..%d", t.Target, t.Layer, c.Layers-1)
		}
		key := [2]any{t.Layer, t.Target}
		if seen[key] {
			return fmt.Errorf("lora target %s of layer %d appears twice", t.Target, t.Layer)
		}
		seen[key] = true
		if len(t.A) != l.Rank*in || len(t.B) != out*l.Rank {
			return fmt.Errorf("lora layer %d %s: A has %d values, B %d; want %d×%d and %d×%d", t.Layer, t.Target, len(t.A), len(t.B), l.Rank, in, out, l.Rank)
		}
	}
	return nil
}

// Merge adds Scale·B·A into the adapted matrices of p (in place), giving the
// weights of the merged model.
func (l *LoRA) Merge(c Config, p *Params) error {
	if err := l.Validate(c); err != nil {
		return err
	}
	s := l.Scale()
	for _, t := range l.Tensors {
		w, out, in, _ := c.LoRAMatrix(p, t.Target)
		layer := w[t.Layer*out*in : (t.Layer+1)*out*in]
		for o := range out {
			row := layer[o*in : (o+1)*in]
			for r := range l.Rank {
				f := s * t.B[o*l.Rank+r]
				if f == 0 {
					continue
				}
				a := t.A[r*in : (r+1)*in]
				for i := range row {
					row[i] += f * a[i]
				}
			}
		}
	}
	p.Changed()
	return nil
}

// Targets lists the distinct targets the adapter covers, in LoRATargets order.
func (l *LoRA) Targets() []string {
	var out []string
	for _, name := range LoRATargets {
		if slices.ContainsFunc(l.Tensors, func(t LoRATensor) bool { return t.Target == name }) {
			out = append(out, name)
		}
	}
	return out
}

// LoRAFormat is the ckpt.Checkpoint Format of an adapter checkpoint: Config
// is the base model's configuration, Meta holds lora_rank and lora_alpha,
// Params the tensors lora.LAYER.TARGET.a (rank, in) and .b (out, rank). The
// base weights are not in it; the run card names them (path and sha256).
const LoRAFormat = "lora"

// Checkpoint wraps the adapter (sharing memory) for ckpt.Save.
func (l *LoRA) Checkpoint(c Config) (*ckpt.Checkpoint, error) {
	if err := l.Validate(c); err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	cp := &ckpt.Checkpoint{Format: LoRAFormat, Config: cfg, Meta: map[string]string{
		"lora_rank":  strconv.Itoa(l.Rank),
		"lora_alpha": strconv.FormatFloat(float64(l.Alpha), 'g', -1, 32),
	}}
	for _, t := range l.Tensors {
		_, out, in, _ := c.LoRAMatrix(&Params{}, t.Target)
		name := fmt.Sprintf("lora.%d.%s.", t.Layer, t.Target)
		cp.Params = append(cp.Params,
			tensor.Tensor{Name: name + "a", Shape: []int{l.Rank, in}, Data: t.A},
			tensor.Tensor{Name: name + "b", Shape: []int{out, l.Rank}, Data: t.B})
	}
	return cp, nil
}

// LoRAFromCheckpoint reads an adapter checkpoint (see LoRAFormat), returning
// the adapter and the base model's configuration it was trained on.
func LoRAFromCheckpoint(cp *ckpt.Checkpoint) (*LoRA, Config, error) {
	var c Config
	if cp.Format != LoRAFormat {
		return nil, c, fmt.Errorf("checkpoint holds a %q model, not a %q adapter", cp.Format, LoRAFormat)
	}
	dec := json.NewDecoder(bytes.NewReader(cp.Config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, c, fmt.Errorf("adapter's base config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, c, fmt.Errorf("adapter's base config: %w", err)
	}
	rank, err := strconv.Atoi(cp.Meta["lora_rank"])
	if err != nil {
		return nil, c, fmt.Errorf("adapter meta lora_rank %q: %w", cp.Meta["lora_rank"], err)
	}
	alpha, err := strconv.ParseFloat(cp.Meta["lora_alpha"], 32)
	if err != nil {
		return nil, c, fmt.Errorf("adapter meta lora_alpha %q: %w", cp.Meta["lora_alpha"], err)
	}
	l := &LoRA{Alpha: float32(alpha), Rank: rank}
	byName := map[string]tensor.Tensor{}
	for _, t := range cp.Params {
		byName[t.Name] = t
	}
	for layer := range c.Layers {
		for _, target := range LoRATargets {
			name := fmt.Sprintf("lora.%d.%s.", layer, target)
			a, okA := byName[name+"a"]
			b, okB := byName[name+"b"]
			if okA != okB {
				return nil, c, fmt.Errorf("adapter tensor %sa or %sb missing (each needs both)", name, name)
			}
			if okA {
				l.Tensors = append(l.Tensors, LoRATensor{Layer: layer, Target: target, A: a.Data, B: b.Data})
				delete(byName, name+"a")
				delete(byName, name+"b")
			}
		}
	}
	for name := range byName {
		return nil, c, fmt.Errorf("adapter tensor %s is not lora.LAYER.TARGET.{a,b} of this base model", name)
	}
	if err := l.Validate(c); err != nil {
		return nil, c, err
	}
	return l, c, nil
}
