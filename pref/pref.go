// Package pref holds the training losses of METHOD.md §3 as pure functions
// of summed completion log-probabilities: supervised fine-tuning (mean NLL
// per token), IPO (paper and length-normalised forms), DPO and conservative
// DPO. Each loss returns its derivatives with respect to the policy's summed
// log-probabilities, which the trainer back-propagates through the model.
package pref

import (
	"fmt"
	"math"
	"strings"
)

// Pair is one preference pair scored by the policy and the frozen
// reference model: log-probabilities summed over the completion tokens
// only (the prompt is not scored), and the completions' lengths in tokens.
type Pair struct {
	Chosen, Rejected       float64 // log πθ(y_w|x), log πθ(y_l|x)
	RefChosen, RefRejected float64 // log πref(y_w|x), log πref(y_l|x)
	ChosenLen, RejectedLen int     // completion lengths in tokens
}

// Objective kinds.
const (
	IPO     = "ipo"      // Azar et al. 2023, eq. 17, log-ratios summed (the FSPO paper's form)
	IPONorm = "ipo_norm" // IPO with per-token averaged log-ratios (TRL's "ipo")
	DPO     = "dpo"      // Rafailov et al. 2023, eq. 7
	CDPO    = "cdpo"     // conservative DPO with label smoothing ε
)

// Kinds lists the objective kinds.
var Kinds = []string{IPO, IPONorm, DPO, CDPO}

// Objective is a preference loss with its temperature β and, for cdpo, the
// label-smoothing ε (the assumed probability that a label is flipped).
type Objective struct {
	Kind      string
	Beta      float64
	Smoothing float64
}

// Validate checks the kind and parameters.
func (o Objective) Validate() error {
	switch o.Kind {
	case IPO, IPONorm, DPO, CDPO:
	default:
		return fmt.Errorf("objective: unknown kind %q (want one of %s)", o.Kind, strings.Join(Kinds, ", "))
	}
	if !(o.Beta > 0) || math.IsInf(o.Beta, 0) {
		return fmt.Errorf("objective %s: beta %v must be finite and > 0", o.Kind, o.Beta)
	}
	if !(o.Smoothing >= 0 && o.Smoothing < 0.5) {
		return fmt.Errorf("objective %s: smoothing %v must be in [0, 0.5)", o.Kind, o.Smoothing)
	}
	if o.Smoothing != 0 && o.Kind != CDPO {
		return fmt.Errorf("objective %s: smoothing %v is only used by %s", o.Kind, o.Smoothing, CDPO)
	}
	return nil
}

// CheckPair reports a pair the objective cannot score: non-finite
// log-probabilities, negative lengths, or (for ipo_norm) empty completions.
func (o Objective) CheckPair(p Pair) error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"chosen", p.Chosen}, {"rejected", p.Rejected}, {"ref_chosen", p.RefChosen}, {"ref_rejected", p.RefRejected}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("pair: %s log-probability is %v", f.name, f.v)
		}
	}
	if p.ChosenLen < 0 || p.RejectedLen < 0 {
		return fmt.Errorf("pair: negative length (chosen %d, rejected %d)", p.ChosenLen, p.RejectedLen)
	}
	if o.Kind == IPONorm && (p.ChosenLen == 0 || p.RejectedLen == 0) {
		return fmt.Errorf("pair: %s needs completion lengths > 0 (chosen %d, rejected %d)", IPONorm, p.ChosenLen, p.RejectedLen)
	}
	return nil
}

// logRatios returns h = [log πθ(y_w) − log πref(y_w)] − [log πθ(y_l) − log πref(y_l)]
// (each log-ratio divided by its length for ipo_norm) and its derivatives
// with respect to Chosen and Rejected.
func (o Objective) logRatios(p Pair) (h, dhC, dhR float64) {
	if o.Kind == IPONorm {
		lc, lr := float64(p.ChosenLen), float64(p.RejectedLen)
		return (p.Chosen-p.RefChosen)/lc - (p.Rejected-p.RefRejected)/lr, 1 / lc, -1 / lr
	}
	return (p.Chosen - p.RefChosen) - (p.Rejected - p.RefRejected), 1, -1
}

// Margin is the implicit reward margin β·h: how much more the policy's
// implicit reward β·log(πθ/πref) favours the chosen completion.
func (o Objective) Margin(p Pair) float64 {
	h, _, _ := o.logRatios(p)
	return o.Beta * h
}

// Loss returns the pair's loss and its derivatives with respect to the
// policy's summed log-probabilities Chosen and Rejected. The objective must
// have passed Validate (an unknown kind gives NaN) and the pair CheckPair.
//
//	ipo, ipo_norm: L = (h − 1/(2β))²                     Azar et al. 2023, eq. 17
//	dpo:           L = −log σ(βh)                        Rafailov et al. 2023, eq. 7
//	cdpo:          L = −(1−ε)·log σ(βh) − ε·log σ(−βh)   Mitchell 2023, "A note on DPO with noisy preferences"
func (o Objective) Loss(p Pair) (loss, dChosen, dRejected float64) {
	h, dhC, dhR := o.logRatios(p)
	var dh float64 // dL/dh
	switch o.Kind {
	case IPO, IPONorm:
		d := h - 1/(2*o.Beta)
		loss, dh = d*d, 2*d
	case DPO:
		// −log σ(βh) = softplus(−βh); d/dh = −β·σ(−βh).
		loss, dh = Softplus(-o.Beta*h), -o.Beta*Sigmoid(-o.Beta*h)
	case CDPO:
		e, bh := o.Smoothing, o.Beta*h
		loss = (1-e)*Softplus(-bh) + e*Softplus(bh)
		dh = o.Beta * (-(1-e)*Sigmoid(-bh) + e*Sigmoid(bh))
	default:
		return math.NaN(), math.NaN(), math.NaN()
	}
	return loss, dh * dhC, dh * dhR
}

// SFT is the supervised fine-tuning loss of one completion: the mean
// negative log-likelihood per token, −logprobSum/n, and its derivative
// −1/n with respect to logprobSum. n must be > 0 (otherwise NaN).
func SFT(logprobSum float64, n int) (loss, d float64) {
	if n <= 0 {
		return math.NaN(), math.NaN()
	}
	return -logprobSum / float64(n), -1 / float64(n)
}

// Softplus is log(1 + eˣ), computed without overflow as
// max(x, 0) + log1p(e^−|x|); −log σ(x) = Softplus(−x).
func Softplus(x float64) float64 {
	return math.Max(x, 0) + math.Log1p(math.Exp(-math.Abs(x)))
}

// LogSigmoid is log σ(x) = −Softplus(−x), stable for large |x|.
func LogSigmoid(x float64) float64 { return -Softplus(-x) }

// Sigmoid is σ(x) = 1/(1 + e^−x), evaluated so that the exponential never
// overflows.
func Sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}
