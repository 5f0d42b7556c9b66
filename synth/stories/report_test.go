package stories

import (
	"math"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestDistinctN(t *testing.T) {
	texts := []string{"the cat sat", "the cat ran"}
	// unigrams: the cat sat the cat ran → 4 distinct of 6;
	// bigrams: "the cat" ×2, "cat sat", "cat ran" → 3 distinct of 4.
	if got := distinctN(texts, 1); !near(got, 4.0/6) {
		t.Errorf("distinct-1 = %v, want %v", got, 4.0/6)
	}
	if got := distinctN(texts, 2); !near(got, 3.0/4) {
		t.Errorf("distinct-2 = %v, want %v", got, 3.0/4)
	}
	if got := distinctN([]string{"a"}, 2); got != 0 {
		t.Errorf("distinct-2 of one word = %v, want 0", got)
	}
}

func TestSelfSimilarity(t *testing.T) {
	tests := []struct {
		a, b string
		want float64
	}{
		{"cat dog", "dog cat", 1},
		{"cat", "dog", 0},
		{"cat cat dog", "cat", 2 / math.Sqrt(5)},
		{"", "cat", 0},
	}
	for _, tc := range tests {
		if got := cosine(tc.a, tc.b); !near(got, tc.want) {
			t.Errorf("cosine(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	texts := []string{"cat dog", "dog cat", "cat", "x", "y"}
	groups := map[int][]int{0: {0, 1, 2}, 1: {3, 4}}
	// pairs: (0,1)=1, (0,2)=1/√2, (1,2)=1/√2, (3,4)=0 → mean over 4 pairs.
	want := (1 + 2/math.Sqrt(2)) / 4
	if got := selfSimilarity(texts, groups); !near(got, want) {
		t.Errorf("selfSimilarity = %v, want %v", got, want)
	}
}

func TestDisagreement(t *testing.T) {
	// One opening with three candidates → pairs (0,1), (0,2), (1,2).
	groups := map[int][]int{0: {0, 1, 2}}
	rewards := [][]float64{
		{1, 0, 0.5}, // decides 0>1, 0>2, 2>1
		{0, 1, 0.5}, // decides 1>0, 2>0, 1>2: all opposite of user 0
		{1, 0, 0.9}, // 0>1, 2>1; (0,2) margin 0.1 undecided
		{0, 0, 0},   // decides nothing
	}
	D := disagreement(rewards, groups, 0.25)
	want := [][]float64{
		{0, 1, 0, -1},
		{1, 0, 1, -1},
		{0, 1, 0, -1},
		{-1, -1, -1, 0},
	}
	for u := range want {
		for v := range want[u] {
			if !near(D[u][v], want[u][v]) {
				t.Errorf("D[%d][%d] = %v, want %v", u, v, D[u][v], want[u][v])
			}
		}
	}
	mean, minV, at := offDiagonal(D)
	if !near(mean, 2.0/3) || minV != 0 || at != [2]int{0, 2} {
		t.Errorf("offDiagonal = %v, %v, %v; want 2/3, 0, [0 2]", mean, minV, at)
	}
}

func TestBinaryEntropy(t *testing.T) {
	if got := binaryEntropy(0.5); !near(got, math.Log(2)) {
		t.Errorf("H(0.5) = %v, want ln 2", got)
	}
	if binaryEntropy(1) != 0 || binaryEntropy(0) != 0 {
		t.Error("H(0) and H(1) must be 0")
	}
}

// handPool is two training openings and one held-out opening with three
// candidates each, for a user who likes cats.
func handPool() ([]Candidate, map[int][]int) {
	var cands []Candidate
	texts := []string{"A cat and a cat.", "A cat.", "A dog."}
	for p, held := range []bool{false, false, true} {
		for j, tx := range texts {
			cands = append(cands, Candidate{ID: "p" + string(rune('0'+p)) + "-c" + string(rune('0'+j)), PromptIndex: p,
				Prompt: "Opening " + string(rune('A'+p)), HeldOut: held, Response: tx + strings.Repeat(" ", p),
				PersonaDescription: "persona " + tx})
		}
	}
	return cands, byPrompt(cands)
}

func TestLabelUser(t *testing.T) {
	cands, groups := handPool()
	cat := &Profile{ID: "u1", Kind: Train, Prefs: []Pref{{Animal, "cat", 1}}, Description: "Likes cats."}
	rewards := make([]float64, len(cands))
	for i, c := range cands {
		rewards[i] = cat.Reward(c.Response) // 1, 0.5, 0 per opening
	}
	opt := DefaultOptions()
	opt.PairsPerUser, opt.MinMargin, opt.Noise = 100, 0.6, 0
	recs, st := labelUser(cat, cands, rewards, groups, &opt)
	// Only (cat cat, dog) clears a margin of 0.6, once per training opening.
	if len(recs) != 2 || !st.Short || st.Pairs != 2 || st.LabelEntropy != 0 || st.Flipped != 0 {
		t.Fatalf("got %d records, stats %+v; want 2 exact records and Short", len(recs), st)
	}
	for _, r := range recs {
		if !strings.HasPrefix(r.Chosen, "A cat and a cat.") || !strings.HasPrefix(r.Rejected, "A dog.") {
			t.Errorf("record %s: chosen %q over %q", r.ID, r.Chosen, r.Rejected)
		}
		if r.Prompt == "Opening C" {
			t.Errorf("train user labelled on the held-out opening")
		}
		if *r.ChosenScore != 1 || *r.RejectedScore != 0 || r.Description != "Likes cats." || r.RejectedDescription != "" || r.Meta["rejected_persona"] != "persona A dog." || r.Source != "stories" {
			t.Errorf("record fields wrong: %+v", r)
		}
		if err := r.Check(); err != nil {
			t.Error(err)
		}
	}
	// Undecided: per opening pairs (cc,c)=0.5 (cc,d)=1 (c,d)=0.5 → 2 of 3 under 0.6.
	if !near(st.Undecided, 2.0/3) {
		t.Errorf("undecided = %v, want 2/3", st.Undecided)
	}

	held := *cat
	held.ID, held.Kind = "u2", Interpolated
	opt.MinMargin = 0.25
	recs, st = labelUser(&held, cands, rewards, groups, &opt)
	if len(recs) != 3 || st.Ties != 0 {
		t.Fatalf("held-out user: %d records, %+v; want the 3 pairs of the held-out opening", len(recs), st)
	}
	for _, r := range recs {
		if r.Prompt != "Opening C" || r.Meta["kind"] != "interpolated" {
			t.Errorf("held-out user labelled %q (kind %s)", r.Prompt, r.Meta["kind"])
		}
	}

	// Bradley–Terry noise: with a huge temperature labels are coin flips,
	// and the entropy is near ln 2.
	opt.Noise = 1000
	flips, n := 0, 0
	for i := range 200 {
		u := *cat
		u.ID = "n" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		recs, st := labelUser(&u, cands, rewards, groups, &opt)
		flips += st.Flipped
		n += len(recs)
		if st.LabelEntropy < 0.69 {
			t.Fatalf("entropy %v with noise 1000, want ≈ ln 2", st.LabelEntropy)
		}
		for _, r := range recs {
			if (r.Meta["flipped"] == "true") != (*r.ChosenScore < *r.RejectedScore) {
				t.Errorf("flipped mark %s with scores %v, %v", r.Meta["flipped"], *r.ChosenScore, *r.RejectedScore)
			}
		}
	}
	if rate := float64(flips) / float64(n); rate < 0.4 || rate > 0.6 {
		t.Errorf("flip rate %v with noise 1000, want ≈ 0.5", rate)
	}
}

func TestHeadroom(t *testing.T) {
	cands := []Candidate{
		{ID: "a", PromptIndex: 0, Steer: "x.", Response: "A cat and a cat."}, // reward 1
		{ID: "b", PromptIndex: 0, Steer: "x.", Response: "A dog."},           // 0
		{ID: "c", PromptIndex: 0, Response: "A cat."},                        // 0.5, unsteered
		{ID: "d", PromptIndex: 0, Response: "A bird."},                       // 0, unsteered
		{ID: "e", PromptIndex: 1, HeldOut: true, Response: "A cat."},         // another user's opening
	}
	u := &Profile{ID: "u", Kind: Train, Prefs: []Pref{{Animal, "cat", 1}}}
	rewards := make([]float64, len(cands))
	for i, c := range cands {
		rewards[i] = u.Reward(c.Response)
	}
	best, steered, ok := headroom(u, cands, rewards, byPrompt(cands))
	// best (1) beats both base continuations; steered vs base:
	// 1>0.5, 1>0, 0<0.5, 0=0 → 2.5 of 4.
	if !ok || best != 1 || steered != 0.625 {
		t.Errorf("headroom = %v, %v, %v; want 1, 0.625, true", best, steered, ok)
	}
	held := &Profile{ID: "h", Kind: Unseen, Prefs: u.Prefs}
	if _, _, ok := headroom(held, cands, rewards, byPrompt(cands)); ok {
		t.Error("held-out user: its opening has no steered candidate, want ok = false")
	}
}
