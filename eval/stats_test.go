package eval

import (
	"context"
	"math"
	"strings"
	"testing"
)

func scores(user string, vals ...float64) []Scored {
	out := make([]Scored, len(vals))
	for i, v := range vals {
		out[i] = Scored{User: user, Score: v}
	}
	return out
}

func concat(parts ...[]Scored) []Scored {
	var out []Scored
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestBootstrapKnown checks cases whose rate and interval are known by hand.
func TestBootstrapKnown(t *testing.T) {
	tests := []struct {
		name   string
		items  []Scored
		rate   float64
		lo, hi float64
		users  int
	}{
		{"all wins", concat(scores("a", 1, 1), scores("b", 1)), 100, 100, 100, 2},
		{"all ties", concat(scores("a", 0.5, 0.5), scores("b", 0.5, 0.5)), 50, 50, 50, 2},
		{"all losses", scores("a", 0, 0, 0), 0, 0, 0, 1},
		// two users, one always wins, one always loses, equal counts: a
		// resample is both winners (100) or both losers (0) with
		// probability 1/4 each, so the 2.5% and 97.5% quantiles are 0 and 100.
		{"split users", concat(scores("w", 1, 1), scores("l", 0, 0)), 50, 0, 100, 2},
		// one user: every resample is that user.
		{"one mixed user", scores("a", 1, 0, 0.5, 0.5), 50, 50, 50, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Bootstrap(tc.items, 2000, 7, "test")
			if got.Rate != tc.rate || got.CI95[0] != tc.lo || got.CI95[1] != tc.hi {
				t.Errorf("Bootstrap = %.3f [%.3f, %.3f], want %.3f [%.3f, %.3f]", got.Rate, got.CI95[0], got.CI95[1], tc.rate, tc.lo, tc.hi)
			}
			if got.N != len(tc.items) || got.Users != tc.users {
				t.Errorf("N, Users = %d, %d, want %d, %d", got.N, got.Users, len(tc.items), tc.users)
			}
		})
	}
}

// TestBootstrapCoverage checks the interval of many users with independent
// fair wins against the normal approximation: mean 50, standard error
// 50/sqrt(n) per user with one item each.
func TestBootstrapCoverage(t *testing.T) {
	var items []Scored
	for i := range 400 {
		items = append(items, Scored{User: string(rune('A'+i%26)) + strings.Repeat("x", i/26), Score: float64(i % 2)})
	}
	got := Bootstrap(items, 2000, 3, "cov")
	se := 50 / math.Sqrt(400)
	if got.Rate != 50 {
		t.Fatalf("rate %v, want 50", got.Rate)
	}
	for i, want := range []float64{50 - 1.96*se, 50 + 1.96*se} {
		if math.Abs(got.CI95[i]-want) > 0.6 {
			t.Errorf("CI95[%d] = %.2f, want %.2f ± 0.6", i, got.CI95[i], want)
		}
	}
}

func TestBootstrapDeterministic(t *testing.T) {
	items := concat(scores("a", 1, 0), scores("b", 1), scores("c", 0, 0.5, 1))
	a, b := Bootstrap(items, 500, 1, "s"), Bootstrap(items, 500, 1, "s")
	if a != b {
		t.Errorf("same seed: %+v vs %+v", a, b)
	}
	if c := Bootstrap(items, 500, 2, "s"); c.CI95 == a.CI95 && c.CI95 != [2]float64{a.Rate, a.Rate} {
		t.Logf("other seed gave the same interval %v (possible, unlikely)", c.CI95)
	}
	if e := Bootstrap(nil, 500, 1, "s"); !math.IsNaN(e.Rate) {
		t.Errorf("empty input: rate %v, want NaN", e.Rate)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{0, 10, 20, 30, 40}
	tests := []struct{ p, want float64 }{{0, 0}, {1, 40}, {0.5, 20}, {0.025, 1}, {0.975, 39}, {0.3, 12}}
	for _, tc := range tests {
		if got := quantile(xs, tc.p); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("quantile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

type constReward float64

func (c constReward) Reward(string) float64 { return float64(c) }

type wordReward string

func (w wordReward) Reward(s string) float64 { return float64(strings.Count(s, string(w))) }

// firstJudge always prefers the response shown first: a position bias.
type firstJudge struct{}

func (firstJudge) Name() string { return "first" }
func (firstJudge) Compare(context.Context, Comparison) (Verdict, error) {
	return Verdict{Winner: "A"}, nil
}

func TestBothOrders(t *testing.T) {
	rj := RewardJudge{Rewards: map[string]Rewarder{"u": wordReward("cat"), "c": constReward(1)}}
	tests := []struct {
		name          string
		j             Judge
		user, a, b    string
		first, second string
		consistent    bool
		score         float64
	}{
		{"win", rj, "u", "a cat and a cat", "a cat", "method", "method", true, 1},
		{"loss", rj, "u", "a dog", "a cat", "baseline", "baseline", true, 0},
		{"tie", rj, "u", "dog", "bird", "tie", "tie", true, 0.5},
		{"constant tie", rj, "c", "x", "y", "tie", "tie", true, 0.5},
		{"position bias", firstJudge{}, "u", "x", "y", "method", "baseline", false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := BothOrders(context.Background(), tc.j, Comparison{User: tc.user, A: tc.a, B: tc.b})
			if err != nil {
				t.Fatal(err)
			}
			if o.First != tc.first || o.Second != tc.second || o.Consistent != tc.consistent || o.Score != tc.score {
				t.Errorf("got %+v, want first %s second %s consistent %v score %v", o, tc.first, tc.second, tc.consistent, tc.score)
			}
		})
	}
	o, _ := BothOrders(context.Background(), rj, Comparison{User: "u", A: "cat cat", B: "cat"})
	if o.Reward == nil || *o.Reward != 2 || *o.BaselineReward != 1 {
		t.Errorf("rewards %v %v, want 2 and 1", o.Reward, o.BaselineReward)
	}
	if _, err := BothOrders(context.Background(), rj, Comparison{User: "nobody"}); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("unknown user: error %v, want one naming the user", err)
	}
}

// TestSummarize checks overall and per-kind rates, dropped pairs and lengths.
func TestSummarize(t *testing.T) {
	s := func(user, kind, method string, score float64, consistent bool, tokens int) Sample {
		return Sample{User: user, Kind: kind, Method: method, Score: score, Consistent: consistent, Tokens: tokens}
	}
	samples := []Sample{
		s("a", KindSeen, "fspo", 1, true, 10),
		s("a", KindSeen, "fspo", 1, true, 20),
		s("b", KindInterpolated, "fspo", 0, true, 30),
		s("b", KindInterpolated, "fspo", 1, false, 40), // dropped from rates, counted in length
		s("a", KindSeen, "base", 0.5, true, 5),
		s("b", KindInterpolated, "base", 0.5, true, 7),
	}
	tb := Summarize(samples, 1000, 1)
	if got := tb.Overall["fspo"].Rate; math.Abs(got-200.0/3) > 1e-9 {
		t.Errorf("fspo overall %v, want 66.67", got)
	}
	if got := tb.ByKind[KindSeen]["fspo"]; got.Rate != 100 || got.CI95 != [2]float64{100, 100} {
		t.Errorf("fspo seen %+v, want 100 [100, 100]", got)
	}
	if got := tb.ByKind[KindInterpolated]["fspo"].Rate; got != 0 {
		t.Errorf("fspo interpolated %v, want 0", got)
	}
	if got := tb.Overall["base"]; got.Rate != 50 || got.CI95 != [2]float64{50, 50} {
		t.Errorf("base %+v, want 50 [50, 50]", got)
	}
	if tb.Inconsistent["fspo"] != 1 || tb.MeanTokens["fspo"] != 25 || tb.MeanTokens["base"] != 6 {
		t.Errorf("inconsistent %d, mean tokens %v %v; want 1, 25, 6", tb.Inconsistent["fspo"], tb.MeanTokens["fspo"], tb.MeanTokens["base"])
	}
}
