// Package model is the Llama-architecture transformer: weights, the forward
// pass with a KV cache for generation, the batched forward and backward pass
// for training and scoring (with shared-prompt packing), and the llama2.c
// checkpoint format.
package model

import (
	"errors"
	"fmt"
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
}

// HeadSize is the width of one attention head.
func (c Config) HeadSize() int { return c.Dim / c.Heads }

// KVDim is the width of the key and value projections.
func (c Config) KVDim() int { return c.Dim * c.KVHeads / c.Heads }

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
	if len(errs) == 0 {
		if c.Dim%c.Heads != 0 {
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
