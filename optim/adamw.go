package optim

import (
	"math"

	"fspo/tensor"
)

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled
// Weight Decay Regularization", ICLR 2019, Algorithm 2), with the update of
// torch.optim.AdamW (PyTorch docs, amsgrad=False, maximize=False). At step t
// with learning rate γ, for each parameter θ with gradient g:
//
//	θ ← θ·(1 − γλ)                         (decoupled weight decay, λ = WeightDecay)
//	m ← m + (1−β1)·(g − m)                 (= β1·m + (1−β1)·g, PyTorch's lerp)
//	v ← β2·v + (1−β2)·g²
//	θ ← θ − (γ / (1−β1^t)) · m / (√v / √(1−β2^t) + ε)
//
// Per-element arithmetic is float32 in the same order as PyTorch's CPU
// kernels; the per-step scalars (bias corrections, step size) are computed in
// float64 as PyTorch does with Python floats. The hyperparameters are float32,
// so e.g. Beta1 = 0.9 is float32(0.9), not the float64 0.9 of a Python
// literal: results agree with PyTorch to float32 rounding, not bit for bit.
type AdamW struct {
	Beta1, Beta2 float32 // moment decay rates, in [0, 1); PyTorch: 0.9, 0.999
	Eps          float32 // added to the denominator, > 0; PyTorch: 1e-8
	WeightDecay  float32 // decoupled decay λ >= 0; PyTorch: 0.01

	// Frozen names parameters that are never updated and get no state.
	Frozen map[string]bool
	// Decay says which parameters get weight decay; nil means DecayMatrices
	// (no decay on 1-D tensors). Use DecayAll for torch.optim's behaviour.
	Decay func(tensor.Tensor) bool

	st state
}

// NewAdamW returns AdamW with PyTorch's defaults (β1 0.9, β2 0.999, ε 1e-8,
// weight decay 0.01).
func NewAdamW() *AdamW {
	return &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
}

var _ Optimizer = (*AdamW)(nil)

var adamwKinds = []string{"m", "v"}

// Validate checks the hyperparameters.
func (o *AdamW) Validate() error {
	return validate("adamw", inUnit("beta1", o.Beta1), inUnit("beta2", o.Beta2), positive("eps", o.Eps), nonNegative("weight decay", o.WeightDecay))
}

// Bind validates the configuration and matches the state to params
// (creating zeroed buffers at step 0). Step binds on its first call and
// panics on error; call Bind first to handle bad state as an error.
func (o *AdamW) Bind(params []tensor.Tensor) error {
	if err := o.Validate(); err != nil {
		return err
	}
	return o.st.bind("adamw", adamwKinds, params, o.Frozen, o.Decay)
}

// Step applies one AdamW update in place.
func (o *AdamW) Step(params, grads []tensor.Tensor, lr float32) {
	if !o.st.bound {
		if err := o.Bind(params); err != nil {
			panic(err)
		}
	}
	o.st.check("adamw", params, grads)
	checkLR("adamw", lr)
	o.st.step++
	t := float64(o.st.step)
	bc1 := 1 - math.Pow(float64(o.Beta1), t)
	bc2 := 1 - math.Pow(float64(o.Beta2), t)
	k := adamwConsts{
		w1:       float32(1 - float64(o.Beta1)),
		beta2:    o.Beta2,
		w2:       float32(1 - float64(o.Beta2)),
		eps:      o.Eps,
		negStep:  float32(-float64(lr) / bc1),
		bc2Sqrt:  float32(math.Sqrt(bc2)),
		lerpHigh: 1-float64(o.Beta1) >= 0.5,
	}
	decay := float32(1 - float64(lr)*float64(o.WeightDecay))
	for i, p := range params {
		sl := o.st.slots[i]
		if sl == nil {
			continue
		}
		k.decay = 1
		if sl.decay && o.WeightDecay != 0 {
			k.decay = decay
		}
		pd, g, m, v := p.Data, grads[i].Data, sl.bufs[0], sl.bufs[1]
		kp := k // a copy for the chunks: the loop goes on changing k.decay
		inChunks(len(pd), func(lo, hi int) {
			adamwUpdate(pd[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], &kp)
		})
	}
}

type adamwConsts struct {
	decay, w1, beta2, w2, eps, negStep, bc2Sqrt float32
	lerpHigh                                    bool // lerp weight >= 0.5 (β1 <= 0.5)
}

// adamwUpdate is the per-element AdamW loop over one parameter.
// Explicit float32 conversions keep each operation rounded separately (no
// fused multiply-add), matching PyTorch's unfused CPU kernels.
func adamwUpdate(p, g, m, v []float32, k *adamwConsts) {
	n := len(p)
	g, m, v = g[:n], m[:n], v[:n]
	start := adamwVec(p, g, m, v, k)
	decay, w1, beta2, w2, eps, negStep, bc2Sqrt := k.decay, k.w1, k.beta2, k.w2, k.eps, k.negStep, k.bc2Sqrt
	if decay != 1 {
		for i := start; i < n; i++ {
			p[i] *= decay
		}
	}
	for i := start; i < n; i++ {
		gi := g[i]
		mi := m[i]
		// torch.lerp: a + w·(b−a) for |w| < 0.5, else b − (b−a)·(1−w).
		if !k.lerpHigh {
			mi = mi + float32(w1*(gi-mi))
		} else {
			mi = gi - float32((gi-mi)*(1-w1))
		}
		vi := float32(v[i]*beta2) + float32(float32(w2*gi)*gi)
		m[i], v[i] = mi, vi
		denom := float32(float32(math.Sqrt(float64(vi)))/bc2Sqrt) + eps
		p[i] += float32(negStep*mi) / denom
	}
}

// State returns a copy of the moment buffers and step count.
func (o *AdamW) State() []tensor.Tensor { return o.st.export("adamw") }

// SetState replaces the state with a copy of ts (see the package doc).
func (o *AdamW) SetState(ts []tensor.Tensor) error { return o.st.load("adamw", adamwKinds, ts) }

// Steps is the number of completed steps.
func (o *AdamW) Steps() int64 { return o.st.step }
