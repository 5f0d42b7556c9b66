package eval

import (
	"context"
	"fmt"
	"unicode/utf8"

	"fspo/judge"
)

// rewardJudge is the stories domain's judge for one user: judge.Func over
// the user's exact reward, so labels, win rates and the oracle all use the
// same reward.
func rewardJudge(r Rewarder) judge.Judge {
	return judge.Func(func(_, _, response string) float64 { return r.Reward(response) })
}

// judgeName names the judge in reports.
func judgeName(j judge.Judge) string {
	if j == nil {
		return "reward"
	}
	if n, ok := j.(interface{ Name() string }); ok {
		return n.Name()
	}
	return fmt.Sprintf("%T", j)
}

// side names the winner of one order from the judge's probability that the
// response shown first is preferred.
func side(pFirst float64, first, second string) string {
	switch {
	case pFirst > 0.5:
		return first
	case pFirst < 0.5:
		return second
	}
	return "tie"
}

// judgePair judges a method's response against the baseline's in both
// orders (judge.BothOrders: pairs whose verdict flips are dropped, win 1,
// tie 0.5) and fills the sample's verdict fields.
func judgePair(ctx context.Context, j judge.Judge, s *Sample) error {
	o, err := judge.BothOrders(ctx, j, s.Description, s.Prompt, s.Response, s.BaselineResponse)
	if err != nil {
		return err
	}
	s.PMethodFirst, s.PBaselineFirst = o.Forward, o.Backward
	s.VerdictMethodFirst = side(o.Forward, "method", "baseline")
	s.VerdictBaselineFirst = side(o.Backward, "baseline", "method")
	s.Score, s.Dropped = o.Score, o.Dropped
	return nil
}

// outcome rebuilds the judge's outcome from a sample.
func (s Sample) outcome() judge.Outcome {
	return judge.Outcome{Forward: s.PMethodFirst, Backward: s.PBaselineFirst, Score: s.Score, Dropped: s.Dropped,
		ResponseLen: utf8.RuneCountInString(s.Response), BaselineLen: utf8.RuneCountInString(s.BaselineResponse)}
}
