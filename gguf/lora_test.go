package gguf

import (
	"slices"
	"strings"
	"testing"
)

func TestLoRAWriter(t *testing.T) {
	c := testConfigs["qwen2-bias"]
	const rank = 4
	p := randomParams(c, 5) // a source of values
	q := LoRATensor{Layer: 1, Target: "q", A: p.Wq[:rank*c.Dim], B: p.Wk[:c.QDim()*rank]}
	v := LoRATensor{Layer: 0, Target: "v", A: p.Wv[:rank*c.Dim], B: p.W1[:c.KVDim()*rank]}
	w, err := LoRAWriter(c, LoRA{Alpha: 16, Rank: rank, Tensors: []LoRATensor{q, v}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("lora.gguf", writeBytes(t, w))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{"general.architecture": "qwen2", "general.type": "adapter", "adapter.type": "lora", "adapter.lora.alpha": float32(16)} {
		if got := f.Get(key); got != want {
			t.Errorf("%s = %#v, want %#v", key, got, want)
		}
	}
	dims := map[string][]uint64{
		"blk.1.attn_q.weight.lora_a": {uint64(c.Dim), rank}, "blk.1.attn_q.weight.lora_b": {rank, uint64(c.QDim())},
		"blk.0.attn_v.weight.lora_a": {uint64(c.Dim), rank}, "blk.0.attn_v.weight.lora_b": {rank, uint64(c.KVDim())},
	}
	for name, want := range dims {
		if tt := f.Tensor(name); tt == nil || !slices.Equal(tt.Dims, want) || tt.Type != F32 {
			t.Errorf("tensor %s: %+v, want dims %v F32", name, tt, want)
		}
	}
	if len(f.Tensors) != len(dims) {
		t.Errorf("%d tensors, want %d", len(f.Tensors), len(dims))
	}
	if got := f.Tensor("blk.1.attn_q.weight.lora_a").Float32(); !slices.Equal(got, q.A) {
		t.Error("lora_a of q changed")
	}
	if got := f.Tensor("blk.0.attn_v.weight.lora_b").Float32(); !slices.Equal(got, v.B) {
		t.Error("lora_b of v changed")
	}
	// B's query rows move to the half layout like the base weights.
	gotB, hs := f.Tensor("blk.1.attn_q.weight.lora_b").Float32(), c.HeadSize()
	for r := range c.QDim() {
		src := r/hs*hs + 2*(r%hs%(hs/2)) + r%hs/(hs/2)
		if !slices.Equal(gotB[r*rank:(r+1)*rank], q.B[src*rank:(src+1)*rank]) {
			t.Fatalf("lora_b row %d is not engine row %d", r, src)
		}
	}
	bad := []struct {
		l    LoRA
		want string
	}{
		{LoRA{Rank: 0}, "rank 0"},
		{LoRA{Rank: rank, Tensors: []LoRATensor{{Target: "emb"}}}, `target "emb"`},
		{LoRA{Rank: rank, Tensors: []LoRATensor{{Target: "q", Layer: 9}}}, "layer 9"},
		{LoRA{Rank: rank, Tensors: []LoRATensor{{Target: "q", A: q.A}}}, "B 0"},
	}
	for _, b := range bad {
		if _, err := LoRAWriter(c, b.l); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: error %v, want %q", b.l, err, b.want)
		}
	}
}
