// Package optim holds the optimizers (AdamW, RMSprop), global gradient-norm
// clipping and learning-rate schedules used by training.
//
// Parameters and gradients are []tensor.Tensor in the same order with the
// same names and shapes. An optimizer creates its per-parameter buffers on
// the first Step (or takes them from SetState) and from then on expects the
// same parameter list, in the same order, at every Step.
//
// # State layout
//
// State returns everything needed to continue bit-exactly after a restart:
// one tensor per buffer and parameter, named "<optimizer>.<buffer>/<param>"
// with the parameter's shape (e.g. "adamw.m/layers.0.wq", "adamw.v/...",
// "rmsprop.square_avg/..."), in parameter order, followed by one step tensor
// "<optimizer>.step" of shape [2] holding the number of completed steps as
// {step / 2^24, step mod 2^24}: both halves are integers below 2^24 and so
// exact in float32, which keeps any step count below 2^48 exact.
// Frozen parameters have no buffers. The hyperparameters are not part of the
// state: they are configuration and are restored by the caller.
package optim

import (
	"fmt"
	"math"

	"fspo/tensor"
)

// Optimizer updates parameters in place from their gradients.
type Optimizer interface {
	// Step applies one update with learning rate lr. params and grads must
	// be the same list at every call (a mismatch is a programming error and
	// panics; call Bind first to get an error instead).
	Step(params, grads []tensor.Tensor, lr float32)
	// State returns a copy of the optimizer state (see the package doc).
	State() []tensor.Tensor
	// SetState replaces the state with a copy of a previous State result;
	// the buffers are matched to parameters by name at the next Bind or Step.
	SetState([]tensor.Tensor) error
	// Steps is the number of completed steps.
	Steps() int64
}

// DecayMatrices is the default weight-decay rule: decay tensors of rank 2 or
// more (weight matrices, embeddings) and leave 1-D tensors (RMSNorm gains,
// biases) undecayed, as nanoGPT and most LLM training recipes do.
func DecayMatrices(p tensor.Tensor) bool { return len(p.Shape) >= 2 }

// DecayAll decays every parameter, as torch.optim does with a single
// parameter group.
func DecayAll(tensor.Tensor) bool { return true }

// stepShift splits the step count into two float32-exact halves.
const stepShift = 1 << 24

// slot is the optimizer state of one parameter.
type slot struct {
	name  string
	shape []int
	bufs  [][]float32 // one buffer per kind, each len = numel(shape)
	decay bool        // weight decay applies to this parameter
}

// state is the bookkeeping shared by the optimizers: buffers by parameter,
// the step count and the binding of buffers to a parameter list.
type state struct {
	step   int64
	kinds  []string // buffer kinds of the bound or loaded state
	byName map[string]*slot
	order  []*slot // slots in parameter order (or SetState order before binding)

	bound bool
	slots []*slot // per parameter index; nil for frozen parameters
	names []string
}

// bind matches the buffers to params, creating zeroed buffers for
// parameters without state at step 0. kinds names the buffers (e.g.
// "m", "v"); prefix is the optimizer name used in errors.
func (s *state) bind(prefix string, kinds []string, params []tensor.Tensor, frozen map[string]bool, decay func(tensor.Tensor) bool) error {
	if decay == nil {
		decay = DecayMatrices
	}
	seen := make(map[string]bool, len(params))
	slots := make([]*slot, len(params))
	names := make([]string, len(params))
	order := make([]*slot, 0, len(params))
	for i, p := range params {
		if err := p.Check(); err != nil {
			return fmt.Errorf("%s: parameter %d: %w", prefix, i, err)
		}
		if p.Name == "" {
			return fmt.Errorf("%s: parameter %d has no name", prefix, i)
		}
		if seen[p.Name] {
			return fmt.Errorf("%s: parameter name %s appears twice", prefix, p.Name)
		}
		seen[p.Name] = true
		names[i] = p.Name
		sl := s.byName[p.Name]
		if frozen[p.Name] {
			if sl != nil {
				return fmt.Errorf("%s: state holds buffers for frozen parameter %s", prefix, p.Name)
			}
			continue
		}
		if sl == nil {
			if s.step > 0 {
				return fmt.Errorf("%s: no state for parameter %s at step %d (state from another model or frozen set?)", prefix, p.Name, s.step)
			}
			sl = &slot{name: p.Name, shape: append([]int(nil), p.Shape...), bufs: make([][]float32, len(kinds))}
			for k := range kinds {
				sl.bufs[k] = tensor.MakeWeights[float32](len(p.Data)) // huge pages: first touched by a whole-model sweep
			}
		} else if len(sl.bufs) != len(kinds) {
			return fmt.Errorf("%s: state for parameter %s has %d buffers, this configuration uses %d %v", prefix, p.Name, len(sl.bufs), len(kinds), kinds)
		} else if !sameShape(sl.shape, p.Shape) {
			return fmt.Errorf("%s: state for parameter %s has shape %v, parameter has %v", prefix, p.Name, sl.shape, p.Shape)
		}
		sl.decay = decay(p)
		slots[i] = sl
		order = append(order, sl)
	}
	for name := range s.byName {
		if !seen[name] {
			return fmt.Errorf("%s: state holds buffers for parameter %s, which is not in the parameter list", prefix, name)
		}
	}
	byName := make(map[string]*slot, len(order))
	for _, sl := range order {
		byName[sl.name] = sl
	}
	s.byName, s.order, s.slots, s.names, s.bound = byName, order, slots, names, true
	s.kinds = append([]string(nil), kinds...)
	return nil
}

// check panics when params or grads differ from the bound parameter list:
// this is a programming error in the caller, not bad input.
func (s *state) check(prefix string, params, grads []tensor.Tensor) {
	if len(params) != len(s.names) || len(grads) != len(params) {
		panic(fmt.Sprintf("%s: step with %d params and %d grads, bound to %d params", prefix, len(params), len(grads), len(s.names)))
	}
	for i, p := range params {
		if p.Name != s.names[i] {
			panic(fmt.Sprintf("%s: param %d is %s, bound to %s", prefix, i, p.Name, s.names[i]))
		}
		sl := s.slots[i]
		if sl == nil {
			continue
		}
		if len(p.Data) != len(sl.bufs[0]) || len(grads[i].Data) != len(p.Data) {
			panic(fmt.Sprintf("%s: param %s has %d values, grad %d, state %d", prefix, p.Name, len(p.Data), len(grads[i].Data), len(sl.bufs[0])))
		}
	}
}

// export copies the state into tensors named "<prefix>.<kind>/<param>".
func (s *state) export(prefix string) []tensor.Tensor {
	out := make([]tensor.Tensor, 0, len(s.order)*len(s.kinds)+1)
	for _, sl := range s.order {
		for k, kind := range s.kinds {
			out = append(out, tensor.Tensor{
				Name:  prefix + "." + kind + "/" + sl.name,
				Shape: append([]int(nil), sl.shape...),
				Data:  append([]float32(nil), sl.bufs[k]...),
			})
		}
	}
	out = append(out, tensor.Tensor{
		Name:  prefix + ".step",
		Shape: []int{2},
		Data:  []float32{float32(s.step / stepShift), float32(s.step % stepShift)},
	})
	return out
}

// load replaces the state with a copy of ts, checking that every parameter
// has exactly the buffers in kinds and that the step tensor is valid. On
// error the state is unchanged.
func (s *state) load(prefix string, kinds []string, ts []tensor.Tensor) error {
	kindIndex := make(map[string]int, len(kinds))
	for k, kind := range kinds {
		kindIndex[kind] = k
	}
	byName := map[string]*slot{}
	var order []*slot
	step := int64(-1)
	for i, t := range ts {
		if err := t.Check(); err != nil {
			return fmt.Errorf("%s: state tensor %d: %w", prefix, i, err)
		}
		if t.Name == prefix+".step" {
			n, err := decodeStep(t)
			if err != nil {
				return fmt.Errorf("%s: %w", prefix, err)
			}
			if step >= 0 {
				return fmt.Errorf("%s: state has two %s tensors", prefix, t.Name)
			}
			step = n
			continue
		}
		kind, param, ok := splitStateName(prefix, t.Name)
		if !ok {
			return fmt.Errorf("%s: state tensor %q is not named %s.<buffer>/<param>", prefix, t.Name, prefix)
		}
		k, ok := kindIndex[kind]
		if !ok {
			return fmt.Errorf("%s: state tensor %s: buffer %q is not used with this configuration (want one of %v)", prefix, t.Name, kind, kinds)
		}
		sl := byName[param]
		if sl == nil {
			sl = &slot{name: param, shape: append([]int(nil), t.Shape...), bufs: make([][]float32, len(kinds))}
			byName[param] = sl
			order = append(order, sl)
		}
		if !sameShape(sl.shape, t.Shape) {
			return fmt.Errorf("%s: state tensor %s has shape %v, other buffers of %s have %v", prefix, t.Name, t.Shape, param, sl.shape)
		}
		if sl.bufs[k] != nil {
			return fmt.Errorf("%s: state tensor %s appears twice", prefix, t.Name)
		}
		sl.bufs[k] = tensor.MakeWeights[float32](len(t.Data))
		copy(sl.bufs[k], t.Data)
	}
	if step < 0 {
		return fmt.Errorf("%s: state has no %s.step tensor", prefix, prefix)
	}
	for _, sl := range order {
		for k, b := range sl.bufs {
			if b == nil {
				return fmt.Errorf("%s: state has no %s.%s/%s tensor", prefix, prefix, kinds[k], sl.name)
			}
		}
	}
	*s = state{step: step, kinds: append([]string(nil), kinds...), byName: byName, order: order}
	return nil
}

func decodeStep(t tensor.Tensor) (int64, error) {
	if len(t.Data) != 2 {
		return 0, fmt.Errorf("step tensor %s has %d values, want 2", t.Name, len(t.Data))
	}
	hi, lo := t.Data[0], t.Data[1]
	for _, v := range []float32{hi, lo} {
		if v < 0 || v >= stepShift || v != float32(math.Trunc(float64(v))) {
			return 0, fmt.Errorf("step tensor %s holds %v, want two integers in [0, 2^24)", t.Name, t.Data)
		}
	}
	return int64(hi)*stepShift + int64(lo), nil
}

func splitStateName(prefix, name string) (kind, param string, ok bool) {
	if len(name) <= len(prefix)+1 || name[:len(prefix)] != prefix || name[len(prefix)] != '.' {
		return "", "", false
	}
	rest := name[len(prefix)+1:]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			if i == 0 || i == len(rest)-1 {
				return "", "", false
			}
			return rest[:i], rest[i+1:], true
		}
	}
	return "", "", false
}

// sameKinds reports whether the bound buffers are those of kinds.
func (s *state) sameKinds(kinds []string) bool {
	if len(s.kinds) != len(kinds) {
		return false
	}
	for i := range kinds {
		if s.kinds[i] != kinds[i] {
			return false
		}
	}
	return true
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float32) bool {
	return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
}

// checkLR panics on a learning rate that cannot come from a valid schedule.
func checkLR(prefix string, lr float32) {
	if !(lr >= 0) || !finite(lr) {
		panic(fmt.Sprintf("%s: learning rate %v must be finite and >= 0", prefix, lr))
	}
}

// rule is one hyperparameter's check: ok, and the range it must be in.
type rule struct {
	name, want string
	v          float32
	ok         bool
}

func inUnit(name string, v float32) rule { return rule{name, "in [0, 1)", v, v >= 0 && v < 1} }
func positive(name string, v float32) rule {
	return rule{name, "finite and > 0", v, v > 0 && finite(v)}
}
func nonNegative(name string, v float32) rule {
	return rule{name, "finite and >= 0", v, v >= 0 && finite(v)}
}

// validate returns the first broken rule as "opt: name v must be …".
func validate(opt string, rules ...rule) error {
	for _, r := range rules {
		if !r.ok {
			return fmt.Errorf("%s: %s %v must be %s", opt, r.name, r.v, r.want)
		}
	}
	return nil
}

// updateGrain is the fewest elements an optimizer update gives a thread:
// the updates are elementwise (a chunk's values are those of one pass over
// the whole parameter), and bound by memory, which two threads read faster
// than one.
const updateGrain = 1 << 16

// inChunks runs an elementwise update of n values in chunks over the
// threads (one chunk, on the caller, when n is under 2·updateGrain).
func inChunks(n int, update func(lo, hi int)) { tensor.ParallelFor(n, updateGrain, update) }

// part is b[lo:hi], or nil for an unused (nil) buffer.
func part(b []float32, lo, hi int) []float32 {
	if b == nil {
		return nil
	}
	return b[lo:hi]
}
