package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"fspo/tensor"
)

// NewLoRA makes an adapter of rank and alpha on the targets of every layer,
// initialized as PEFT does: A uniform in ±1/√in (Kaiming-uniform with
// a = √5), B zero, so that the adapted model starts equal to the base.
func NewLoRA(c Config, rank int, alpha float32, targets []string, seed uint64) (*LoRA, error) {
	if rank <= 0 {
		return nil, fmt.Errorf("lora rank %d must be positive", rank)
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("lora: no targets")
	}
	rng := rand.New(rand.NewPCG(seed, 0x10ba))
	l := &LoRA{Alpha: alpha, Rank: rank}
	for layer := range c.Layers {
		for _, target := range LoRATargets {
			if !slices.Contains(targets, target) {
				continue
			}
			_, out, in, _ := c.LoRAMatrix(&Params{}, target)
			t := LoRATensor{Layer: layer, Target: target, A: make([]float32, rank*in), B: make([]float32, out*rank)}
			bound := 1 / math.Sqrt(float64(in))
			for i := range t.A {
				t.A[i] = float32((2*rng.Float64() - 1) * bound)
			}
			l.Tensors = append(l.Tensors, t)
		}
	}
	for _, target := range targets {
		if !slices.Contains(LoRATargets, target) {
			return nil, fmt.Errorf("lora target %q is not one of %v", target, LoRATargets)
		}
	}
	return l, l.Validate(c)
}

// Grads returns a zeroed adapter of l's shape, for its gradients.
func (l *LoRA) Grads() *LoRA {
	g := &LoRA{Alpha: l.Alpha, Rank: l.Rank, Tensors: make([]LoRATensor, len(l.Tensors))}
	for i, t := range l.Tensors {
		g.Tensors[i] = LoRATensor{Layer: t.Layer, Target: t.Target, A: make([]float32, len(t.A)), B: make([]float32, len(t.B))}
	}
	return g
}

// Zero clears the adapter's matrices (its gradients, between steps).
func (l *LoRA) Zero() {
	for _, t := range l.Tensors {
		clear(t.A)
		clear(t.B)
	}
}

// targetIndex numbers LoRATargets for the per-layer lookup.
func targetIndex(name string) int { return slices.Index(LoRATargets, name) }

// Attach makes the model compute W + (Alpha/Rank)·B·A for the adapter's
// matrices in Score and train only the adapter with BackwardAdapter; the
// base weights are not copied or changed. nil detaches. Generation
// (Generate, Forward) does not see an attached adapter: merge it for that.
func (m *Model) Attach(l *LoRA) error {
	if l == nil {
		m.adapter, m.adapterAt = nil, nil
		return nil
	}
	if err := l.Validate(m.Config); err != nil {
		return err
	}
	m.adapter = l
	m.adapterAt = make([]*LoRATensor, m.Config.Layers*len(LoRATargets))
	for i := range l.Tensors {
		t := &l.Tensors[i]
		m.adapterAt[t.Layer*len(LoRATargets)+targetIndex(t.Target)] = t
	}
	return nil
}

// Adapter is the attached adapter, or nil.
func (m *Model) Adapter() *LoRA { return m.adapter }

// loraAt is the adapter of (layer, target), or nil.
func (m *Model) loraAt(l int, target string) *LoRATensor {
	if m.adapterAt == nil {
		return nil
	}
	return m.adapterAt[l*len(LoRATargets)+targetIndex(target)]
}

// projectLoRA is m.project(which, l, y, x, M, beta, projector{}) for
// matrix which of layer l and, when target has an adapter there, its
// Scale·(x·Aᵀ)·Bᵀ, keeping u = Scale·x·Aᵀ (M, rank) in activation slot slot
// for backward. Over F32 weights u·Bᵀ is GemmPlus's term: added to each
// panel of y right after x·Wᵀ, not in a second pass over y.
func (p *Pass) projectLoRA(which, l, slot int, target string, y, x []float32, beta float32) {
	m, M := p.m, p.M
	t := m.loraAt(l, target)
	if t == nil {
		m.project(which, l, y, x, M, beta, projector{})
		return
	}
	in, out := m.Config.projDims(which)
	r := m.adapter.Rank
	k := slot*len(LoRATargets) + targetIndex(target)
	if len(p.lu) != len(m.adapterAt) {
		p.lu = make([][]float32, len(m.adapterAt))
	}
	p.lu[k] = grow(p.lu[k], M*r)
	u := p.lu[k]
	gemm(false, true, M, r, in, x, in, t.A, in, 0, u, r)
	tensor.Scale(m.adapter.Scale(), u)
	if (projector{}).matrices(m) == nil {
		wl, _, _ := m.f32Layer(which, l)
		tensor.GemmPlus(false, true, M, out, in, x, in, wl, in, beta, y, out, tensor.Term{K: r, A: u, LdA: r, B: t.B, LdB: r})
		return
	}
	m.project(which, l, y, x, M, beta, projector{})
	gemm(false, true, M, out, r, u, r, t.B, r, 1, y, out)
}

// linearBackwardLoRA adds the input gradient dy·W of matrix which of layer
// l (target: its adapter's name) to dx (nil: not wanted) and its weight
// gradient dyᵀ·x to dw (nil: not wanted; over a reduced base it must be),
// and for an adapted matrix the adapter's part: its gradients added to g
// (nil: none) and its input gradient du·A (du = Scale·dy·B) added to dx —
// over F32 weights with dy·W, as GemmPlus's term.
func (p *Pass) linearBackwardLoRA(g *LoRA, l, slot, which int, target string, dx, dw, dy, x []float32) {
	m, M := p.m, p.M
	in, out := m.Config.projDims(which)
	if m.q != nil && dw != nil {
		panic(ErrReducedWeights) // Backward: only an adapter trains over a reduced base
	}
	t := m.loraAt(l, target)
	if t == nil || g == nil {
		if m.q != nil {
			m.reducedInputGrad(which, l, dx, dy, M)
			return
		}
		w, _, _ := m.f32Layer(which, l)
		linearBackward(dx, dw, dy, x, w, M, in, out)
		return
	}
	gt := g.at(l, target)
	r := m.adapter.Rank
	u := p.lu[slot*len(LoRATargets)+targetIndex(target)]
	gemm(true, false, out, r, M, dy, out, u, r, 1, gt.B, r) // dB += dyᵀ·u
	p.du = grow(p.du, M*r)
	gemm(false, false, M, r, out, dy, out, t.B, r, 0, p.du, r) // du = Scale·dy·B
	tensor.Scale(m.adapter.Scale(), p.du)
	gemm(true, false, r, in, M, p.du, r, x, in, 1, gt.A, in) // dA += duᵀ·x
	switch {
	case dx == nil:
	case m.q != nil:
		m.reducedInputGrad(which, l, dx, dy, M)
		gemm(false, false, M, in, r, p.du, r, t.A, in, 1, dx, in)
	default:
		w, _, _ := m.f32Layer(which, l)
		tensor.GemmPlus(false, false, M, in, out, dy, out, w, in, 1, dx, in, tensor.Term{K: r, A: p.du, LdA: r, B: t.A, LdB: in})
	}
	if dw != nil {
		w, _, _ := m.f32Layer(which, l)
		linearBackward(nil, dw, dy, x, w, M, in, out)
	}
}

// at is the tensor of (layer, target); it panics when absent (a gradient
// adapter always has the attached adapter's shape).
func (l *LoRA) at(layer int, target string) *LoRATensor {
	for i := range l.Tensors {
		if l.Tensors[i].Layer == layer && l.Tensors[i].Target == target {
			return &l.Tensors[i]
		}
	}
	panic(fmt.Sprintf("lora gradient of layer %d %s missing", layer, target))
}
