package elicit

import (
	"fmt"
	"math"
	"testing"

	"fspo/dataset"
)

func TestProb(t *testing.T) {
	for _, c := range []struct {
		obj    string
		margin float64
		want   float64
	}{
		{"ipo", 0, 0.5}, {"ipo", 0.25, 0.75}, {"ipo", 2, 1 - Noise}, {"ipo_norm", -2, Noise},
		{"dpo", 0, 0.5}, {"dpo", math.Log(3), 0.75}, {"cdpo", -math.Log(3), 0.25}, {"dpo", 50, 1 - Noise},
	} {
		if got := Prob(c.obj, c.margin); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Prob(%s, %v) = %v, want %v", c.obj, c.margin, got, c.want)
		}
	}
}

// The gain is the mutual information between the answer and the member:
// computed here by hand for two equally likely members.
func TestGainIsMutualInformation(t *testing.T) {
	c, err := NewCommittee([][]float64{{0.9, 0.5, 0.9}, {0.1, 0.5, 0.9}})
	if err != nil {
		t.Fatal(err)
	}
	w := c.Posterior(nil)
	if w[0] != 0.5 || w[1] != 0.5 {
		t.Fatalf("uniform prior: %v", w)
	}
	h := func(p float64) float64 { return -p*math.Log(p) - (1-p)*math.Log(1-p) }
	want := []float64{h(0.5) - h(0.9), 0, 0} // disagreement; both unsure; both agree
	for j, wj := range want {
		if g := c.Gain(j, w); math.Abs(g-wj) > 1e-12 {
			t.Errorf("pair %d: gain %v, want %v", j, g, wj)
		}
	}
	if j, _ := c.Next(nil); j != 0 {
		t.Errorf("Next chose %d, want the disputed pair 0", j)
	}
	if j, g := c.Next(map[int]bool{0: true}); j != 1 || g != 0 {
		// after pair 0 the other pairs tell nothing: the lowest index wins
		t.Errorf("Next after pair 0 = %d (gain %v), want 1 with 0", j, g)
	}
	if j, _ := c.Next(map[int]bool{0: true, 1: false, 2: true}); j != -1 {
		t.Errorf("Next with every pair answered = %d, want -1", j)
	}
}

// Answers move the weight to the members that predicted them, and a
// member that predicted wrongly keeps at least the noise floor's share.
func TestPosteriorFollowsAnswers(t *testing.T) {
	c, _ := NewCommittee([][]float64{{0.9, 0.8}, {0.2, 0.3}, {0.5, 0.5}})
	w := c.Posterior(map[int]bool{0: true, 1: true})
	if !(w[0] > w[2] && w[2] > w[1]) {
		t.Fatalf("weights %v: want member 0 > 2 > 1 after two first-preferred answers", w)
	}
	sum := w[0] + w[1] + w[2]
	if math.Abs(sum-1) > 1e-12 {
		t.Fatalf("weights sum to %v", sum)
	}
	want0 := 0.9 * 0.8 / (0.9*0.8 + 0.2*0.3 + 0.25)
	if math.Abs(w[0]-want0) > 1e-12 {
		t.Fatalf("w0 = %v, want %v", w[0], want0)
	}
	w = c.Posterior(map[int]bool{0: false, 1: false})
	if !(w[1] > w[2] && w[2] > w[0]) {
		t.Fatalf("weights %v: want member 1 > 2 > 0 after two second-preferred answers", w)
	}
}

// Once the answers single out a member, the pairs on which the members
// still disagree but the likely one is sure gain little.
func TestNextUsesThePosterior(t *testing.T) {
	c, _ := NewCommittee([][]float64{
		{0.95, 0.95, 0.95},
		{0.05, 0.95, 0.05},
		{0.05, 0.05, 0.95},
	})
	j, _ := c.Next(nil)
	if j != 0 && j != 1 && j != 2 {
		t.Fatalf("Next = %d", j)
	}
	// Member 0 or 2 after pair 0 = false? pair 0 false favours members 1, 2: pair 1 or 2 separates them.
	j, g := c.Next(map[int]bool{0: false})
	if j != 1 || g <= 0.3 {
		t.Fatalf("after pair 0 answered second: Next = %d (gain %v), want pair 1 (separates members 1 and 2)", j, g)
	}
}

func TestNewCommitteeRejects(t *testing.T) {
	for name, p := range map[string][][]float64{
		"empty":   nil,
		"ragged":  {{0.5, 0.5}, {0.5}},
		"outside": {{0.5, 1.5}},
		"nan":     {{math.NaN()}},
	} {
		if _, err := NewCommittee(p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// Contexts: n users with enough records, each context a seeded choice of
// that user's records, the same for the same seed.
func TestContexts(t *testing.T) {
	by := map[string][]dataset.Record{}
	for u := range 6 {
		name := fmt.Sprintf("u%d", u)
		for r := range 2 + u {
			by[name] = append(by[name], dataset.Record{User: name, Prompt: fmt.Sprintf("q%d", r), Chosen: "a", Rejected: "b"})
		}
	}
	got := Contexts(by, 2, 4, 7)
	if len(got) != 2 {
		t.Fatalf("%d contexts, want 2", len(got))
	}
	seen := map[string]bool{}
	for _, c := range got {
		if len(c) != 4 {
			t.Fatalf("context of %d shots, want 4", len(c))
		}
		u := c[0].User
		if seen[u] || len(by[u]) < 5 {
			t.Fatalf("user %s twice or with too few records (%d)", u, len(by[u]))
		}
		seen[u] = true
		for _, r := range c {
			if r.User != u {
				t.Fatalf("a context mixes users %s and %s", u, r.User)
			}
		}
	}
	if again := Contexts(by, 2, 4, 7); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Fatal("not the same contexts for the same seed")
	}
	if all := Contexts(by, 10, 4, 7); len(all) != 3 {
		t.Fatalf("%d contexts: 3 users have 5 records or more (4 shots and a query)", len(all))
	}
}
