package model

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestLoRAMerge checks Merge against W + (α/r)·B·A written out entry by entry
// for every target, and the errors Validate gives.
func TestLoRAMerge(t *testing.T) {
	c := Config{Dim: 8, Hidden: 12, Layers: 2, Heads: 2, KVHeads: 1, Vocab: 16, SeqLen: 8, NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true}
	p := NewParams(c)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range c.shapes() {
		for i := range *s.ptr(p) {
			(*s.ptr(p))[i] = float32(rng.NormFloat64())
		}
	}
	l := LoRA{Alpha: 6, Rank: 3}
	for i, target := range LoRATargets {
		_, out, in, err := c.LoRAMatrix(p, target)
		if err != nil {
			t.Fatal(err)
		}
		lt := LoRATensor{Layer: i % 2, Target: target, A: make([]float32, 3*in), B: make([]float32, out*3)}
		for j := range lt.A {
			lt.A[j] = float32(rng.NormFloat64())
		}
		for j := range lt.B {
			lt.B[j] = float32(rng.NormFloat64())
		}
		l.Tensors = append(l.Tensors, lt)
	}
	merged := NewParams(c)
	for _, s := range c.shapes() {
		copy(*s.ptr(merged), *s.ptr(p))
	}
	if err := l.Merge(c, merged); err != nil {
		t.Fatal(err)
	}
	for _, lt := range l.Tensors {
		w0, out, in, _ := c.LoRAMatrix(p, lt.Target)
		w1, _, _, _ := c.LoRAMatrix(merged, lt.Target)
		for o := range out {
			for i := range in {
				want := float64(w0[lt.Layer*out*in+o*in+i])
				for r := range 3 {
					want += 2 * float64(lt.B[o*3+r]) * float64(lt.A[r*in+i])
				}
				if got := float64(w1[lt.Layer*out*in+o*in+i]); abs(got-want) > 1e-4 {
					t.Fatalf("%s layer %d [%d,%d]: %g, want %g", lt.Target, lt.Layer, o, i, got, want)
				}
			}
		}
	}
	cp, err := l.Checkpoint(c)
	if err != nil {
		t.Fatal(err)
	}
	back, bc, err := LoRAFromCheckpoint(cp)
	if err != nil || bc != c || back.Rank != l.Rank || back.Alpha != l.Alpha || len(back.Tensors) != len(l.Tensors) {
		t.Fatalf("checkpoint round trip: %v, config %+v, adapter rank %d alpha %g with %d tensors", err, bc, back.Rank, back.Alpha, len(back.Tensors))
	}
	if got := l.Targets(); strings.Join(got, ",") != "q,k,v,o,gate,up,down" {
		t.Fatalf("targets %v", got)
	}
	for _, bad := range []struct {
		l    LoRA
		want string
	}{
		{LoRA{Rank: 0}, "rank 0"},
		{LoRA{Rank: 3, Tensors: []LoRATensor{{Target: "emb"}}}, `target "emb"`},
		{LoRA{Rank: 3, Tensors: []LoRATensor{{Target: "q", Layer: 2}}}, "layer 2"},
		{LoRA{Rank: 3, Tensors: []LoRATensor{l.Tensors[0], l.Tensors[0]}}, "twice"},
		{LoRA{Rank: 3, Tensors: []LoRATensor{{Target: "q", A: l.Tensors[0].A}}}, "B 0"},
	} {
		if err := bad.l.Validate(c); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: error %v, want one containing %q", bad.l.Tensors, err, bad.want)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
