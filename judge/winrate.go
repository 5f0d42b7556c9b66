package judge

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
)

// Resamples is the number of bootstrap resamples behind WinRate's interval.
const Resamples = 2000

// Summary is a win rate in percent with its 95% bootstrap interval.
type Summary struct {
	Percent float64 `json:"percent"`
	// Low and High bound the 95% percentile-bootstrap interval over users.
	Low  float64 `json:"ci_low"`
	High float64 `json:"ci_high"`
	// N counts the outcomes that entered (not dropped); Users the users with at least one.
	N       int `json:"n"`
	Users   int `json:"users"`
	Wins    int `json:"wins"`
	Ties    int `json:"ties"`
	Losses  int `json:"losses"`
	Dropped int `json:"dropped"`
}

// String formats the summary as "62.5 [55.0, 70.1] (n=40, dropped 3)".
func (s Summary) String() string {
	if s.N == 0 {
		return fmt.Sprintf("- (n=0, dropped %d)", s.Dropped)
	}
	return fmt.Sprintf("%.1f [%.1f, %.1f] (n=%d, dropped %d)", s.Percent, s.Low, s.High, s.N, s.Dropped)
}

// WinRate is the mean score of the outcomes that were not dropped, in
// percent, with a 95% percentile-bootstrap interval (Efron & Tibshirani,
// An Introduction to the Bootstrap, 1993, §13.3) from Resamples resamples
// of the users with replacement (a resampled user brings all its
// outcomes), drawn from seed. users[i] is the user of outcomes[i]; the
// slices must have equal lengths (a programmer error otherwise: panics).
// With no outcome left, N is 0 and the percentages are 0.
func WinRate(outcomes []Outcome, users []string, seed int64) Summary {
	if len(users) != len(outcomes) {
		panic(fmt.Sprintf("judge.WinRate: %d outcomes but %d users", len(outcomes), len(users)))
	}
	type tally struct{ sum, n float64 }
	per := map[string]*tally{}
	var s Summary
	var total float64
	for i, o := range outcomes {
		if o.Dropped {
			s.Dropped++
			continue
		}
		switch o.Score {
		case 1:
			s.Wins++
		case 0:
			s.Losses++
		default:
			s.Ties++
		}
		t := per[users[i]]
		if t == nil {
			t = &tally{}
			per[users[i]] = t
		}
		t.sum += o.Score
		t.n++
		total += o.Score
		s.N++
	}
	if s.N == 0 {
		return s
	}
	s.Users = len(per)
	s.Percent = 100 * total / float64(s.N)
	names := slices.Sorted(maps.Keys(per)) // map order must not reach the random draws
	tallies := make([]tally, len(names))
	for i, u := range names {
		tallies[i] = *per[u]
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	rates := make([]float64, Resamples)
	for r := range rates {
		var sum, n float64
		for range tallies {
			t := tallies[rng.IntN(len(tallies))]
			sum += t.sum
			n += t.n
		}
		rates[r] = 100 * sum / n
	}
	slices.Sort(rates)
	s.Low, s.High = quantile(rates, 0.025), quantile(rates, 0.975)
	return s
}

// quantile interpolates linearly between order statistics of sorted x
// (Hyndman & Fan 1996, definition 7, the default of R and NumPy).
func quantile(x []float64, q float64) float64 {
	h := q * float64(len(x)-1)
	i := int(h)
	if i+1 >= len(x) {
		return x[len(x)-1]
	}
	return x[i] + (h-float64(i))*(x[i+1]-x[i])
}
