// Package model is the Llama-architecture transformer: weights, the forward
// pass with a KV cache for generation, the batched forward and backward pass
// for training and scoring (with shared-prompt packing), and the llama2.c
// checkpoint format.
package model

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Config is the shape of a Llama-2 model.
type Config struct {
	Dim     int `json:"dim"`        // width of the residual stream
	Hidden  int `json:"hidden_dim"` // width of the SwiGLU MLP
	Layers  int `json:"n_layers"`
	Heads   int `json:"n_heads"`    // query heads
	KVHeads int `json:"n_kv_heads"` // key/value heads; Heads/KVHeads query heads share one (grouped-query attention)
	Vocab   int `json:"vocab_size"`
	SeqLen  int `json:"seq_len"` // the context the model was trained with
	// SharedClassifier: the output layer reuses the token embedding (llama2.c
	// marks it by a positive vocab size in the header).
	SharedClassifier bool `json:"shared_classifier"`
	// NormEps is RMSNorm's epsilon; llama2.c and Llama-2 use 1e-5.
	NormEps float32 `json:"norm_eps"`
	// RopeTheta is the RoPE base; 10000 in Llama-2 (Su et al. 2021).
	RopeTheta float32 `json:"rope_theta"`

	// Arch names the family member: "llama" (the default when empty: Llama
	// 2/3, SmolLM2, Mistral without sliding window), "qwen2" or "qwen3". The
	// differences are switched on by the fields below, not by the name.
	Arch string `json:"arch,omitempty"`
	// HeadDim is the width of one attention head when it is not dim/n_heads
	// (Qwen3 sets it explicitly); 0 means dim/n_heads.
	HeadDim int `json:"head_dim,omitempty"`
	// QKVBias: the query, key and value projections add a bias (Qwen2).
	QKVBias bool `json:"qkv_bias,omitempty"`
	// QKNorm: each query and key head is RMS-normalised (weights of
	// head_dim, epsilon NormEps) before RoPE (Qwen3).
	QKNorm bool `json:"qk_norm,omitempty"`
	// RopeScaling stretches RoPE's long wavelengths (Llama 3.1/3.2); nil for none.
	RopeScaling *RopeScaling `json:"rope_scaling,omitempty"`
}

// RopeScaling is Hugging Face's rope_scaling of type "llama3": frequencies
// whose wavelength exceeds OriginalMaxPositions/LowFreqFactor are divided by
// Factor, those below OriginalMaxPositions/HighFreqFactor are kept, and the
// band between is interpolated linearly in 1/wavelength.
type RopeScaling struct {
	Type                 string  `json:"type"`
	Factor               float64 `json:"factor"`
	LowFreqFactor        float64 `json:"low_freq_factor"`
	HighFreqFactor       float64 `json:"high_freq_factor"`
	OriginalMaxPositions int     `json:"original_max_position_embeddings"`
}

// Archs lists the supported values of Config.Arch.
var Archs = []string{"llama", "qwen2", "qwen3"}

// HeadSize is the width of one attention head.
func (c Config) HeadSize() int {
	if c.HeadDim > 0 {
		return c.HeadDim
	}
	return c.Dim / c.Heads
}

// QDim is the width of the query projection (and of the attention output
// before Wo): n_heads × head size, which equals dim unless HeadDim says otherwise.
func (c Config) QDim() int { return c.Heads * c.HeadSize() }

// KVDim is the width of the key and value projections.
func (c Config) KVDim() int { return c.KVHeads * c.HeadSize() }

// Validate reports a config the engine cannot run.
func (c Config) Validate() error {
	var errs []error
	pos := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, is %d", name, v))
		}
	}
	pos("dim", c.Dim)
	pos("hidden_dim", c.Hidden)
	pos("n_layers", c.Layers)
	pos("n_heads", c.Heads)
	pos("n_kv_heads", c.KVHeads)
	pos("vocab_size", c.Vocab)
	pos("seq_len", c.SeqLen)
	if c.HeadDim < 0 {
		errs = append(errs, fmt.Errorf("head_dim must not be negative, is %d", c.HeadDim))
	}
	if c.Arch != "" && !slices.Contains(Archs, c.Arch) {
		errs = append(errs, fmt.Errorf("arch %q is not supported (supported: %s)", c.Arch, strings.Join(Archs, ", ")))
	}
	if rs := c.RopeScaling; rs != nil {
		if rs.Type != "llama3" {
			errs = append(errs, fmt.Errorf("rope_scaling type %q is not supported (supported: llama3)", rs.Type))
		} else if !(rs.Factor >= 1) || !(rs.LowFreqFactor > 0) || !(rs.HighFreqFactor > rs.LowFreqFactor) || rs.OriginalMaxPositions <= 0 {
			errs = append(errs, fmt.Errorf("rope_scaling llama3 needs factor ≥ 1, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0, has %+v", *rs))
		}
	}
	if len(errs) == 0 {
		if c.HeadDim == 0 && c.Dim%c.Heads != 0 {
			errs = append(errs, fmt.Errorf("dim %d is not a multiple of n_heads %d", c.Dim, c.Heads))
		} else if c.HeadSize()%2 != 0 {
			errs = append(errs, fmt.Errorf("head size %d must be even for RoPE", c.HeadSize()))
		}
		if c.Heads%c.KVHeads != 0 {
			errs = append(errs, fmt.Errorf("n_heads %d is not a multiple of n_kv_heads %d", c.Heads, c.KVHeads))
		}
		const limit = 1 << 20
		for _, v := range []int{c.Dim, c.Hidden, c.Vocab, c.SeqLen} {
			if v > limit {
				errs = append(errs, fmt.Errorf("size %d is beyond what this engine supports (%d)", v, limit))
				break
			}
		}
		if c.Layers > 1024 {
			errs = append(errs, fmt.Errorf("n_layers %d is beyond what this engine supports", c.Layers))
		}
	}
	if !(c.NormEps > 0) {
		errs = append(errs, fmt.Errorf("norm_eps must be positive, is %g", c.NormEps))
	}
	if !(c.RopeTheta > 0) {
		errs = append(errs, fmt.Errorf("rope_theta must be positive, is %g", c.RopeTheta))
	}
	return errors.Join(errs...)
}

// NumParams counts the weights.
func (c Config) NumParams() int {
	n := 0
	for _, s := range c.shapes() {
		n += s.size()
	}
	return n
}
