package optim

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"fspo/tensor"
)

func TestSchedules(t *testing.T) {
	cos := WarmupCosine{Peak: 1e-3, Warmup: 10, Total: 110, MinRatio: 0.1}
	lin := WarmupLinear{Peak: 1e-3, Warmup: 10, Total: 110}
	tests := []struct {
		name string
		s    Schedule
		step int64
		want float64
	}{
		{"cosine start", cos, 0, 0},
		{"cosine negative", cos, -3, 0},
		{"cosine mid warm-up", cos, 5, 5e-4}, // 1e-3·5/10
		{"cosine peak", cos, 10, 1e-3},       // p = 0: 0.1 + 0.9·(1+1)/2 = 1
		// p = 25/100: 0.1 + 0.9·(1 + cos(π/4))/2 = 0.1 + 0.9·0.853553391 = 0.868198052
		{"cosine quarter", cos, 35, 8.68198052e-4},
		{"cosine half", cos, 60, 5.5e-4}, // p = 0.5: 0.1 + 0.9·0.5
		{"cosine end", cos, 110, 1e-4},   // p = 1: 0.1 + 0.9·0
		{"cosine after end", cos, 500, 1e-4},
		{"linear mid warm-up", lin, 5, 5e-4},
		{"linear peak", lin, 10, 1e-3},
		{"linear quarter", lin, 35, 7.5e-4}, // 1 − 25/100
		{"linear end", lin, 110, 0},
		{"linear after end", lin, 111, 0},
		{"linear floor", WarmupLinear{Peak: 1, Warmup: 0, Total: 10, MinRatio: 0.5}, 5, 0.75}, // 0.5 + 0.5·(1 − 0.5)
		{"constant warm-up", Constant{Peak: 1e-3, Warmup: 4}, 2, 5e-4},
		{"constant after warm-up", Constant{Peak: 1e-3, Warmup: 4}, 1000, 1e-3},
		{"constant no warm-up", Constant{Peak: 1e-3}, 0, 1e-3},
	}
	for _, tc := range tests {
		if got := tc.s.LR(tc.step); !near(got, tc.want, 1e-6) {
			t.Errorf("%s: LR(%d) = %.9g, want %.9g", tc.name, tc.step, got, tc.want)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		name          string
		peak          float32
		warmup, total int64
		want          Schedule
		err           string
	}{
		{name: "constant", peak: 1e-6, warmup: 150, total: 0, want: Constant{Peak: 1e-6, Warmup: 150}},
		{name: "cosine", peak: 1e-3, warmup: 10, total: 100, want: WarmupCosine{Peak: 1e-3, Warmup: 10, Total: 100}},
		{name: "cosine:0.1", peak: 1e-3, warmup: 10, total: 100, want: WarmupCosine{Peak: 1e-3, Warmup: 10, Total: 100, MinRatio: 0.1}},
		{name: "linear", peak: 1e-3, warmup: 0, total: 100, want: WarmupLinear{Peak: 1e-3, Total: 100}},
		{name: "warmup-cosine", peak: 1e-3, warmup: 10, total: 100, want: WarmupCosine{Peak: 1e-3, Warmup: 10, Total: 100}},
		{name: "warmup_linear:0.5", peak: 1e-3, warmup: 10, total: 100, want: WarmupLinear{Peak: 1e-3, Warmup: 10, Total: 100, MinRatio: 0.5}},
		{name: "", peak: 1e-3, total: 100, err: `unknown schedule ""`},
		{name: "step", peak: 1e-3, total: 100, err: `unknown schedule "step"`},
		{name: "cosine:x", peak: 1e-3, total: 100, err: "not a number"},
		{name: "cosine:2", peak: 1e-3, total: 100, err: "minimum ratio 2"},
		{name: "constant:0.1", peak: 1e-3, err: "no minimum ratio"},
		{name: "cosine", peak: 0, total: 100, err: "peak learning rate 0"},
		{name: "constant", peak: float32(math.Inf(1)), err: "peak learning rate"},
		{name: "linear", peak: 1e-3, warmup: 100, total: 100, err: "must exceed the warm-up"},
		{name: "constant", peak: 1e-3, warmup: -1, err: "warm-up -1"},
	}
	for _, tc := range tests {
		got, err := ParseSchedule(tc.name, tc.peak, tc.warmup, tc.total)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSchedule(%q, %v, %d, %d) error = %v, want %q", tc.name, tc.peak, tc.warmup, tc.total, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSchedule(%q) = %#v, %v; want %#v", tc.name, got, err, tc.want)
		}
	}
}

func TestClipGradNorm(t *testing.T) {
	mk := func(a, b float32) []tensor.Tensor {
		return []tensor.Tensor{{Name: "a", Shape: []int{1}, Data: []float32{a}}, {Name: "b", Shape: []int{1}, Data: []float32{b}}}
	}
	nan := float32(math.NaN())
	tests := []struct {
		name     string
		a, b     float32
		maxNorm  float32
		wantNorm float64
		want     [2]float64
	}{
		// ‖(3, 4)‖ = 5; coef = 1/(5 + 1e-6) = 0.19999996 → (0.59999988, 0.79999984)
		{"clipped", 3, 4, 1, 5, [2]float64{0.59999988, 0.79999984}},
		{"below max", 3, 4, 10, 5, [2]float64{3, 4}},
		// coef = 5/(5 + 1e-6) < 1: scaled by 0.9999998 (PyTorch's epsilon)
		{"at max", 3, 4, 5, 5, [2]float64{2.9999994, 3.9999992}},
		{"disabled", 3, 4, 0, 5, [2]float64{3, 4}},
		{"nan untouched", nan, 4, 1, math.NaN(), [2]float64{math.NaN(), 4}},
	}
	for _, tc := range tests {
		g := mk(tc.a, tc.b)
		norm := ClipGradNorm(g, tc.maxNorm)
		same := func(got float32, want float64) bool {
			if math.IsNaN(want) {
				return math.IsNaN(float64(got))
			}
			return near(got, want, 1e-7)
		}
		if !same(norm, tc.wantNorm) {
			t.Errorf("%s: norm = %v, want %v", tc.name, norm, tc.wantNorm)
		}
		for i, w := range tc.want {
			if !same(g[i].Data[0], w) {
				t.Errorf("%s: grad %d = %.9g, want %.9g", tc.name, i, g[i].Data[0], w)
			}
		}
	}
}

func TestGradNormFloat64(t *testing.T) {
	// 1e6 squares of float32(1e-4) summed in float32 drift by ~1e-4
	// relative; in float64 the norm √(1e6)·1e-4 is right to ~1e-11.
	g := tensor.New("g", 1000000)
	for i := range g.Data {
		g.Data[i] = 1e-4
	}
	got := GradNorm([]tensor.Tensor{g})
	want := math.Sqrt(1e6) * float64(float32(1e-4))
	if math.Abs(got-want) > 1e-10*want {
		t.Errorf("GradNorm = %.15g, want %.15g", got, want)
	}
}

// TestGradNormOrder: GradNorm is the same to the bit on one thread and on
// four (its blocks are summed in a fixed order), and within 1e-14 of the
// exact norm (math/big) on gradients of mixed sizes and scales.
func TestGradNormOrder(t *testing.T) {
	defer tensor.SetThreads(tensor.Threads())
	r := rand.New(rand.NewPCG(4, 4))
	var grads []tensor.Tensor
	exact := new(big.Float).SetPrec(2000)
	for i, n := range []int{3, 70000, 1, 300001, 65536, 5} {
		g := tensor.New(fmt.Sprint("g", i), n)
		for j := range g.Data {
			g.Data[j] = float32(r.NormFloat64() * math.Pow(10, float64(i%3-1)))
			x := new(big.Float).SetPrec(2000).SetFloat64(float64(g.Data[j]))
			exact.Add(exact, x.Mul(x, x))
		}
		grads = append(grads, g)
	}
	want, _ := exact.Sqrt(exact).Float64()
	tensor.SetThreads(1)
	one := GradNorm(grads)
	tensor.SetThreads(4)
	four := GradNorm(grads)
	if math.Float64bits(one) != math.Float64bits(four) {
		t.Errorf("GradNorm on 1 thread %.17g, on 4 %.17g", one, four)
	}
	if math.Abs(one-want) > 1e-14*want {
		t.Errorf("GradNorm = %.17g, exact %.17g", one, want)
	}
}
