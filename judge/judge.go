// Package judge decides which of two responses a described user prefers:
// the Judge interface, a programmatic judge over an exact reward (Func), an
// LLM judge with an AlpacaEval-style pairwise prompt (NewLLM), both-order
// judging (METHOD.md §4), win rates with bootstrap intervals over users and
// AlpacaEval 2.0's length-controlled win rate.
package judge

import (
	"context"
	"fmt"
	"math"
	"unicode/utf8"
)

// Judge compares two responses to prompt for the user described by
// description. pA is the probability that a is preferred: 1 or 0 when only
// the verdict is known, 0.5 for a tie.
type Judge interface {
	Compare(ctx context.Context, description, prompt, a, b string) (pA float64, err error)
}

// Func is a programmatic judge over an exact reward: the response with the
// higher reward wins, equal rewards tie. The stories domain judges with it.
type Func func(description, prompt, response string) float64

var _ Judge = Func(nil)

// Compare implements Judge.
func (f Func) Compare(_ context.Context, description, prompt, a, b string) (float64, error) {
	ra, rb := f(description, prompt, a), f(description, prompt, b)
	if math.IsNaN(ra) || math.IsNaN(rb) {
		return 0, fmt.Errorf("reward judge: reward is NaN (a: %v, b: %v)", ra, rb)
	}
	switch {
	case ra > rb:
		return 1, nil
	case ra < rb:
		return 0, nil
	}
	return 0.5, nil
}

// Outcome is a response judged against a baseline in both orders.
type Outcome struct {
	// Forward is pA with the response shown first (a = response);
	// Backward is pA with the baseline shown first (a = baseline).
	Forward, Backward float64
	// Score is 1 for a win, 0.5 for a tie, 0 for a loss; meaningless when Dropped.
	Score float64
	// Dropped is true when the two orders disagree (METHOD.md §4).
	Dropped bool
	// ResponseLen and BaselineLen are the lengths in characters, for the
	// length-controlled win rate.
	ResponseLen, BaselineLen int
}

// verdict reads pA: +1 when a is preferred, -1 when b is, 0 for a tie.
func verdict(pA float64) int {
	switch {
	case pA > 0.5:
		return 1
	case pA < 0.5:
		return -1
	}
	return 0
}

// BothOrders judges (response, baseline) and then (baseline, response).
// Consistent verdicts give a win (1) or loss (0); a tie (0.5) needs both
// orders to say tie. Verdicts that flip, and a tie in one order against a
// decision in the other, are dropped. Identical texts are a tie without a
// call: no judge can prefer one of two equal answers for a reason other than
// position.
func BothOrders(ctx context.Context, j Judge, description, prompt, response, baseline string) (Outcome, error) {
	o := Outcome{ResponseLen: utf8.RuneCountInString(response), BaselineLen: utf8.RuneCountInString(baseline)}
	if response == baseline {
		o.Forward, o.Backward, o.Score = 0.5, 0.5, 0.5
		return o, nil
	}
	var err error
	if o.Forward, err = j.Compare(ctx, description, prompt, response, baseline); err != nil {
		return Outcome{}, fmt.Errorf("judge response first: %w", err)
	}
	if o.Backward, err = j.Compare(ctx, description, prompt, baseline, response); err != nil {
		return Outcome{}, fmt.Errorf("judge baseline first: %w", err)
	}
	for _, p := range []float64{o.Forward, o.Backward} {
		if !(p >= 0 && p <= 1) {
			return Outcome{}, fmt.Errorf("judge returned probability %v outside [0, 1]", p)
		}
	}
	f, b := verdict(o.Forward), -verdict(o.Backward) // both: +1 when the response wins
	switch {
	case f != b:
		o.Dropped = true
	case f == 1:
		o.Score = 1
	case f == 0:
		o.Score = 0.5
	}
	return o, nil
}

// Verdict names the winner that pA stands for: "A" (pA > 0.5), "B"
// (pA < 0.5) or "tie".
func Verdict(pA float64) string {
	switch verdict(pA) {
	case 1:
		return "A"
	case -1:
		return "B"
	}
	return "tie"
}
