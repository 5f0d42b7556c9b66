// Package elicit chooses which preference pair to ask a user next, so that
// each label tells as much as possible about the user.
//
// The user is unknown; a committee of plausible users stands in for the
// possibilities (members: other users' few-shot contexts, each read by the
// preference-trained model). Member m predicts the user's answer on pair j
// with the probability Prob turns its implicit-reward margin into. The
// labels given so far weigh the members by how well each predicted them
// (Bayes' rule with a uniform prior and a small label-noise floor), and the
// next pair is the one with the largest expected information gain about
// which member the user is:
//
//	gain(j) = H(Σ_m w_m p_mj) − Σ_m w_m H(p_mj)
//
// — "Bayesian active learning by disagreement" (BALD; Houlsby, Huszár,
// Ghahramani & Lengyel 2011, "Bayesian Active Learning for Classification
// and Preference Learning", eq. 2), the query-by-committee idea of Seung,
// Opper & Sompolinsky (1992) with the committee weighted by its posterior.
// A pair on which every member agrees tells nothing whatever they predict;
// one on which confident members disagree tells the most.
package elicit

import (
	"fmt"
	"math"
)

// Noise is the chance that a user's label contradicts their own
// preference: no member's likelihood for a label falls below it, so one
// surprising answer does not rule a member out for good.
const Noise = 0.05

// Prob turns an implicit-reward margin β·h (policy log-ratio of a minus
// that of b, times β) into the probability that the user prefers a, as the
// loss that trained the model defines it: for IPO (Azar et al. 2024,
// "A General Theoretical Paradigm to Understand Learning from Human
// Preferences", §5.1: the optimum satisfies h = (p − ½)/β) p = ½ + β·h,
// clipped to [Noise, 1 − Noise]; for DPO and cDPO the Bradley–Terry model
// p = σ(β·h) (Rafailov et al. 2023, eq. 5).
func Prob(objective string, margin float64) float64 {
	var p float64
	switch objective {
	case "ipo", "ipo_norm":
		p = 0.5 + margin
	default:
		p = 1 / (1 + math.Exp(-margin))
	}
	return math.Min(math.Max(p, Noise), 1-Noise)
}

// Committee holds each member's probability that the user prefers the
// first response of each pair: P[m][j].
type Committee struct{ P [][]float64 }

// NewCommittee checks that every member rates the same pairs with
// probabilities in [0, 1].
func NewCommittee(p [][]float64) (Committee, error) {
	if len(p) == 0 {
		return Committee{}, fmt.Errorf("elicit: a committee needs at least one member")
	}
	for m, row := range p {
		if len(row) != len(p[0]) {
			return Committee{}, fmt.Errorf("elicit: member %d rates %d pairs, member 0 %d", m, len(row), len(p[0]))
		}
		for j, v := range row {
			if !(v >= 0 && v <= 1) {
				return Committee{}, fmt.Errorf("elicit: member %d, pair %d: probability %v outside [0, 1]", m, j, v)
			}
		}
	}
	return Committee{P: p}, nil
}

// Pairs is how many pairs the committee rates.
func (c Committee) Pairs() int { return len(c.P[0]) }

// Posterior weighs the members by the answers so far (pair index → true
// when the user preferred the pair's first response): w_m ∝ Π likelihoods,
// each at least Noise. The weights sum to 1.
func (c Committee) Posterior(answers map[int]bool) []float64 {
	logw := make([]float64, len(c.P))
	for m, row := range c.P {
		for j, first := range answers {
			p := row[j]
			if !first {
				p = 1 - p
			}
			logw[m] += math.Log(math.Max(p, Noise))
		}
	}
	top := math.Inf(-1)
	for _, l := range logw {
		top = math.Max(top, l)
	}
	w := make([]float64, len(logw))
	var sum float64
	for m, l := range logw {
		w[m] = math.Exp(l - top)
		sum += w[m]
	}
	for m := range w {
		w[m] /= sum
	}
	return w
}

// Gain is pair j's expected information gain under weights w (in nats).
func (c Committee) Gain(j int, w []float64) float64 {
	var mean, cond float64
	for m, row := range c.P {
		mean += w[m] * row[j]
		cond += w[m] * entropy(row[j])
	}
	return max(entropy(mean)-cond, 0)
}

// Next returns the unanswered pair with the largest gain (the lowest index
// among gains within rounding of each other, so the choice is
// deterministic) and that gain; -1 when every pair is answered.
func (c Committee) Next(answers map[int]bool) (int, float64) {
	w := c.Posterior(answers)
	best, bestGain := -1, -1.0
	for j := range c.Pairs() {
		if _, done := answers[j]; done {
			continue
		}
		if g := c.Gain(j, w); g > bestGain+1e-12 {
			best, bestGain = j, g
		}
	}
	return best, max(bestGain, 0)
}

// entropy of a Bernoulli(p) in nats.
func entropy(p float64) float64 {
	h := 0.0
	if p > 0 {
		h -= p * math.Log(p)
	}
	if p < 1 {
		h -= (1 - p) * math.Log(1-p)
	}
	return h
}
