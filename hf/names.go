package hf

import (
	"fmt"

	"fspo/model"
)

// entry ties one Hugging Face tensor to its place in the engine's weights.
type entry struct {
	name  string
	shape []int     // the Hugging Face shape
	dst   []float32 // the engine's storage (a slice of model.Params)
	// hs > 0: the rows are query or key channels in Hugging Face's half
	// RoPE layout, heads of hs rows, permuted to interleaved pairs on load.
	hs int
}

// cols is the row length for the RoPE permutation (1 for vectors).
func (e entry) cols() int {
	if len(e.shape) == 2 {
		return e.shape[1]
	}
	return 1
}

// entries lists every tensor of a model of config c with weights p, under
// Hugging Face names (transformers' LlamaForCausalLM, Qwen2ForCausalLM and
// Qwen3ForCausalLM use the same names). The MLP is down(silu(gate(x)) ·
// up(x)), so gate is W1, down W2 and up W3.
func entries(c model.Config, p *model.Params) []entry {
	d, q, kv, h, hs := c.Dim, c.QDim(), c.KVDim(), c.Hidden, c.HeadSize()
	es := []entry{{name: "model.embed_tokens.weight", shape: []int{c.Vocab, d}, dst: p.Emb}}
	for l := range c.Layers {
		pre := fmt.Sprintf("model.layers.%d.", l)
		at := func(w []float32, size int) []float32 {
			if w == nil { // Shapes: names and shapes only
				return nil
			}
			return w[l*size : (l+1)*size]
		}
		add := func(name string, w []float32, hsRows int, shape ...int) {
			es = append(es, entry{name: pre + name, shape: shape, dst: at(w, prod(shape)), hs: hsRows})
		}
		add("input_layernorm.weight", p.RmsAtt, 0, d)
		add("self_attn.q_proj.weight", p.Wq, hs, q, d)
		add("self_attn.k_proj.weight", p.Wk, hs, kv, d)
		add("self_attn.v_proj.weight", p.Wv, 0, kv, d)
		add("self_attn.o_proj.weight", p.Wo, 0, d, q)
		if c.QKVBias {
			add("self_attn.q_proj.bias", p.Bq, hs, q)
			add("self_attn.k_proj.bias", p.Bk, hs, kv)
			add("self_attn.v_proj.bias", p.Bv, 0, kv)
		}
		if c.QKNorm {
			add("self_attn.q_norm.weight", p.QNorm, hs, hs)
			add("self_attn.k_norm.weight", p.KNorm, hs, hs)
		}
		add("post_attention_layernorm.weight", p.RmsFfn, 0, d)
		add("mlp.gate_proj.weight", p.W1, 0, h, d)
		add("mlp.down_proj.weight", p.W2, 0, d, h)
		add("mlp.up_proj.weight", p.W3, 0, h, d)
	}
	es = append(es, entry{name: "model.norm.weight", shape: []int{d}, dst: p.RmsFinal})
	if !c.SharedClassifier {
		es = append(es, entry{name: "lm_head.weight", shape: []int{c.Vocab, d}, dst: p.Wcls})
	}
	return es
}

func prod(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Shape is a tensor's Hugging Face name and shape.
type Shape struct {
	Name  string
	Shape []int
}

// Shapes lists the tensors a folder of config c holds.
func Shapes(c model.Config) []Shape {
	var out []Shape
	for _, e := range entries(c, &model.Params{}) {
		out = append(out, Shape{e.name, e.shape})
	}
	return out
}
