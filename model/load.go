package model

import (
	"bytes"
	"encoding/json"
	"fmt"

	"fspo/ckpt"
)

// Load reads a model checkpoint: the project's own format (written by
// training, recognised by its magic bytes) or a llama2.c checkpoint.
func Load(path string) (*Model, error) {
	isCkpt, err := ckpt.Sniff(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	if isCkpt {
		cp, err := ckpt.Load(path)
		if err != nil {
			return nil, fmt.Errorf("load model: %w", err)
		}
		m, err := FromCheckpoint(cp)
		if err != nil {
			return nil, fmt.Errorf("load model %s: %w", path, err)
		}
		return m, nil
	}
	return LoadLlama2C(path)
}

// FromCheckpoint builds a model from a checkpoint's config and parameters.
func FromCheckpoint(cp *ckpt.Checkpoint) (*Model, error) {
	if cp.Format != "llama" {
		return nil, fmt.Errorf("checkpoint holds a %q model; this engine runs \"llama\"", cp.Format)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(cp.Config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	p := NewParams(c)
	if err := p.SetTensors(c, cp.Params); err != nil {
		return nil, err
	}
	if err := p.CheckFinite(c); err != nil {
		return nil, err
	}
	return New(c, p)
}

// Checkpoint wraps the model's config and weights (sharing memory) for ckpt.Save.
func (m *Model) Checkpoint() (*ckpt.Checkpoint, error) {
	if m.q != nil {
		return nil, ErrReducedWeights
	}
	cfg, err := json.Marshal(m.Config)
	if err != nil {
		return nil, err
	}
	return &ckpt.Checkpoint{Format: "llama", Config: cfg, Params: m.W.Tensors(m.Config)}, nil
}
