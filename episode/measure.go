package episode

import (
	"fmt"
	"slices"
)

// Stats summarises the token lengths of rendered episodes: for each
// episode, the longer of prompt+chosen and prompt+rejected, as counted by
// the caller's function (which decides whether BOS and EOS count).
type Stats struct {
	Episodes      int
	Min, P50, P95 int
	Max           int
	Mean          float64
}

func (s Stats) String() string {
	return fmt.Sprintf("%d episodes, tokens min %d, mean %.1f, p50 %d, p95 %d, max %d",
		s.Episodes, s.Min, s.Mean, s.P50, s.P95, s.Max)
}

// Measure renders every episode and counts its tokens, so a caller can
// choose the number of shots and the response length that fit the model's
// context.
func Measure(eps []Episode, v Variant, l Layout, count func(string) int, opts ...Option) (Stats, error) {
	lens, err := lengths(eps, v, l, count, opts)
	if err != nil {
		return Stats{}, err
	}
	return summarize(lens), nil
}

// Fit is Measure, with an error when any episode is longer than maxTokens;
// the error says how many exceed it.
func Fit(eps []Episode, v Variant, l Layout, count func(string) int, maxTokens int, opts ...Option) (Stats, error) {
	lens, err := lengths(eps, v, l, count, opts)
	if err != nil {
		return Stats{}, err
	}
	s := summarize(lens)
	over := 0
	for _, n := range lens {
		if n > maxTokens {
			over++
		}
	}
	if over > 0 {
		return s, fmt.Errorf("%d of %d episodes (%s, %s layout) are longer than the %d-token context (%s); use fewer shots or shorter responses",
			over, len(lens), v, l.Name, maxTokens, s)
	}
	return s, nil
}

func lengths(eps []Episode, v Variant, l Layout, count func(string) int, opts []Option) ([]int, error) {
	lens := make([]int, len(eps))
	for i, ep := range eps {
		t, err := Render(v, l, ep, opts...)
		if err != nil {
			return nil, fmt.Errorf("episode %d: %w", i, err)
		}
		lens[i] = max(count(t.Prompt+t.Chosen), count(t.Prompt+t.Rejected))
	}
	return lens, nil
}

// summarize uses nearest-rank percentiles: the p-th percentile of n sorted
// values is the value at rank ceil(p·n/100), the inverse of the empirical
// distribution function (Hyndman and Fan, "Sample quantiles in statistical
// packages", The American Statistician 50(4), 1996, definition 1).
func summarize(lens []int) Stats {
	s := Stats{Episodes: len(lens)}
	if len(lens) == 0 {
		return s
	}
	sorted := slices.Clone(lens)
	slices.Sort(sorted)
	rank := func(p int) int { return sorted[max(0, (p*len(sorted)+99)/100-1)] }
	total := 0
	for _, n := range sorted {
		total += n
	}
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	s.P50, s.P95 = rank(50), rank(95)
	s.Mean = float64(total) / float64(len(sorted))
	return s
}
