package optim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"fspo/tensor"
)

// near reports whether got is within tol of want (absolute, or relative
// for large values).
func near(got float32, want, tol float64) bool {
	return math.Abs(float64(got)-want) <= tol*math.Max(1, math.Abs(want))
}

func stateByName(ts []tensor.Tensor) map[string][]float32 {
	m := map[string][]float32{}
	for _, t := range ts {
		m[t.Name] = t.Data
	}
	return m
}

func TestAdamWByHand(t *testing.T) {
	// One [1,2] parameter, β1 0.9, β2 0.999, ε 1e-8, λ 0.1, γ 0.01.
	o := &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}
	p := []tensor.Tensor{{Name: "w", Shape: []int{1, 2}, Data: []float32{1, -2}}}
	steps := []struct {
		g       []float32
		m, v, p []float64
	}{
		// t=1, g=(0.5, 0.1):
		// θ·(1−γλ) = (1, −2)·0.999 = (0.999, −1.998)
		// m = 0.1·g = (0.05, 0.01); v = 0.001·g² = (2.5e-4, 1e-5)
		// m̂ = m/0.1 = g; √v̂ = √(v/0.001) = |g|; m̂/(√v̂+ε) = g/(|g|+1e-8)
		// θ = (0.999 − 0.01·0.5/0.50000001, −1.998 + 0.01·0.1/0.10000001)
		//   = (0.9890000002, −2.007999999)
		{g: []float32{0.5, 0.1}, m: []float64{0.05, 0.01}, v: []float64{2.5e-4, 1e-5}, p: []float64{0.9890000002, -2.007999999}},
		// t=2, g=(−0.5, 0.3):
		// θ·0.999 = (0.988011000, −2.005992001)
		// m = 0.9·(0.05, 0.01) + 0.1·(−0.5, 0.3) = (−0.005, 0.039)
		// v = 0.999·(2.5e-4, 1e-5) + 0.001·(0.25, 0.09) = (4.9975e-4, 9.999e-5)
		// 1−β1² = 0.19, 1−β2² = 0.001999
		// m̂ = (−0.026315789, 0.205263158); √v̂ = (√0.25, √0.050020010) = (0.5, 0.223651536)
		// θ = (0.988011000 + 0.01·0.052631579, −2.005992001 − 0.01·0.917780879)
		//   = (0.9885373160, −2.0151698098)
		{g: []float32{-0.5, 0.3}, m: []float64{-0.005, 0.039}, v: []float64{4.9975e-4, 9.999e-5}, p: []float64{0.9885373160, -2.0151698098}},
	}
	for i, s := range steps {
		g := []tensor.Tensor{{Name: "w", Shape: []int{1, 2}, Data: s.g}}
		o.Step(p, g, 0.01)
		st := stateByName(o.State())
		for j := range s.p {
			if !near(p[0].Data[j], s.p[j], 2e-7) {
				t.Errorf("step %d: p[%d] = %.10g, want %.10g", i+1, j, p[0].Data[j], s.p[j])
			}
			if !near(st["adamw.m/w"][j], s.m[j], 1e-6) {
				t.Errorf("step %d: m[%d] = %.10g, want %.10g", i+1, j, st["adamw.m/w"][j], s.m[j])
			}
			if !near(st["adamw.v/w"][j], s.v[j], 1e-6) {
				t.Errorf("step %d: v[%d] = %.10g, want %.10g", i+1, j, st["adamw.v/w"][j], s.v[j])
			}
		}
	}
	if got := o.Steps(); got != 2 {
		t.Errorf("Steps() = %d, want 2", got)
	}
}

func TestRMSpropByHand(t *testing.T) {
	// One [1,2] parameter θ = (1, −2), γ 0.01, α 0.99, ε 1e-8; gradients
	// g1 = (0.5, 0.1) then g2 = (0.25, −0.3). Common to all rows:
	// v1 = 0.01·g1² = (0.0025, 1e-4); with no decay √v1 = (0.05, 0.01).
	// v2 = 0.99·v1 + 0.01·g2² = (0.0031, 9.99e-4); √v2 = (0.055677644, 0.031606961).
	g1, g2 := []float32{0.5, 0.1}, []float32{0.25, -0.3}
	tests := []struct {
		name   string
		o      *RMSprop
		p1, p2 []float64
	}{
		{
			// θ1 = θ − 0.01·g1/√v1 = (1 − 0.1, −2 − 0.1) (ε moves the 8th digit)
			// θ2 = θ1 − 0.01·g2/√v2 = (0.9 − 0.044901298, −2.1 + 0.094915870)
			name: "plain", o: &RMSprop{Alpha: 0.99, Eps: 1e-8},
			p1: []float64{0.90000002, -2.0999999}, p2: []float64{0.8550987026, -2.0050841305},
		},
		{
			// b1 = g1/(√v1+ε) = (9.999998, 9.99999); θ1 = θ − 0.01·b1 = (0.90000002, −2.0999999)
			// b2 = 0.9·b1 + g2/(√v2+ε) = (8.999998 + 4.490130, 8.999991 − 9.491577) = (13.490130, −0.491586)
			// θ2 = θ1 − 0.01·b2 = (0.7650987206, −2.0950840405)
			name: "momentum", o: &RMSprop{Alpha: 0.99, Eps: 1e-8, Momentum: 0.9},
			p1: []float64{0.90000002, -2.0999999}, p2: []float64{0.7650987206, -2.0950840405},
		},
		{
			// ḡ1 = 0.01·g1 = (0.005, 0.001); √(v1 − ḡ1²) = (√0.002475, √9.9e-5) = (0.049749372, 0.009949874)
			// θ1 = θ − 0.01·g1/… = (1 − 0.100503782, −2 − 0.100503782) = (0.8994962387, −2.1005036805)
			// ḡ2 = 0.99·ḡ1 + 0.01·g2 = (0.00745, −0.00201); √(v2 − ḡ2²) = (√0.003044498, √9.94960e-4)
			// θ2 = θ1 − 0.01·g2/… = (0.8994962387 − 0.045308754, −2.1005036805 + 0.095108280)
			name: "centered", o: &RMSprop{Alpha: 0.99, Eps: 1e-8, Centered: true},
			p1: []float64{0.8994962387, -2.1005036805}, p2: []float64{0.8541874847, -2.0053954004},
		},
		{
			// λ 0.1 added to the gradient: g1' = g1 + 0.1·θ = (0.6, −0.1); v1 = 0.01·g1'² = (0.0036, 1e-4)
			// θ1 = θ − 0.01·g1'/√v1 = (1 − 0.1, −2 + 0.1) = (0.9, −1.9)
			// g2' = g2 + 0.1·θ1 = (0.34, −0.49); v2 = 0.99·v1 + 0.01·g2'² = (0.004720, 0.0025)
			// θ2 = θ1 − 0.01·g2'/√v2 = (0.9 − 0.049488890, −1.9 + 0.098)
			name: "weight decay", o: &RMSprop{Alpha: 0.99, Eps: 1e-8, WeightDecay: 0.1},
			p1: []float64{0.9000000167, -1.9000001}, p2: []float64{0.8505111104, -1.8020001195},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := []tensor.Tensor{{Name: "w", Shape: []int{1, 2}, Data: []float32{1, -2}}}
			for i, c := range []struct {
				g    []float32
				want []float64
			}{{g1, tc.p1}, {g2, tc.p2}} {
				g := []tensor.Tensor{{Name: "w", Shape: []int{1, 2}, Data: append([]float32(nil), c.g...)}}
				tc.o.Step(p, g, 0.01)
				for j, w := range c.want {
					if !near(p[0].Data[j], w, 3e-7) {
						t.Errorf("step %d: p[%d] = %.10g, want %.10g", i+1, j, p[0].Data[j], w)
					}
				}
			}
		})
	}
}

// reference64 is the textbook AdamW in float64, an independent check of
// the float32 loop over many steps.
func TestAdamWMatchesFloat64Reference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n, steps = 64, 50
	b1, b2, eps, wd, lr := 0.9, 0.95, 1e-8, 0.1, 1e-3
	o := &AdamW{Beta1: float32(b1), Beta2: float32(b2), Eps: float32(eps), WeightDecay: float32(wd)}
	p := []tensor.Tensor{tensor.New("w", 8, 8)}
	ref := make([]float64, n)
	m, v := make([]float64, n), make([]float64, n)
	for i := range ref {
		p[0].Data[i] = float32(r.NormFloat64())
		ref[i] = float64(p[0].Data[i])
	}
	// Use the float32-rounded hyperparameters in the reference too.
	b1, b2, wd = float64(float32(b1)), float64(float32(b2)), float64(float32(wd))
	for s := 1; s <= steps; s++ {
		g := tensor.New("w", 8, 8)
		for i := range g.Data {
			g.Data[i] = float32(r.NormFloat64())
		}
		o.Step(p, []tensor.Tensor{g}, float32(lr))
		for i := range ref {
			gi := float64(g.Data[i])
			ref[i] *= 1 - float64(float32(lr))*wd
			m[i] = b1*m[i] + (1-b1)*gi
			v[i] = b2*v[i] + (1-b2)*gi*gi
			mh := m[i] / (1 - math.Pow(b1, float64(s)))
			vh := v[i] / (1 - math.Pow(b2, float64(s)))
			ref[i] -= float64(float32(lr)) * mh / (math.Sqrt(vh) + eps)
		}
	}
	for i := range ref {
		if !near(p[0].Data[i], ref[i], 1e-5) {
			t.Fatalf("p[%d] = %.9g, float64 reference %.9g", i, p[0].Data[i], ref[i])
		}
	}
}

func TestFrozenAndDecayMask(t *testing.T) {
	// Zero gradients: the Adam term is 0/(0+ε) = 0, so only weight decay
	// moves parameters: θ·(1 − γλ) = 2·(1 − 0.1·0.1) = 1.98. The frozen
	// parameter gets a nonzero gradient and must not move.
	mk := func() []tensor.Tensor {
		return []tensor.Tensor{
			{Name: "emb", Shape: []int{1, 2}, Data: []float32{2, 2}},
			{Name: "norm", Shape: []int{2}, Data: []float32{2, 2}},
			{Name: "frozen", Shape: []int{1, 2}, Data: []float32{2, 2}},
		}
	}
	zeros := func() []tensor.Tensor {
		return []tensor.Tensor{tensor.New("emb", 1, 2), tensor.New("norm", 2), {Name: "frozen", Shape: []int{1, 2}, Data: []float32{5, 5}}}
	}
	tests := []struct {
		name  string
		o     Optimizer
		wants [3]float32 // emb, norm, frozen after one step
	}{
		{"adamw default mask", &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Frozen: map[string]bool{"frozen": true}}, [3]float32{1.98, 2, 2}},
		{"adamw decay all", &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Frozen: map[string]bool{"frozen": true}, Decay: DecayAll}, [3]float32{1.98, 1.98, 2}},
		// RMSprop's decay is coupled: g' = 0 + 0.1·2 = 0.2, v = 0.01·0.2² = 4e-4,
		// θ = 2 − 0.1·0.2/(√4e-4 + ε) = 2 − 0.1·0.2/0.02 = 1.
		{"rmsprop default mask", &RMSprop{Alpha: 0.99, Eps: 1e-8, WeightDecay: 0.1, Frozen: map[string]bool{"frozen": true}}, [3]float32{1, 2, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mk()
			tc.o.Step(p, zeros(), 0.1)
			for i, want := range tc.wants {
				for j, got := range p[i].Data {
					if !near(got, float64(want), 1e-6) {
						t.Errorf("%s[%d] = %v, want %v", p[i].Name, j, got, want)
					}
				}
			}
			for _, s := range tc.o.State() {
				if strings.HasSuffix(s.Name, "/frozen") {
					t.Errorf("state has %s for a frozen parameter", s.Name)
				}
			}
		})
	}
}

func randomGrads(r *rand.Rand, params []tensor.Tensor) []tensor.Tensor {
	g := make([]tensor.Tensor, len(params))
	for i, p := range params {
		g[i] = tensor.New(p.Name, p.Shape...)
		for j := range g[i].Data {
			g[i].Data[j] = float32(r.NormFloat64())
		}
	}
	return g
}

func cloneAll(ts []tensor.Tensor) []tensor.Tensor {
	out := make([]tensor.Tensor, len(ts))
	for i, t := range ts {
		out[i] = tensor.Tensor{Name: t.Name, Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
	}
	return out
}

func TestStateRoundTripContinuesIdentically(t *testing.T) {
	makers := map[string]func() Optimizer{
		"adamw": func() Optimizer { return &AdamW{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1} },
		"rmsprop": func() Optimizer {
			return &RMSprop{Alpha: 0.9, Eps: 1e-6, WeightDecay: 0.01, Momentum: 0.5, Centered: true}
		},
	}
	for name, mk := range makers {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 8))
			params := []tensor.Tensor{tensor.New("a", 3, 4), tensor.New("b", 5), tensor.New("c", 2, 2)}
			for _, g := range randomGrads(r, params) {
				for _, p := range params {
					if p.Name == g.Name {
						copy(p.Data, g.Data)
					}
				}
			}
			a := mk()
			for range 5 {
				a.Step(params, randomGrads(r, params), 1e-2)
			}
			b := mk()
			if err := b.SetState(a.State()); err != nil {
				t.Fatalf("SetState: %v", err)
			}
			if b.Steps() != 5 {
				t.Fatalf("restored Steps() = %d, want 5", b.Steps())
			}
			pb := cloneAll(params)
			for range 5 {
				g := randomGrads(r, params)
				a.Step(params, g, 1e-2)
				b.Step(pb, cloneAll(g), 1e-2)
			}
			for i := range params {
				for j := range params[i].Data {
					if math.Float32bits(params[i].Data[j]) != math.Float32bits(pb[i].Data[j]) {
						t.Fatalf("%s[%d]: continued %v, restored %v", params[i].Name, j, params[i].Data[j], pb[i].Data[j])
					}
				}
			}
		})
	}
}

func TestStepCountEncoding(t *testing.T) {
	for _, step := range []int64{0, 1, 1<<24 - 1, 1 << 24, 1<<40 + 12345} {
		st := []tensor.Tensor{{Name: "adamw.step", Shape: []int{2}, Data: []float32{float32(step / (1 << 24)), float32(step % (1 << 24))}}}
		o := NewAdamW()
		if err := o.SetState(st); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if got := o.Steps(); got != step {
			t.Errorf("Steps() = %d, want %d", got, step)
		}
		out := o.State()
		if got := out[len(out)-1].Data; got[0] != st[0].Data[0] || got[1] != st[0].Data[1] {
			t.Errorf("step %d exported as %v, want %v", step, got, st[0].Data)
		}
	}
}

func TestSetStateErrors(t *testing.T) {
	step := func(v ...float32) tensor.Tensor { return tensor.Tensor{Name: "adamw.step", Shape: []int{2}, Data: v} }
	buf := func(name string, shape ...int) tensor.Tensor { return tensor.New(name, shape...) }
	tests := []struct {
		name string
		st   []tensor.Tensor
		want string
	}{
		{"no step", []tensor.Tensor{buf("adamw.m/w", 2), buf("adamw.v/w", 2)}, "no adamw.step"},
		{"fractional step", []tensor.Tensor{step(0, 1.5)}, "two integers"},
		{"negative step", []tensor.Tensor{step(-1, 0)}, "two integers"},
		{"step too short", []tensor.Tensor{{Name: "adamw.step", Shape: []int{1}, Data: []float32{1}}}, "want 2"},
		{"unknown buffer", []tensor.Tensor{buf("adamw.q/w", 2), step(0, 1)}, `buffer "q"`},
		{"foreign name", []tensor.Tensor{buf("rmsprop.square_avg/w", 2), step(0, 1)}, "not named"},
		{"missing v", []tensor.Tensor{buf("adamw.m/w", 2), step(0, 1)}, "no adamw.v/w"},
		{"shape mismatch", []tensor.Tensor{buf("adamw.m/w", 2), buf("adamw.v/w", 3), step(0, 1)}, "shape"},
		{"bad tensor", []tensor.Tensor{{Name: "adamw.m/w", Shape: []int{3}, Data: []float32{1}}, step(0, 1)}, "wants 3 values"},
		{"duplicate", []tensor.Tensor{buf("adamw.m/w", 2), buf("adamw.m/w", 2), buf("adamw.v/w", 2), step(0, 1)}, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := NewAdamW().SetState(tc.st)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SetState error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestBindErrors(t *testing.T) {
	good := []tensor.Tensor{tensor.New("adamw.m/w", 2), tensor.New("adamw.v/w", 2), {Name: "adamw.step", Shape: []int{2}, Data: []float32{0, 3}}}
	tests := []struct {
		name   string
		o      *AdamW
		params []tensor.Tensor
		want   string
	}{
		{"wrong shape", NewAdamW(), []tensor.Tensor{tensor.New("w", 3)}, "has shape [2], parameter has [3]"},
		{"missing state", NewAdamW(), []tensor.Tensor{tensor.New("w", 2), tensor.New("x", 2)}, "no state for parameter x at step 3"},
		{"stale state", &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Frozen: map[string]bool{"x": true}}, []tensor.Tensor{tensor.New("x", 2)}, "state holds buffers for parameter w"},
		{"state for frozen", &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Frozen: map[string]bool{"w": true}}, []tensor.Tensor{tensor.New("w", 2)}, "frozen parameter w"},
		{"duplicate names", NewAdamW(), []tensor.Tensor{tensor.New("w", 2), tensor.New("w", 2)}, "appears twice"},
		{"bad config", &AdamW{Beta1: 1, Beta2: 0.999, Eps: 1e-8}, []tensor.Tensor{tensor.New("w", 2)}, "beta1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.o.SetState(good); err != nil {
				t.Fatal(err)
			}
			err := tc.o.Bind(tc.params)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Bind error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"adamw beta2", (&AdamW{Beta1: 0.9, Beta2: -0.1, Eps: 1e-8}).Validate(), "beta2"},
		{"adamw eps 0", (&AdamW{Beta1: 0.9, Beta2: 0.9}).Validate(), "eps"},
		{"adamw wd nan", (&AdamW{Beta1: 0.9, Beta2: 0.9, Eps: 1, WeightDecay: nan}).Validate(), "weight decay"},
		{"rmsprop alpha 1", (&RMSprop{Alpha: 1, Eps: 1e-8}).Validate(), "alpha"},
		{"rmsprop momentum", (&RMSprop{Alpha: 0.99, Eps: 1e-8, Momentum: -1}).Validate(), "momentum"},
		{"rmsprop eps", (&RMSprop{Alpha: 0.99}).Validate(), "eps"},
		{"adamw defaults", NewAdamW().Validate(), ""},
		{"rmsprop defaults", NewRMSprop().Validate(), ""},
	}
	for _, tc := range tests {
		if tc.want == "" {
			if tc.err != nil {
				t.Errorf("%s: unexpected error %v", tc.name, tc.err)
			}
			continue
		}
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want it to contain %q", tc.name, tc.err, tc.want)
		}
	}
}

func TestStepPanicsOnChangedParams(t *testing.T) {
	o := NewRMSprop()
	p := []tensor.Tensor{tensor.New("w", 2)}
	o.Step(p, []tensor.Tensor{tensor.New("w", 2)}, 0.1)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "bound to w") {
			t.Fatalf("recover() = %v, want a panic naming the bound parameter", r)
		}
	}()
	o.Step([]tensor.Tensor{tensor.New("x", 2)}, []tensor.Tensor{tensor.New("x", 2)}, 0.1)
}

// BenchmarkAdamW measures one step over the stories260K parameter count.
func BenchmarkAdamW(b *testing.B) {
	benchmarkOptimizer(b, NewAdamW())
}

func BenchmarkRMSprop(b *testing.B) {
	benchmarkOptimizer(b, NewRMSprop())
}

func benchmarkOptimizer(b *testing.B, o Optimizer) {
	// 260K parameters: one 512×64 embedding, 5 layers of 4 64×64 and 3 64×172 matrices.
	params := []tensor.Tensor{tensor.New("emb", 512, 64)}
	for l := range 5 {
		for k := range 4 {
			params = append(params, tensor.New(strings.Repeat("a", l+1)+string(rune('a'+k)), 64, 64))
		}
		for k := range 3 {
			params = append(params, tensor.New(strings.Repeat("m", l+1)+string(rune('a'+k)), 64, 172))
		}
	}
	grads := randomGrads(rand.New(rand.NewPCG(1, 1)), params)
	n := 0
	for _, p := range params {
		n += len(p.Data)
	}
	b.SetBytes(int64(n) * 4)
	b.ResetTimer()
	for range b.N {
		o.Step(params, grads, 1e-4)
	}
}

// TestVectorLoopsMatchScalar runs every update variant with the vector
// loops on and off and requires bit-identical parameters and state.
func TestVectorLoopsMatchScalar(t *testing.T) {
	if !useVec {
		t.Skip("no vector loops in this build or CPU")
	}
	makers := map[string]func() Optimizer{
		"adamw":                  func() Optimizer { return &AdamW{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1} },
		"adamw beta1 0.3":        func() Optimizer { return &AdamW{Beta1: 0.3, Beta2: 0.999, Eps: 1e-6} },
		"rmsprop":                func() Optimizer { return NewRMSprop() },
		"rmsprop wd momentum":    func() Optimizer { return &RMSprop{Alpha: 0.99, Eps: 1e-8, WeightDecay: 0.05, Momentum: 0.9} },
		"rmsprop centered":       func() Optimizer { return &RMSprop{Alpha: 0.9, Eps: 1e-8, Centered: true, Momentum: 0.5} },
		"rmsprop centered alpha": func() Optimizer { return &RMSprop{Alpha: 0.4, Eps: 1e-8, Centered: true} },
	}
	for name, mk := range makers {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			params := []tensor.Tensor{tensor.New("a", 7, 9), tensor.New("b", 13), tensor.New("c", 8, 8)}
			for _, p := range params {
				for j := range p.Data {
					p.Data[j] = float32(r.NormFloat64())
				}
			}
			vecP, scalarP := cloneAll(params), cloneAll(params)
			vec, scalar := mk(), mk()
			defer func() { useVec = true }()
			for range 20 {
				g := randomGrads(r, params)
				useVec = true
				vec.Step(vecP, cloneAll(g), 3e-3)
				useVec = false
				scalar.Step(scalarP, cloneAll(g), 3e-3)
			}
			a, b := append(vecP, vec.State()...), append(scalarP, scalar.State()...)
			for i := range a {
				for j := range a[i].Data {
					if math.Float32bits(a[i].Data[j]) != math.Float32bits(b[i].Data[j]) {
						t.Fatalf("%s[%d]: vector %v, scalar %v", a[i].Name, j, a[i].Data[j], b[i].Data[j])
					}
				}
			}
		})
	}
}

// TestUpdatesThreadsAgree: an update split over threads (chunks of a large
// parameter) gives the parameters and state of one thread's update bit for
// bit, over a few steps with weight decay — AdamW, and RMSprop with
// momentum and centering (its optional buffers).
func TestUpdatesThreadsAgree(t *testing.T) {
	defer tensor.SetThreads(tensor.Threads())
	newRMSprop := func() Optimizer {
		o := NewRMSprop()
		o.Momentum, o.Centered, o.WeightDecay = 0.9, true, 0.1
		return o
	}
	newAdamW := func() Optimizer {
		o := NewAdamW()
		o.WeightDecay = 0.1
		return o
	}
	for name, newOpt := range map[string]func() Optimizer{"adamw": newAdamW, "rmsprop": newRMSprop} {
		threadsAgree(t, name, newOpt)
	}
}

func threadsAgree(t *testing.T, name string, newOpt func() Optimizer) {
	run := func(threads int) ([]tensor.Tensor, []tensor.Tensor) {
		tensor.SetThreads(threads)
		params := []tensor.Tensor{tensor.New("w", 613, 517), tensor.New("b", 517)}
		r := rand.New(rand.NewPCG(3, 3))
		for _, p := range params {
			for i := range p.Data {
				p.Data[i] = float32(r.NormFloat64())
			}
		}
		o := newOpt()
		for s := range 3 {
			o.Step(params, randomGrads(rand.New(rand.NewPCG(uint64(s), 1)), params), 1e-2)
		}
		return params, o.State()
	}
	p1, s1 := run(1)
	p2, s2 := run(2)
	for i := range p1 {
		if !slices.Equal(p1[i].Data, p2[i].Data) {
			t.Errorf("%s: parameter %s differs between 1 and 2 threads", name, p1[i].Name)
		}
	}
	for i := range s1 {
		if s1[i].Name != s2[i].Name || !slices.Equal(s1[i].Data, s2[i].Data) {
			t.Errorf("%s: state %s differs between 1 and 2 threads", name, s1[i].Name)
		}
	}
}
