package eval

import (
	"math"
	"testing"

	"fspo/pref"
	"fspo/runcard"
)

// TestRankPairsIPONorm checks that the implicit-reward accuracy ranks a
// pair with the run's own margin: for ipo_norm each log-ratio is divided
// by its completion's length (pref.Objective.Margin). The pair here has a
// positive summed margin (+1 nat: (−10+12) − (−20+21)) but a negative
// length-normalised one (2/20 − 1/2 = −0.4), so the two objectives rank it
// differently; the numbers are worked by hand.
func TestRankPairsIPONorm(t *testing.T) {
	pol := [][2]float64{{-10, -20}}
	ref := [][2]float64{{-12, -21}}
	lens := [][2]int{{20, 2}}
	for _, tc := range []struct {
		kind       string
		score      float64
		wantMargin float64
	}{
		{pref.IPO, 1, 0.1 * 1},
		{pref.IPONorm, 0, 0.1 * (2.0/20 - 1.0/2)},
	} {
		outs, margin := rankPairs(pref.Objective{Kind: tc.kind, Beta: 0.1}, pol, ref, lens)
		if outs[0].Score != tc.score || math.Abs(margin-tc.wantMargin) > 1e-12 {
			t.Errorf("%s: outcome %v margin %v, want %v and %v", tc.kind, outs[0].Score, margin, tc.score, tc.wantMargin)
		}
	}
}

// TestObjectiveOf checks that accuracy uses the loss and β the run card
// records, and IPO with the default β without a card.
func TestObjectiveOf(t *testing.T) {
	for _, tc := range []struct {
		card    *runcard.Card
		want    pref.Objective
		fromRun bool
	}{
		{nil, pref.Objective{Kind: pref.IPO, Beta: 0.05}, false},
		{&runcard.Card{Train: runcard.Train{Stage: "pref", Loss: pref.IPONorm, Beta: 0.2}}, pref.Objective{Kind: pref.IPONorm, Beta: 0.2}, true},
		{&runcard.Card{Train: runcard.Train{Stage: "pref", Loss: pref.DPO}}, pref.Objective{Kind: pref.DPO, Beta: 0.05}, false},
		{&runcard.Card{Train: runcard.Train{Stage: "sft", Loss: "sft", Beta: 0.1}}, pref.Objective{Kind: pref.IPO, Beta: 0.1}, true},
	} {
		got, fromRun := objectiveOf(&loaded{card: tc.card}, 0.05)
		if got != tc.want || fromRun != tc.fromRun {
			t.Errorf("card %+v: %+v (from run %v), want %+v (%v)", tc.card, got, fromRun, tc.want, tc.fromRun)
		}
	}
}
