package judge

import (
	"errors"
	"fmt"
	"math"
)

// LC is a length-controlled win rate.
type LC struct {
	// Percent is the predicted win rate at zero length difference.
	Percent float64 `json:"percent"`
	// Intercept and Length are the fitted coefficients (logit scale);
	// Length > 0 means the judge favours the longer response.
	Intercept float64 `json:"intercept"`
	Length    float64 `json:"length_coef"`
	N         int     `json:"n"`
}

// lcRidge is the L2 penalty on both coefficients; it only matters when the
// outcomes are separable (all wins, say), where it keeps the fit finite.
const lcRidge = 1e-3

// LengthControlled is AlpacaEval 2.0's length-controlled win rate (Dubois,
// Galambosi, Liang, Hashimoto, "Length-Controlled AlpacaEval: A Simple Way to
// Debias Automatic Evaluators", 2024, arXiv:2404.04475, eq. 1), without the
// per-instruction term: a logistic regression of the preference y (the
// outcome's score, 1/0.5/0) on the normalised length difference,
//
//	P(y) = σ(β0 + β1 · tanh((len(response) − len(baseline)) / std(len diff))),
//
// then the predicted win rate with the length term set to zero, 100·σ(β0).
// The fit maximises the (soft-label) log-likelihood by Newton's method.
// Dropped outcomes are left out; fewer than two remaining is an error.
func LengthControlled(outcomes []Outcome) (LC, error) {
	var ys, ds []float64
	for _, o := range outcomes {
		if o.Dropped {
			continue
		}
		if !(o.Score >= 0 && o.Score <= 1) {
			return LC{}, fmt.Errorf("length-controlled win rate: score %v outside [0, 1]", o.Score)
		}
		ys = append(ys, o.Score)
		ds = append(ds, float64(o.ResponseLen-o.BaselineLen))
	}
	n := len(ys)
	if n < 2 {
		return LC{}, fmt.Errorf("length-controlled win rate: %d outcome(s) after dropping, need at least 2", n)
	}
	var mean, sd float64
	for _, d := range ds {
		mean += d
	}
	mean /= float64(n)
	for _, d := range ds {
		sd += (d - mean) * (d - mean)
	}
	sd = math.Sqrt(sd / float64(n-1))
	xs := make([]float64, n)
	if sd > 0 {
		for i, d := range ds {
			xs[i] = math.Tanh(d / sd)
		}
	}
	b0, b1, err := fitLogistic(xs, ys)
	if err != nil {
		return LC{}, fmt.Errorf("length-controlled win rate: %w", err)
	}
	return LC{Percent: 100 * sigmoid(b0), Intercept: b0, Length: b1, N: n}, nil
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// fitLogistic maximises Σ y log σ(z) + (1−y) log(1−σ(z)) − λ/2 (b0² + b1²),
// z = b0 + b1 x, by Newton's method on the two coefficients.
func fitLogistic(xs, ys []float64) (b0, b1 float64, err error) {
	for iter := 0; iter < 100; iter++ {
		// gradient g and negative Hessian H (2x2, symmetric)
		g0, g1 := -lcRidge*b0, -lcRidge*b1
		h00, h01, h11 := lcRidge, 0.0, lcRidge
		for i, x := range xs {
			p := sigmoid(b0 + b1*x)
			r := ys[i] - p
			w := p * (1 - p)
			g0 += r
			g1 += r * x
			h00 += w
			h01 += w * x
			h11 += w * x * x
		}
		det := h00*h11 - h01*h01
		if det <= 0 || math.IsNaN(det) {
			return 0, 0, errors.New("singular Hessian in the logistic fit")
		}
		s0 := (h11*g0 - h01*g1) / det
		s1 := (h00*g1 - h01*g0) / det
		b0 += s0
		b1 += s1
		if math.Abs(s0) < 1e-10 && math.Abs(s1) < 1e-10 {
			return b0, b1, nil
		}
	}
	return 0, 0, errors.New("logistic fit did not converge in 100 Newton steps")
}
