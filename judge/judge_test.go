package judge

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// fakeJudge answers from a function of (a, b).
type fakeJudge struct {
	compare func(a, b string) (float64, error)
	calls   int
}

func (f *fakeJudge) Compare(_ context.Context, _, _, a, b string) (float64, error) {
	f.calls++
	return f.compare(a, b)
}

func TestFunc(t *testing.T) {
	reward := Func(func(_, _, r string) float64 { return float64(strings.Count(r, "cat")) })
	tests := []struct {
		a, b string
		want float64
	}{
		{"cat cat", "cat", 1},
		{"dog", "cat", 0},
		{"cat", "a cat", 0.5},
	}
	for _, tt := range tests {
		got, err := reward.Compare(context.Background(), "", "", tt.a, tt.b)
		if err != nil || got != tt.want {
			t.Errorf("Compare(%q, %q) = %v, %v; want %v", tt.a, tt.b, got, err, tt.want)
		}
	}
	nan := Func(func(_, _, _ string) float64 { return math.NaN() })
	if _, err := nan.Compare(context.Background(), "", "", "a", "b"); err == nil {
		t.Error("NaN reward: want an error")
	}
}

func TestBothOrders(t *testing.T) {
	better := func(a, b string) (float64, error) { // prefers "good"
		switch {
		case a == "good":
			return 1, nil
		case b == "good":
			return 0, nil
		}
		return 0.5, nil
	}
	tests := []struct {
		name           string
		compare        func(a, b string) (float64, error)
		resp, base     string
		wantScore      float64
		wantDropped    bool
		wantCalls      int
		wantErr        bool
		wantFwd, wantB float64
	}{
		{"win", better, "good", "bad", 1, false, 2, false, 1, 0},
		{"loss", better, "bad", "good", 0, false, 2, false, 0, 1},
		{"tie", better, "meh", "bad", 0.5, false, 2, false, 0.5, 0.5},
		{"position bias flips", func(a, b string) (float64, error) { return 1, nil }, "x", "y", 0, true, 2, false, 1, 1},
		{"soft consistent", func(a, b string) (float64, error) {
			if a == "x" {
				return 0.7, nil
			}
			return 0.4, nil
		}, "x", "y", 1, false, 2, false, 0.7, 0.4},
		{"tie against a decision", func(a, b string) (float64, error) {
			if a == "x" {
				return 0.5, nil
			}
			return 0, nil
		}, "x", "y", 0, true, 2, false, 0.5, 0},
		{"identical texts tie without calls", better, "same", "same", 0.5, false, 0, false, 0.5, 0.5},
		{"judge error", func(a, b string) (float64, error) { return 0, errors.New("boom") }, "x", "y", 0, false, 1, true, 0, 0},
		{"probability out of range", func(a, b string) (float64, error) { return 1.5, nil }, "x", "y", 0, false, 2, true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &fakeJudge{compare: tt.compare}
			o, err := BothOrders(context.Background(), j, "desc", "prompt", tt.resp, tt.base)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if j.calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", j.calls, tt.wantCalls)
			}
			if tt.wantErr {
				return
			}
			if o.Score != tt.wantScore || o.Dropped != tt.wantDropped || o.Forward != tt.wantFwd || o.Backward != tt.wantB {
				t.Errorf("outcome %+v, want score %v dropped %v forward %v backward %v", o, tt.wantScore, tt.wantDropped, tt.wantFwd, tt.wantB)
			}
			if o.ResponseLen != len([]rune(tt.resp)) || o.BaselineLen != len([]rune(tt.base)) {
				t.Errorf("lengths %d/%d", o.ResponseLen, o.BaselineLen)
			}
		})
	}
}

func TestWinRateCounts(t *testing.T) {
	outs := []Outcome{{Score: 1}, {Score: 1}, {Score: 0}, {Score: 0.5}, {Dropped: true}, {Score: 1}}
	users := []string{"u1", "u1", "u2", "u2", "u3", "u3"}
	s := WinRate(outs, users, 1)
	// (1 + 1 + 0 + 0.5 + 1) / 5 = 70%.
	want := Summary{Percent: 70, N: 5, Users: 3, Wins: 3, Ties: 1, Losses: 1, Dropped: 1}
	if math.Abs(s.Percent-want.Percent) > 1e-12 || s.N != want.N || s.Users != want.Users || s.Wins != want.Wins ||
		s.Ties != want.Ties || s.Losses != want.Losses || s.Dropped != want.Dropped {
		t.Errorf("got %+v, want %+v", s, want)
	}
	if !(s.Low <= s.Percent && s.Percent <= s.High) || s.Low < 0 || s.High > 100 {
		t.Errorf("interval [%v, %v] does not hold %v", s.Low, s.High, s.Percent)
	}
	if again := WinRate(outs, users, 1); again != s {
		t.Errorf("same seed: %+v then %+v", s, again)
	}
	// Users given in another order (and so a different map history) change nothing.
	rev := func(x []Outcome, u []string) ([]Outcome, []string) {
		xo, uo := append([]Outcome(nil), x...), append([]string(nil), u...)
		for i, j := 0, len(xo)-1; i < j; i, j = i+1, j-1 {
			xo[i], xo[j], uo[i], uo[j] = xo[j], xo[i], uo[j], uo[i]
		}
		return xo, uo
	}
	ro, ru := rev(outs, users)
	if r := WinRate(ro, ru, 1); r != s {
		t.Errorf("reversed input: %+v, want %+v", r, s)
	}
}

func TestWinRateEdgeCases(t *testing.T) {
	if s := WinRate([]Outcome{{Dropped: true}}, []string{"u"}, 1); s.N != 0 || s.Dropped != 1 || s.Percent != 0 || s.String() != "- (n=0, dropped 1)" {
		t.Errorf("all dropped: %+v %q", s, s.String())
	}
	// Every user at exactly 50%: the interval collapses.
	outs := []Outcome{{Score: 1}, {Score: 0}, {Score: 1}, {Score: 0}}
	s := WinRate(outs, []string{"a", "a", "b", "b"}, 3)
	if s.Percent != 50 || s.Low != 50 || s.High != 50 {
		t.Errorf("equal users: %+v, want 50 [50, 50]", s)
	}
	defer func() {
		if recover() == nil {
			t.Error("mismatched lengths: want a panic")
		}
	}()
	WinRate(outs, []string{"a"}, 1)
}

// The interval over users: true per-user win rate p for every user, so the
// interval must cover p in most seeds and narrow as users grow.
func TestWinRateBootstrapCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const p = 0.65
	width := func(nUsers int, seed int64) (Summary, float64) {
		var outs []Outcome
		var users []string
		for u := range nUsers {
			for range 10 {
				sc := 0.0
				if rng.Float64() < p {
					sc = 1
				}
				outs = append(outs, Outcome{Score: sc})
				users = append(users, string(rune('A'+u%26))+string(rune('a'+u/26)))
			}
		}
		s := WinRate(outs, users, seed)
		return s, s.High - s.Low
	}
	covered := 0
	const trials = 40
	var w20, w200 float64
	for i := range trials {
		s, w := width(20, int64(i))
		w20 += w / trials
		if s.Low <= 100*p && 100*p <= s.High {
			covered++
		}
		_, w2 := width(200, int64(i))
		w200 += w2 / trials
	}
	if covered < 33 { // nominal 95% of 40 = 38; allow for Monte Carlo noise
		t.Errorf("interval covered the true rate in %d of %d trials", covered, trials)
	}
	// Width scales as 1/sqrt(users): 200 users about sqrt(10) ≈ 3.2 times narrower.
	if ratio := w20 / w200; ratio < 2.5 || ratio > 4 {
		t.Errorf("width 20 users %.2f / 200 users %.2f = %.2f, want about 3.2", w20, w200, ratio)
	}
}

// Synthetic pairs whose preference follows the model with a known length
// bias: the raw win rate is inflated by longer responses, the LC win rate
// recovers 100·σ(β0).
func TestLengthControlled(t *testing.T) {
	tests := []struct {
		name       string
		b0, b1     float64
		shift      float64 // mean length advantage of the response
		wantRawMin float64
	}{
		{"equal quality, long responses", 0, 2, 150, 60},
		{"better quality, long responses", 1, 2, 150, 80},
		{"better quality, no length bias", 1, 0, 150, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			const n = 6000
			ds := make([]float64, n)
			var mean, sd float64
			for i := range ds {
				ds[i] = math.Round(tt.shift + 200*rng.NormFloat64())
				mean += ds[i] / n
			}
			for _, d := range ds {
				sd += (d - mean) * (d - mean) / (n - 1)
			}
			sd = math.Sqrt(sd)
			outs := make([]Outcome, n)
			var raw float64
			for i, d := range ds {
				p := sigmoid(tt.b0 + tt.b1*math.Tanh(d/sd))
				o := Outcome{BaselineLen: 500, ResponseLen: 500 + int(d)}
				if rng.Float64() < p {
					o.Score = 1
				}
				raw += o.Score / n
				outs[i] = o
			}
			outs = append(outs, Outcome{Dropped: true, ResponseLen: 1e6}) // dropped: ignored
			lc, err := LengthControlled(outs)
			if err != nil {
				t.Fatal(err)
			}
			want := 100 * sigmoid(tt.b0)
			if math.Abs(lc.Percent-want) > 3 || lc.N != n {
				t.Errorf("LC = %.2f (n=%d), want %.2f ± 3 (raw %.1f)", lc.Percent, lc.N, want, 100*raw)
			}
			if math.Abs(lc.Length-tt.b1) > 0.3 {
				t.Errorf("length coefficient %.3f, want %.1f ± 0.3", lc.Length, tt.b1)
			}
			if 100*raw < tt.wantRawMin {
				t.Errorf("raw win rate %.1f, want >= %.0f (the bias this test needs)", 100*raw, tt.wantRawMin)
			}
		})
	}
}

func TestLengthControlledEdgeCases(t *testing.T) {
	if _, err := LengthControlled([]Outcome{{Score: 1}, {Dropped: true}}); err == nil {
		t.Error("one outcome: want an error")
	}
	// All wins (separable): finite, near 100.
	lc, err := LengthControlled([]Outcome{{Score: 1, ResponseLen: 10}, {Score: 1, ResponseLen: 20}, {Score: 1}})
	if err != nil || lc.Percent < 95 || lc.Percent > 100 {
		t.Errorf("all wins: %+v, %v; want a finite rate near 100", lc, err)
	}
	// Equal lengths: the length term is unidentified, the rate is the mean.
	lc, err = LengthControlled([]Outcome{{Score: 1}, {Score: 0}, {Score: 1}, {Score: 0.5}})
	if err != nil || math.Abs(lc.Percent-62.5) > 0.1 {
		t.Errorf("equal lengths: %+v, %v; want 62.5", lc, err)
	}
}

func TestVerdict(t *testing.T) {
	for _, tt := range []struct {
		p    float64
		want string
	}{{1, "A"}, {0.51, "A"}, {0.5, "tie"}, {0.49, "B"}, {0, "B"}} {
		if got := Verdict(tt.p); got != tt.want {
			t.Errorf("Verdict(%v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}
