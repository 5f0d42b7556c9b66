// Package ckpt is the project's checkpoint format: model parameters,
// optimizer state and training progress in one self-checking file.
//
// # File layout (format version 1)
//
//	offset 0   8 bytes  magic "FSPOCKPT"
//	offset 8   uint32   format version (little-endian), 1
//	offset 12  uint32   header length H (little-endian)
//	offset 16  H bytes  JSON header, padded with spaces so the data starts at a multiple of 8
//	16+H       data     every tensor's float32 values, little-endian, row-major,
//	                    in directory order, contiguous
//	end−4      uint32   CRC-32C (Castagnoli) of all bytes before it (little-endian)
//
// The header is a JSON object:
//
//	{"format": "llama", "config": {...}, "step": 1200, "rng": "<base64>",
//	 "meta": {"stage": "ipo"},
//	 "tensors": [{"name": "tok_embeddings", "shape": [512, 64], "group": "params", "offset": 0}, ...]}
//
// where offset is the tensor's byte offset from the start of the data and
// group is "params" (model parameters) or "optim" (optimizer state, see
// package optim).
package ckpt

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"unicode/utf8"

	"fspo/tensor"
)

// Magic starts every checkpoint file.
const Magic = "FSPOCKPT"

// Version is the format version this package writes and the newest it reads.
const Version = 1

// Tensor groups in the header directory.
const (
	GroupParams = "params"
	GroupOptim  = "optim"
)

// prefixLen is the size of magic, version and header length.
const prefixLen = 16

// castagnoli is the CRC-32C table (hardware-accelerated on amd64 and arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checkpoint is everything needed to resume training or serve a model.
type Checkpoint struct {
	// Format names the model architecture, e.g. "llama".
	Format string
	// Config is the model configuration as JSON, opaque to this package. It
	// is stored compacted (insignificant whitespace removed).
	Config json.RawMessage
	// Step is the number of completed training steps.
	Step int64
	// RNG is the serialized random-number-generator state.
	RNG []byte
	// Meta holds free-form provenance (stage, data hash, version …).
	Meta map[string]string
	// Params are the model parameters; they must be finite.
	Params []tensor.Tensor
	// Optim is the optimizer state (optim.Optimizer.State).
	Optim []tensor.Tensor
}

// header is the JSON header of the file.
type header struct {
	Format  string            `json:"format"`
	Config  json.RawMessage   `json:"config,omitempty"`
	Step    int64             `json:"step"`
	RNG     []byte            `json:"rng,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
	Tensors []entry           `json:"tensors"`
}

// entry is one tensor of the header directory.
type entry struct {
	Name   string `json:"name"`
	Shape  []int  `json:"shape"`
	Group  string `json:"group"`
	Offset int64  `json:"offset"`
}

// Validate checks what Save needs: a format name, a non-negative step,
// valid JSON config, consistent tensors with unique non-empty names per
// group, and finite parameters.
func (c *Checkpoint) Validate() error {
	if c.Format == "" {
		return fmt.Errorf("checkpoint has no format (model architecture) name")
	}
	if c.Step < 0 {
		return fmt.Errorf("checkpoint step %d is negative", c.Step)
	}
	if len(c.Config) > 0 && !json.Valid(c.Config) {
		return fmt.Errorf("checkpoint config is not valid JSON")
	}
	// JSON would silently replace invalid UTF-8, changing names on reload.
	if !utf8.ValidString(c.Format) {
		return fmt.Errorf("checkpoint format %q is not valid UTF-8", c.Format)
	}
	for k, v := range c.Meta {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("checkpoint meta %q: %q is not valid UTF-8", k, v)
		}
	}
	for _, g := range []struct {
		name string
		ts   []tensor.Tensor
	}{{GroupParams, c.Params}, {GroupOptim, c.Optim}} {
		seen := make(map[string]bool, len(g.ts))
		for i, t := range g.ts {
			if t.Name == "" {
				return fmt.Errorf("%s tensor %d has no name", g.name, i)
			}
			if !utf8.ValidString(t.Name) {
				return fmt.Errorf("%s tensor %d name %q is not valid UTF-8", g.name, i, t.Name)
			}
			if seen[t.Name] {
				return fmt.Errorf("%s tensor %s appears twice", g.name, t.Name)
			}
			seen[t.Name] = true
			for _, d := range t.Shape {
				if d < 0 {
					return fmt.Errorf("%s tensor %s has negative dimension in shape %v", g.name, t.Name, t.Shape)
				}
			}
			if err := t.Check(); err != nil {
				return fmt.Errorf("%s %w", g.name, err)
			}
			if g.name == GroupParams {
				if err := checkFinite(t); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkFinite reports the first NaN or infinite value of t.
func checkFinite(t tensor.Tensor) error {
	for i, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("parameter %s index %d is %v", t.Name, i, v)
		}
	}
	return nil
}
