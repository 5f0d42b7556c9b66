package gguf

import (
	"fmt"
	"slices"

	"fspo/model"
)

// fileType is general.file_type (llama.cpp's llama_ftype) for the type of
// the 2-D weights.
var fileType = map[TensorType]uint32{F32: 0, F16: 1, Q8_0: 7, BF16: 32}

// WriteOptions controls WriteModel.
type WriteOptions struct {
	// Type of the 2-D weights: F32, F16, BF16 or Q8_0 (1-D norms and biases
	// are always F32). A Q8_0 matrix whose rows are not a multiple of 32
	// values is written as F16, as llama.cpp's converter does.
	Type TensorType
	Name string // general.name; optional
}

// WriteModel writes config c with weights p, the tokenizer metadata and its
// chat template as a GGUF v3 file llama.cpp loads, atomically.
func WriteModel(path string, c model.Config, p *model.Params, tok *Tokenizer, opt WriteOptions) error {
	w, err := ModelWriter(c, p, tok, opt)
	if err != nil {
		return fmt.Errorf("write gguf %s: %w", path, err)
	}
	return w.WriteFile(path)
}

// ModelWriter prepares what WriteModel writes.
func ModelWriter(c model.Config, p *model.Params, tok *Tokenizer, opt WriteOptions) (*Writer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, fmt.Errorf("no tokenizer metadata")
	}
	if len(tok.Tokens) != c.Vocab {
		return nil, fmt.Errorf("tokenizer has %d tokens, the model %d", len(tok.Tokens), c.Vocab)
	}
	ft, ok := fileType[opt.Type]
	if !ok {
		return nil, fmt.Errorf("weight type %s cannot be written (supported: F32, F16, BF16, Q8_0)", opt.Type)
	}
	w := &Writer{}
	arch := c.Arch
	if arch == "" {
		arch = "llama"
	}
	w.Add("general.architecture", arch)
	if opt.Name != "" {
		w.Add("general.name", opt.Name)
	}
	w.Add("general.file_type", ft)
	w.KV = append(w.KV, configMetadata(c, arch)...)
	w.KV = append(w.KV, tok.metadata()...)
	if c.RopeScaling != nil {
		if err := w.AddTensor(ropeFreqsTensor, F32, []int{c.HeadSize() / 2}, ropeFactors(c)); err != nil {
			return nil, err
		}
	}
	if err := addWeights(w, c, p, opt.Type); err != nil {
		return nil, err
	}
	return w, nil
}

// configMetadata gives the {arch}.* keys llama.cpp reads for these architectures.
func configMetadata(c model.Config, arch string) []KV {
	pre := arch + "."
	hs := uint32(c.HeadSize())
	kv := []KV{
		{pre + "vocab_size", uint32(c.Vocab)},
		{pre + "context_length", uint32(c.SeqLen)},
		{pre + "embedding_length", uint32(c.Dim)},
		{pre + "block_count", uint32(c.Layers)},
		{pre + "feed_forward_length", uint32(c.Hidden)},
		{pre + "attention.head_count", uint32(c.Heads)},
		{pre + "attention.head_count_kv", uint32(c.KVHeads)},
		{pre + "attention.layer_norm_rms_epsilon", c.NormEps},
		{pre + "rope.freq_base", c.RopeTheta},
		{pre + "rope.dimension_count", hs},
	}
	if c.HeadDim != 0 {
		kv = append(kv, KV{pre + "attention.key_length", hs}, KV{pre + "attention.value_length", hs})
	}
	if c.RopeScaling != nil {
		kv = append(kv, KV{pre + "rope.scaling.original_context_length", uint32(c.RopeScaling.OriginalMaxPositions)})
	}
	return kv
}

// addWeights adds the model's tensors in llama.cpp's order (token
// embedding, then each block, then the output norm and classifier),
// permuting query/key rows into the half layout for NeoX-style architectures.
func addWeights(w *Writer, c model.Config, p *model.Params, typ TensorType) error {
	var global, perLayer []tensorSpec
	for _, s := range specs {
		if s.used(c) {
			if s.layer {
				perLayer = append(perLayer, s)
			} else {
				global = append(global, s)
			}
		}
	}
	prepared := map[string][]float32{}
	for _, s := range specs {
		data := *s.ptr(p)
		if hs := ropeHeadSize(c, s); hs > 0 && s.used(c) {
			data = slices.Clone(data)
			model.InterleavedToHalf(data, hs, colsOf(s.shape(c)))
		}
		prepared[s.name] = data
	}
	add := func(s tensorSpec, l int) error {
		shape := s.shape(c)
		data := prepared[s.name]
		per := len(data) / s.layers(c)
		t := typ
		if s.norm {
			t = F32
		} else if block, _, _ := t.layout(); colsOf(shape)%block != 0 {
			t = F16
		}
		return w.AddTensor(s.fileName(l), t, shape, data[l*per:(l+1)*per])
	}
	if err := add(global[0], 0); err != nil { // token_embd
		return err
	}
	for l := range c.Layers {
		for _, s := range perLayer {
			if err := add(s, l); err != nil {
				return err
			}
		}
	}
	for _, s := range global[1:] {
		if err := add(s, 0); err != nil {
			return err
		}
	}
	return nil
}
