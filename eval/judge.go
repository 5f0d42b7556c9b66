package eval

import (
	"context"
	"fmt"
)

// Comparison is one pairwise question put to a judge: which of A and B
// does the user described by Description prefer as a response to Prompt?
type Comparison struct {
	User        string
	Description string
	Prompt      string
	A, B        string
}

// Verdict is a judge's answer: Winner is "A", "B" or "tie". ScoreA and
// ScoreB are the judge's scores when it has them (the exact reward).
type Verdict struct {
	Winner         string   `json:"winner"`
	ScoreA, ScoreB *float64 `json:"-"`
}

// Judge compares two responses for one user.
type Judge interface {
	Name() string
	Compare(ctx context.Context, c Comparison) (Verdict, error)
}

// RewardJudge prefers the response with the higher exact reward; equal
// rewards are a tie. It is the stories domain's judge: labels, win rates
// and the oracle all use the same reward.
type RewardJudge struct {
	Rewards map[string]Rewarder
}

var _ Judge = RewardJudge{}

// Name implements Judge.
func (RewardJudge) Name() string { return "reward" }

// Compare implements Judge.
func (j RewardJudge) Compare(_ context.Context, c Comparison) (Verdict, error) {
	r, ok := j.Rewards[c.User]
	if !ok {
		return Verdict{}, fmt.Errorf("reward judge: no reward for user %q", c.User)
	}
	a, b := r.Reward(c.A), r.Reward(c.B)
	v := Verdict{Winner: "tie", ScoreA: &a, ScoreB: &b}
	switch {
	case a > b:
		v.Winner = "A"
	case b > a:
		v.Winner = "B"
	}
	return v, nil
}

// Outcome is a method's response judged against the baseline's in both
// orders (METHOD.md §4): first with the method's response as A, then as B.
type Outcome struct {
	First, Second string // "method", "baseline" or "tie" per order
	// Consistent is false when the two orders disagree; such pairs are
	// dropped from win rates.
	Consistent bool
	// Score is 1 for a win, 0.5 for a tie, 0 for a loss (meaningful only
	// when Consistent).
	Score float64
	// Reward and BaselineReward are the judge's scores from the first order,
	// when it gives scores.
	Reward, BaselineReward *float64
}

// BothOrders judges response against baseline in both orders.
func BothOrders(ctx context.Context, j Judge, c Comparison) (Outcome, error) {
	c1 := c // A = method, B = baseline
	v1, err := j.Compare(ctx, c1)
	if err != nil {
		return Outcome{}, err
	}
	c2 := c
	c2.A, c2.B = c.B, c.A
	v2, err := j.Compare(ctx, c2)
	if err != nil {
		return Outcome{}, err
	}
	first, err := side(v1.Winner, "method", "baseline")
	if err != nil {
		return Outcome{}, err
	}
	second, err := side(v2.Winner, "baseline", "method")
	if err != nil {
		return Outcome{}, err
	}
	o := Outcome{First: first, Second: second, Consistent: first == second,
		Reward: v1.ScoreA, BaselineReward: v1.ScoreB}
	switch first {
	case "method":
		o.Score = 1
	case "tie":
		o.Score = 0.5
	}
	return o, nil
}

// side names the winner of a verdict given what A and B stood for.
func side(winner, a, b string) (string, error) {
	switch winner {
	case "A":
		return a, nil
	case "B":
		return b, nil
	case "tie":
		return "tie", nil
	}
	return "", fmt.Errorf("judge verdict %q is not A, B or tie", winner)
}
