package pref

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func approx(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

// The pair used by the hand computations: chosen log-ratio −10 − (−12) = 2,
// rejected log-ratio −15 − (−14) = −1, so h = 2 − (−1) = 3.
var pair = Pair{Chosen: -10, RefChosen: -12, Rejected: -15, RefRejected: -14, ChosenLen: 4, RejectedLen: 2}

func TestLossByHand(t *testing.T) {
	tests := []struct {
		name         string
		o            Objective
		loss, dC, dR float64
		margin       float64
	}{
		// β 0.1: 1/(2β) = 5; L = (3 − 5)² = 4; dL/dh = 2·(3 − 5) = −4; margin 0.1·3.
		{"ipo", Objective{Kind: IPO, Beta: 0.1}, 4, -4, 4, 0.3},
		// h = 2/4 − (−1)/2 = 1; L = (1 − 5)² = 16; dL/dChosen = 2·(−4)/4 = −2,
		// dL/dRejected = −2·(−4)/2 = 4; margin 0.1·1.
		{"ipo_norm", Objective{Kind: IPONorm, Beta: 0.1}, 16, -2, 4, 0.1},
		// β 0.5: βh = 1.5; L = log(1 + e^−1.5) = 0.2014132780;
		// dL/dh = −0.5·σ(−1.5) = −0.5·0.1824255238 = −0.0912127619.
		{"dpo", Objective{Kind: DPO, Beta: 0.5}, 0.2014132780, -0.0912127619, 0.0912127619, 1.5},
		// ε 0.1: L = 0.9·0.2014132780 + 0.1·log(1 + e^1.5) = 0.1812719502 + 0.1·1.7014132780
		//   = 0.3514132780; dL/dh = 0.5·(−0.9·0.1824255238 + 0.1·0.8175744762) = −0.0412127619.
		{"cdpo", Objective{Kind: CDPO, Beta: 0.5, Smoothing: 0.1}, 0.3514132780, -0.0412127619, 0.0412127619, 1.5},
		// ε 0 is plain DPO.
		{"cdpo eps 0", Objective{Kind: CDPO, Beta: 0.5}, 0.2014132780, -0.0912127619, 0.0912127619, 1.5},
	}
	for _, tc := range tests {
		if err := tc.o.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		loss, dC, dR := tc.o.Loss(pair)
		if !approx(loss, tc.loss, 1e-9) || !approx(dC, tc.dC, 1e-9) || !approx(dR, tc.dR, 1e-9) {
			t.Errorf("%s: Loss = (%.10g, %.10g, %.10g), want (%.10g, %.10g, %.10g)", tc.name, loss, dC, dR, tc.loss, tc.dC, tc.dR)
		}
		if got := tc.o.Margin(pair); !approx(got, tc.margin, 1e-12) {
			t.Errorf("%s: Margin = %v, want %v", tc.name, got, tc.margin)
		}
	}
}

func TestLossExtremesAreFinite(t *testing.T) {
	// βh = ±1000: a naive log(σ(x)) gives log(0) = −Inf.
	big := Pair{Chosen: 1000, Rejected: 0}
	small := Pair{Chosen: -1000, Rejected: 0}
	tests := []struct {
		name string
		o    Objective
		p    Pair
		loss float64
		dC   float64
	}{
		{"dpo confident right", Objective{Kind: DPO, Beta: 1}, big, 0, 0},
		{"dpo confident wrong", Objective{Kind: DPO, Beta: 1}, small, 1000, -1},
		// (1−ε)·0 + ε·1000 = 100; dL/dh = ε·σ(1000) = 0.1
		{"cdpo confident right", Objective{Kind: CDPO, Beta: 1, Smoothing: 0.1}, big, 100, 0.1},
	}
	for _, tc := range tests {
		loss, dC, _ := tc.o.Loss(tc.p)
		if !approx(loss, tc.loss, 1e-12) || !approx(dC, tc.dC, 1e-12) {
			t.Errorf("%s: loss %v dC %v, want %v %v", tc.name, loss, dC, tc.loss, tc.dC)
		}
	}
}

func TestLossFiniteDifference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	objs := []Objective{
		{Kind: IPO, Beta: 0.01}, {Kind: IPO, Beta: 0.5}, {Kind: IPONorm, Beta: 0.1},
		{Kind: DPO, Beta: 0.1}, {Kind: DPO, Beta: 2}, {Kind: CDPO, Beta: 0.3, Smoothing: 0.25},
	}
	for _, o := range objs {
		for range 20 {
			p := Pair{
				Chosen: -50 * r.Float64(), Rejected: -50 * r.Float64(),
				RefChosen: -50 * r.Float64(), RefRejected: -50 * r.Float64(),
				ChosenLen: 1 + r.IntN(30), RejectedLen: 1 + r.IntN(30),
			}
			_, dC, dR := o.Loss(p)
			const eps = 1e-5
			f := func(c, rj float64) float64 {
				q := p
				q.Chosen, q.Rejected = c, rj
				l, _, _ := o.Loss(q)
				return l
			}
			numC := (f(p.Chosen+eps, p.Rejected) - f(p.Chosen-eps, p.Rejected)) / (2 * eps)
			numR := (f(p.Chosen, p.Rejected+eps) - f(p.Chosen, p.Rejected-eps)) / (2 * eps)
			if !approx(dC, numC, 1e-5) || !approx(dR, numR, 1e-5) {
				t.Errorf("%+v %+v: analytic (%g, %g), numeric (%g, %g)", o, p, dC, dR, numC, numR)
			}
		}
	}
}

func TestSFT(t *testing.T) {
	// −(−12)/4 = 3 nats per token; d = −1/4.
	loss, d := SFT(-12, 4)
	if loss != 3 || d != -0.25 {
		t.Errorf("SFT(-12, 4) = %v, %v; want 3, -0.25", loss, d)
	}
	if loss, d := SFT(-1, 0); !math.IsNaN(loss) || !math.IsNaN(d) {
		t.Errorf("SFT(-1, 0) = %v, %v; want NaN, NaN", loss, d)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		o    Objective
		want string
	}{
		{Objective{Kind: "kto", Beta: 0.1}, `unknown kind "kto"`},
		{Objective{Kind: IPO, Beta: 0}, "beta 0"},
		{Objective{Kind: DPO, Beta: -1}, "beta -1"},
		{Objective{Kind: DPO, Beta: math.NaN()}, "beta NaN"},
		{Objective{Kind: DPO, Beta: math.Inf(1)}, "beta +Inf"},
		{Objective{Kind: CDPO, Beta: 0.1, Smoothing: 0.5}, "smoothing 0.5"},
		{Objective{Kind: CDPO, Beta: 0.1, Smoothing: -0.1}, "smoothing -0.1"},
		{Objective{Kind: IPO, Beta: 0.1, Smoothing: 0.1}, "only used by cdpo"},
		{Objective{Kind: CDPO, Beta: 0.1, Smoothing: 0.49}, ""},
	}
	for _, tc := range tests {
		err := tc.o.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: unexpected error %v", tc.o, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error = %v, want it to contain %q", tc.o, err, tc.want)
		}
	}
}

func TestCheckPair(t *testing.T) {
	tests := []struct {
		o    Objective
		p    Pair
		want string
	}{
		{Objective{Kind: IPONorm, Beta: 1}, Pair{ChosenLen: 0, RejectedLen: 3}, "lengths > 0"},
		{Objective{Kind: IPO, Beta: 1}, Pair{ChosenLen: 0, RejectedLen: 0}, ""},
		{Objective{Kind: DPO, Beta: 1}, Pair{ChosenLen: -1}, "negative length"},
		{Objective{Kind: DPO, Beta: 1}, Pair{RefRejected: math.Inf(-1)}, "ref_rejected log-probability is -Inf"},
		{Objective{Kind: DPO, Beta: 1}, Pair{Chosen: math.NaN()}, "chosen log-probability is NaN"},
	}
	for _, tc := range tests {
		err := tc.o.CheckPair(tc.p)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: unexpected error %v", tc.p, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error = %v, want it to contain %q", tc.p, err, tc.want)
		}
	}
}

func TestSigmoidStable(t *testing.T) {
	tests := []struct{ x, sig, logSig float64 }{
		{0, 0.5, -math.Ln2},
		{-800, 0, -800}, // e^−800 underflows to 0; log σ(−800) = −800 − log1p(e^−800)
		{800, 1, 0},
		{2, 0.8807970779778823, -0.12692801104297263}, // 1/(1+e^−2), −log(1+e^−2)
	}
	for _, tc := range tests {
		if got := Sigmoid(tc.x); !approx(got, tc.sig, 1e-15) {
			t.Errorf("Sigmoid(%v) = %v, want %v", tc.x, got, tc.sig)
		}
		if got := LogSigmoid(tc.x); !approx(got, tc.logSig, 1e-15) {
			t.Errorf("LogSigmoid(%v) = %v, want %v", tc.x, got, tc.logSig)
		}
	}
}
