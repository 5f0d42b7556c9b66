// Package hf reads and writes Hugging Face model folders: config.json, the
// weights in model.safetensors (or shards listed by
// model.safetensors.index.json) and the tokenizer and generation files
// beside them, for the Llama family the engine runs (llama, mistral
// without sliding window, qwen2, qwen3).
package hf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"fspo/model"
	"fspo/safetensors"
)

// ModelTypes lists the supported config.json model_type values.
var ModelTypes = []string{"llama", "mistral", "qwen2", "qwen3"}

// hfConfig holds the config.json fields the loader reads. Pointers tell
// missing fields from zeros.
type hfConfig struct {
	ModelType         string          `json:"model_type"`
	HiddenSize        *int            `json:"hidden_size"`
	IntermediateSize  *int            `json:"intermediate_size"`
	Layers            *int            `json:"num_hidden_layers"`
	Heads             *int            `json:"num_attention_heads"`
	KVHeads           *int            `json:"num_key_value_heads"`
	HeadDim           *int            `json:"head_dim"`
	VocabSize         *int            `json:"vocab_size"`
	MaxPositions      *int            `json:"max_position_embeddings"`
	RMSNormEps        *float64        `json:"rms_norm_eps"`
	RopeTheta         *float64        `json:"rope_theta"`
	RopeScaling       json.RawMessage `json:"rope_scaling"`
	RopeParameters    json.RawMessage `json:"rope_parameters"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	AttentionBias     *bool           `json:"attention_bias"`
	MLPBias           *bool           `json:"mlp_bias"`
	HiddenAct         *string         `json:"hidden_act"`
	SlidingWindow     *int            `json:"sliding_window"`
	UseSlidingWindow  *bool           `json:"use_sliding_window"`
	TorchDType        *string         `json:"torch_dtype"`
	DType             *string         `json:"dtype"`
}

// rope holds rope_scaling (or rope_parameters, which newer transformers
// write instead of rope_theta and rope_scaling).
type rope struct {
	Type                 string   `json:"type"`
	RopeType             string   `json:"rope_type"`
	RopeTheta            *float64 `json:"rope_theta"`
	Factor               float64  `json:"factor"`
	LowFreqFactor        float64  `json:"low_freq_factor"`
	HighFreqFactor       float64  `json:"high_freq_factor"`
	OriginalMaxPositions int      `json:"original_max_position_embeddings"`
}

// ParseConfig maps a config.json to the engine's configuration and the
// weights' dtype (from torch_dtype or dtype; "" when neither is set).
// Errors name the field.
func ParseConfig(js []byte) (model.Config, safetensors.DType, error) {
	var h hfConfig
	if err := json.Unmarshal(js, &h); err != nil {
		return model.Config{}, "", err
	}
	c := model.Config{Arch: h.ModelType}
	switch h.ModelType {
	case "llama", "mistral":
		c.Arch = "llama"
	case "qwen2":
		c.QKVBias = true
	case "qwen3":
		c.QKNorm = true
	case "":
		return c, "", errors.New("model_type: missing (supported: " + strings.Join(ModelTypes, ", ") + ")")
	default:
		return c, "", fmt.Errorf("model_type %q is not supported (supported: %s)", h.ModelType, strings.Join(ModelTypes, ", "))
	}
	var errs []error
	need := func(field string, p *int, dst *int) {
		switch {
		case p == nil:
			errs = append(errs, fmt.Errorf("%s: missing", field))
		case *p <= 0:
			errs = append(errs, fmt.Errorf("%s must be positive, is %d", field, *p))
		default:
			*dst = *p
		}
	}
	need("hidden_size", h.HiddenSize, &c.Dim)
	need("intermediate_size", h.IntermediateSize, &c.Hidden)
	need("num_hidden_layers", h.Layers, &c.Layers)
	need("num_attention_heads", h.Heads, &c.Heads)
	need("vocab_size", h.VocabSize, &c.Vocab)
	need("max_position_embeddings", h.MaxPositions, &c.SeqLen)
	c.KVHeads = c.Heads
	if h.KVHeads != nil {
		need("num_key_value_heads", h.KVHeads, &c.KVHeads)
	}
	if h.RMSNormEps == nil {
		errs = append(errs, errors.New("rms_norm_eps: missing"))
	} else {
		c.NormEps = float32(*h.RMSNormEps)
	}
	c.SharedClassifier = h.TieWordEmbeddings != nil && *h.TieWordEmbeddings
	if h.HeadDim != nil && (c.Heads == 0 || *h.HeadDim*c.Heads != c.Dim) {
		c.HeadDim = *h.HeadDim
	}
	errs = append(errs, h.unsupported(c)...)
	if err := h.rope(&c); err != nil {
		errs = append(errs, err)
	}
	dt, err := h.dtype()
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return c, "", err
	}
	if err := c.Validate(); err != nil {
		return c, "", err
	}
	return c, dt, nil
}

// unsupported reports features of the config the engine does not compute.
func (h hfConfig) unsupported(c model.Config) []error {
	var errs []error
	if h.HiddenAct != nil && *h.HiddenAct != "silu" {
		errs = append(errs, fmt.Errorf("hidden_act %q is not supported (supported: silu)", *h.HiddenAct))
	}
	if h.AttentionBias != nil && *h.AttentionBias && h.ModelType != "qwen2" {
		errs = append(errs, fmt.Errorf("attention_bias true is not supported for model_type %s (it adds an output-projection bias)", h.ModelType))
	}
	if h.MLPBias != nil && *h.MLPBias {
		errs = append(errs, errors.New("mlp_bias true is not supported"))
	}
	if h.UseSlidingWindow != nil && *h.UseSlidingWindow {
		errs = append(errs, errors.New("use_sliding_window true is not supported"))
	}
	if h.ModelType == "mistral" && h.SlidingWindow != nil && *h.SlidingWindow < c.SeqLen {
		errs = append(errs, fmt.Errorf("sliding_window %d below max_position_embeddings %d is not supported", *h.SlidingWindow, c.SeqLen))
	}
	return errs
}

// rope fills RopeTheta and RopeScaling from rope_theta / rope_scaling or
// from rope_parameters.
func (h hfConfig) rope(c *model.Config) error {
	c.RopeTheta = 10000 // transformers' default for all four model types
	if h.RopeTheta != nil {
		c.RopeTheta = float32(*h.RopeTheta)
	}
	field, raw := "rope_scaling", h.RopeScaling
	if len(h.RopeParameters) > 0 && !bytes.Equal(h.RopeParameters, []byte("null")) {
		field, raw = "rope_parameters", h.RopeParameters
	}
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var r rope
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if r.RopeTheta != nil {
		c.RopeTheta = float32(*r.RopeTheta)
	}
	typ, typField := r.RopeType, "rope_type"
	if typ == "" {
		typ, typField = r.Type, "type"
	}
	switch typ {
	case "default", "":
		if field == "rope_scaling" && typ == "" {
			return fmt.Errorf("rope_scaling: no rope_type or type")
		}
		return nil
	case "llama3":
		c.RopeScaling = &model.RopeScaling{Type: "llama3", Factor: r.Factor, LowFreqFactor: r.LowFreqFactor,
			HighFreqFactor: r.HighFreqFactor, OriginalMaxPositions: r.OriginalMaxPositions}
		return nil
	}
	return fmt.Errorf("%s.%s %q is not supported (supported: llama3, default)", field, typField, typ)
}

// dtype maps torch_dtype (or dtype) to a safetensors dtype.
func (h hfConfig) dtype() (safetensors.DType, error) {
	field, p := "torch_dtype", h.TorchDType
	if p == nil {
		field, p = "dtype", h.DType
	}
	if p == nil {
		return "", nil
	}
	switch *p {
	case "float32":
		return safetensors.F32, nil
	case "float16":
		return safetensors.F16, nil
	case "bfloat16":
		return safetensors.BF16, nil
	}
	return "", fmt.Errorf("%s %q is not supported (supported: float32, float16, bfloat16)", field, *p)
}

// torchDType is the config.json spelling of d.
func torchDType(d safetensors.DType) string {
	switch d {
	case safetensors.F16:
		return "float16"
	case safetensors.BF16:
		return "bfloat16"
	}
	return "float32"
}
