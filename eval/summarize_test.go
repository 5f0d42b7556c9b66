package eval

import (
	"context"
	"math"
	"strings"
	"testing"

	"fspo/judge"
)

type wordReward string

func (w wordReward) Reward(s string) float64 { return float64(strings.Count(s, string(w))) }

// firstJudge always prefers the response shown first: a position bias.
type firstJudge struct{}

func (firstJudge) Compare(context.Context, string, string, string, string) (float64, error) {
	return 1, nil
}

func TestJudgePair(t *testing.T) {
	tests := []struct {
		name              string
		j                 judge.Judge
		response, base    string
		first, second     string
		dropped           bool
		score             float64
		pFirst, pBaseline float64
	}{
		{"win", rewardJudge(wordReward("cat")), "a cat and a cat", "a cat", "method", "method", false, 1, 1, 0},
		{"loss", rewardJudge(wordReward("cat")), "a dog", "a cat", "baseline", "baseline", false, 0, 0, 1},
		{"tie", rewardJudge(wordReward("cat")), "dog", "bird", "tie", "tie", false, 0.5, 0.5, 0.5},
		{"position bias is dropped", firstJudge{}, "x", "y", "method", "baseline", true, 0, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Sample{Response: tc.response, BaselineResponse: tc.base}
			if err := judgePair(context.Background(), tc.j, &s); err != nil {
				t.Fatal(err)
			}
			got := []any{s.VerdictMethodFirst, s.VerdictBaselineFirst, s.Dropped, s.Score, s.PMethodFirst, s.PBaselineFirst}
			want := []any{tc.first, tc.second, tc.dropped, tc.score, tc.pFirst, tc.pBaseline}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("verdicts, dropped, score, probabilities = %v, want %v", got, want)
					break
				}
			}
		})
	}
}

// sample makes a judged sample with the given score (dropped when score < 0).
func sample(user, kind, method string, score float64, tokens int) Sample {
	s := Sample{User: user, Kind: kind, Method: method, Score: score, Tokens: tokens, Response: "r", BaselineResponse: "b"}
	switch {
	case score < 0:
		s.Dropped, s.Score, s.PMethodFirst, s.PBaselineFirst = true, 0, 1, 1
	case score == 1:
		s.PMethodFirst, s.PBaselineFirst = 1, 0
	case score == 0:
		s.PMethodFirst, s.PBaselineFirst = 0, 1
	default:
		s.PMethodFirst, s.PBaselineFirst = 0.5, 0.5
	}
	return s
}

// TestSummarizeKnown checks cases whose win rates and intervals are known
// by hand.
func TestSummarizeKnown(t *testing.T) {
	samples := []Sample{
		// fspo: user w always wins, user l always loses, equal counts. A
		// bootstrap resample is both w (100) or both l (0) with probability
		// 1/4 each, so the 2.5% and 97.5% quantiles are 0 and 100.
		sample("w", KindSeen, "fspo", 1, 10), sample("w", KindSeen, "fspo", 1, 20),
		sample("l", KindInterpolated, "fspo", 0, 30), sample("l", KindInterpolated, "fspo", 0, 40),
		// a dropped pair: left out of the rate, counted in length and dropped
		sample("l", KindInterpolated, "fspo", -1, 40),
		// base against itself: all ties
		sample("w", KindSeen, "base", 0.5, 5), sample("l", KindInterpolated, "base", 0.5, 7),
		// prefft: every pair won
		sample("w", KindSeen, "prefft", 1, 1), sample("l", KindInterpolated, "prefft", 1, 1),
		// ipo: one user, mixed: every resample is that user
		sample("w", KindSeen, "ipo", 1, 1), sample("w", KindSeen, "ipo", 0, 1), sample("w", KindSeen, "ipo", 0.5, 1), sample("w", KindSeen, "ipo", 0.5, 1),
	}
	tb := Summarize(samples, 7)
	tests := []struct {
		kind, method    string
		rate, lo, hi    float64
		n, users, drops int
	}{
		{"", "fspo", 50, 0, 100, 4, 2, 1},
		{KindSeen, "fspo", 100, 100, 100, 2, 1, 0},
		{KindInterpolated, "fspo", 0, 0, 0, 2, 1, 1},
		{"", "base", 50, 50, 50, 2, 2, 0},
		{"", "prefft", 100, 100, 100, 2, 2, 0},
		{"", "ipo", 50, 50, 50, 4, 1, 0},
	}
	for _, tc := range tests {
		got, ok := tb.Overall[tc.method]
		if tc.kind != "" {
			got, ok = tb.ByKind[tc.kind][tc.method]
		}
		if !ok {
			t.Errorf("%s %s: missing", tc.kind, tc.method)
			continue
		}
		if got.Percent != tc.rate || got.Low != tc.lo || got.High != tc.hi || got.N != tc.n || got.Users != tc.users || got.Dropped != tc.drops {
			t.Errorf("%s %s: %.1f [%.1f, %.1f] n=%d users=%d dropped=%d, want %.1f [%.1f, %.1f] n=%d users=%d dropped=%d",
				tc.kind, tc.method, got.Percent, got.Low, got.High, got.N, got.Users, got.Dropped, tc.rate, tc.lo, tc.hi, tc.n, tc.users, tc.drops)
		}
	}
	if tb.Dropped["fspo"] != 1 || tb.MeanTokens["fspo"] != 28 || tb.MeanTokens["base"] != 6 {
		t.Errorf("dropped %d, mean tokens %v %v; want 1, 28, 6", tb.Dropped["fspo"], tb.MeanTokens["fspo"], tb.MeanTokens["base"])
	}
	if _, ok := tb.LC["prefft"]; ok {
		t.Logf("prefft LC %+v", tb.LC["prefft"])
	}
}

// TestSummarizeInterval checks the interval of many users with independent
// fair wins against the normal approximation: mean 50, standard error
// 50/sqrt(n) with one item per user.
func TestSummarizeInterval(t *testing.T) {
	var samples []Sample
	for i := range 400 {
		samples = append(samples, sample(strings.Repeat("u", 1+i/26)+string(rune('a'+i%26)), KindSeen, "fspo", float64(i%2), 1))
	}
	w := Summarize(samples, 3).Overall["fspo"]
	se := 50 / math.Sqrt(400)
	if w.Percent != 50 {
		t.Fatalf("rate %v, want 50", w.Percent)
	}
	for i, got := range []float64{w.Low, w.High} {
		want := 50 + []float64{-1.96, 1.96}[i]*se
		if math.Abs(got-want) > 0.6 {
			t.Errorf("bound %d = %.2f, want %.2f ± 0.6", i, got, want)
		}
	}
	if again := Summarize(samples, 3).Overall["fspo"]; again != w {
		t.Errorf("same seed, other result: %+v vs %+v", again, w)
	}
}
