package optim

import (
	"math"

	"fspo/tensor"
)

// RMSprop is the update of torch.optim.RMSprop (PyTorch docs; Hinton's
// lecture 6e, centered variant from Graves 2013, arXiv 1308.0850 eq. 38–45).
// At each step with learning rate γ, for each parameter θ with gradient g:
//
//	g ← g + λθ                              (L2 weight decay, λ = WeightDecay, if λ ≠ 0)
//	v ← α·v + (1−α)·g²                      (square_avg)
//	ṽ ← v − ḡ², ḡ ← ḡ + (1−α)·(g − ḡ)       (only if Centered; grad_avg ḡ)
//	d ← √ṽ + ε                              (ε outside the square root)
//	b ← μ·b + g/d, θ ← θ − γ·b              (if Momentum μ > 0)
//	θ ← θ − γ·g/d                           (otherwise)
//
// Per-element arithmetic is float32 in PyTorch's order. Note that, as in
// PyTorch, weight decay here is coupled (added to the gradient), and the
// centered variant can produce NaN if rounding makes ṽ slightly negative.
type RMSprop struct {
	Alpha       float32 // smoothing constant in [0, 1); PyTorch default 0.99
	Eps         float32 // added to the denominator, > 0; PyTorch default 1e-8
	WeightDecay float32 // L2 penalty >= 0; PyTorch default 0
	Momentum    float32 // momentum in [0, 1); PyTorch default 0
	Centered    bool    // normalise by the gradient's variance estimate

	// Frozen names parameters that are never updated and get no state.
	Frozen map[string]bool
	// Decay says which parameters get weight decay; nil means DecayMatrices
	// (no decay on 1-D tensors). Use DecayAll for torch.optim's behaviour.
	Decay func(tensor.Tensor) bool

	st state
}

// NewRMSprop returns RMSprop with PyTorch's defaults (α 0.99, ε 1e-8, no
// weight decay, no momentum, not centered).
func NewRMSprop() *RMSprop { return &RMSprop{Alpha: 0.99, Eps: 1e-8} }

var _ Optimizer = (*RMSprop)(nil)

// kinds lists the buffers of this configuration, square_avg first.
func (o *RMSprop) kinds() []string {
	k := []string{"square_avg"}
	if o.Momentum > 0 {
		k = append(k, "momentum_buffer")
	}
	if o.Centered {
		k = append(k, "grad_avg")
	}
	return k
}

// Validate checks the hyperparameters.
func (o *RMSprop) Validate() error {
	return validate("rmsprop", inUnit("alpha", o.Alpha), positive("eps", o.Eps), nonNegative("weight decay", o.WeightDecay), inUnit("momentum", o.Momentum))
}

// Bind validates the configuration and matches the state to params
// (creating zeroed buffers at step 0). Step binds on its first call and
// panics on error; call Bind first to handle bad state as an error.
func (o *RMSprop) Bind(params []tensor.Tensor) error {
	if err := o.Validate(); err != nil {
		return err
	}
	return o.st.bind("rmsprop", o.kinds(), params, o.Frozen, o.Decay)
}

// Step applies one RMSprop update in place.
func (o *RMSprop) Step(params, grads []tensor.Tensor, lr float32) {
	if !o.st.bound || !o.st.sameKinds(o.kinds()) {
		// Momentum or Centered changed since binding: rebinding reports
		// the mismatch between the state and the configuration.
		if err := o.Bind(params); err != nil {
			panic(err)
		}
	}
	o.st.check("rmsprop", params, grads)
	checkLR("rmsprop", lr)
	o.st.step++
	k := rmspropConsts{
		alpha:    o.Alpha,
		w:        float32(1 - float64(o.Alpha)),
		eps:      o.Eps,
		momentum: o.Momentum,
		negLR:    -lr,
		lerpHigh: 1-float64(o.Alpha) >= 0.5,
	}
	for i, p := range params {
		sl := o.st.slots[i]
		if sl == nil {
			continue
		}
		k.wd = 0
		if sl.decay {
			k.wd = o.WeightDecay
		}
		sq := sl.bufs[0]
		var buf, avg []float32
		j := 1
		if o.Momentum > 0 {
			buf = sl.bufs[j]
			j++
		}
		if o.Centered {
			avg = sl.bufs[j]
		}
		pd, g, kp := p.Data, grads[i].Data, k // k: a copy for the chunks (the loop changes k.wd)
		inChunks(len(pd), func(lo, hi int) {
			rmspropUpdate(pd[lo:hi], g[lo:hi], sq[lo:hi], part(buf, lo, hi), part(avg, lo, hi), &kp)
		})
	}
}

type rmspropConsts struct {
	alpha, w, eps, momentum, negLR, wd float32
	lerpHigh                           bool // lerp weight 1−α >= 0.5
}

// rmspropUpdate is the per-element loop over one parameter; buf is nil
// without momentum and avg is nil unless centered. Explicit float32
// conversions keep each operation rounded separately (no fused multiply-add).
func rmspropUpdate(p, g, sq, buf, avg []float32, k *rmspropConsts) {
	n := len(p)
	g, sq = g[:n], sq[:n]
	start := rmspropVec(p, g, sq, buf, avg, k)
	alpha, w, eps, mom, negLR, wd := k.alpha, k.w, k.eps, k.momentum, k.negLR, k.wd
	for i := start; i < n; i++ {
		gi := g[i]
		if wd != 0 {
			gi += float32(wd * p[i])
		}
		s := float32(sq[i]*alpha) + float32(float32(w*gi)*gi)
		sq[i] = s
		var d float32
		if avg != nil {
			a := avg[i]
			if !k.lerpHigh {
				a = a + float32(w*(gi-a))
			} else {
				a = gi - float32((gi-a)*(1-w))
			}
			avg[i] = a
			d = float32(math.Sqrt(float64(s + float32(-a*a))))
		} else {
			d = float32(math.Sqrt(float64(s)))
		}
		d += eps
		if buf != nil {
			b := float32(buf[i]*mom) + gi/d
			buf[i] = b
			p[i] += float32(negLR * b)
		} else {
			p[i] += float32(negLR*gi) / d
		}
	}
}

// State returns a copy of the buffers and step count.
func (o *RMSprop) State() []tensor.Tensor { return o.st.export("rmsprop") }

// SetState replaces the state with a copy of ts (see the package doc).
func (o *RMSprop) SetState(ts []tensor.Tensor) error {
	return o.st.load("rmsprop", o.kinds(), ts)
}

// Steps is the number of completed steps.
func (o *RMSprop) Steps() int64 { return o.st.step }
