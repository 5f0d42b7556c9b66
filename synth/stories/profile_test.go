package stories

import (
	"math"
	"strings"
	"testing"
)

func TestWordsAndMentions(t *testing.T) {
	tests := []struct {
		text  string
		value Value
		want  int
	}{
		{"Tom's cat saw two cats.", mustValue(t, Animal, "cat"), 2},
		{"The catalog had a Cat.", mustValue(t, Animal, "cat"), 1}, // whole words only
		{"Three mice and a MOUSE.", mustValue(t, Animal, "mouse"), 2},
		{"Tom's ball", mustValue(t, Name, "Tom"), 1},
		{"Tommy and Tomas", mustValue(t, Name, "Tom"), 0},
		{"she smiled happily, so happy", mustValue(t, Mood, "happy"), 2},
		{"", mustValue(t, Place, "park"), 0},
	}
	for _, tc := range tests {
		if got := Mentions(tc.value, tc.text); got != tc.want {
			t.Errorf("Mentions(%s, %q) = %d, want %d", tc.value.Word, tc.text, got, tc.want)
		}
	}
	if got, want := strings.Join(Words("Tom's BIG-dog, 3 cats!"), "|"), "tom|s|big|dog|cats"; got != want {
		t.Errorf("Words = %q, want %q", got, want)
	}
}

func mustValue(t *testing.T, c Category, w string) Value {
	t.Helper()
	v, ok := lookup(c, w)
	if !ok {
		t.Fatalf("no %s %q in the vocabulary", c, w)
	}
	return v
}

func TestReward(t *testing.T) {
	p := &Profile{ID: "u", Prefs: []Pref{
		{Animal, "cat", 1.0},
		{Place, "park", 0.6},
		{Mood, "sad", -0.8},
	}}
	short := &Profile{ID: "s", Prefs: []Pref{{Length, "short", 1.0}}}
	long := &Profile{ID: "l", Prefs: []Pref{{Length, "long", 0.5}}}
	words := func(n int) string { return strings.Repeat("la ", n) }
	tests := []struct {
		name string
		p    *Profile
		text string
		want float64
	}{
		{"nothing", p, "A dog ran.", 0},
		{"one like mention is half the weight", p, "A cat ran.", 0.5},
		{"two mentions are the whole weight", p, "A cat and a cat.", 1.0},
		{"mentions are capped at two", p, "cat cat cat cat cats", 1.0},
		{"likes add up", p, "The cat went to the park.", 0.5 + 0.3},
		{"a dislike subtracts", p, "The cat was sad. So sad.", 0.5 - 0.8},
		{"graded mix", p, "Cats at the park, parks, sad.", 0.5 + 0.6 - 0.4},
		{"short: inside the band", short, words(ShortMax), 0},
		{"short: 2 words over", short, words(ShortMax + 2), -2 / LengthScale},
		{"short: far over is capped", short, words(ShortMax + 50), -1},
		{"long: inside the band", long, words(LongMin + 3), 0},
		{"long: 1 word under", long, words(LongMin - 1), -0.5 / LengthScale},
		{"long: empty", long, "", -0.5},
	}
	for _, tc := range tests {
		if got := tc.p.Reward(tc.text); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: Reward(%q) = %v, want %v", tc.name, tc.text, got, tc.want)
		}
	}
}

func TestProfileCheck(t *testing.T) {
	tests := []struct {
		prefs []Pref
		want  string // substring of the error; "" for none
	}{
		{[]Pref{{Animal, "cat", 1}, {Length, "long", 0.5}}, ""},
		{nil, "no preferences"},
		{[]Pref{{Animal, "unicorn", 1}}, `"unicorn" is not a known animal`},
		{[]Pref{{Animal, "cat", 0}}, "weight 0 must be finite and non-zero"},
		{[]Pref{{Animal, "cat", math.NaN()}}, "must be finite"},
		{[]Pref{{Animal, "cat", 1}, {Animal, "Cat", -1}}, "listed twice"},
		{[]Pref{{Length, "medium", 1}}, `length "medium" must be`},
		{[]Pref{{Length, "short", -1}}, "length weight -1 must be positive"},
		{[]Pref{{"colour", "red", 1}}, `"red" is not a known colour`},
	}
	for _, tc := range tests {
		p := Profile{ID: "u9", Prefs: tc.prefs}
		err := p.Check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Check(%v) = %v, want nil", tc.prefs, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Check(%v) = %v, want an error containing %q", tc.prefs, err, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), "u9"):
			t.Errorf("Check error %q does not name the user", err)
		}
	}
}

func TestDescribeIsFaithfulAndVaried(t *testing.T) {
	prefs := []Pref{
		{Animal, "bunny", 1.3},
		{Place, "zoo", 0.9},
		{Mood, "angry", -0.6},
		{Length, "long", 1.0},
	}
	layouts := map[string]bool{}
	for seed := uint64(0); seed < 40; seed++ {
		d := Describe(prefs, seed)
		low := strings.ToLower(d)
		for _, w := range []string{"bunn", "zoo", "angry", "long", "16 words"} {
			if !strings.Contains(low, w) {
				t.Errorf("seed %d: %q does not mention %q", seed, d, w)
			}
		}
		// The dislike comes after the likes, introduced as one.
		if i, j := strings.Index(low, "zoo"), strings.Index(low, "angry"); i > j {
			t.Errorf("seed %d: %q names the dislike before a like", seed, d)
		}
		if !strings.Contains(d, "but ") && !strings.Contains(d, "Dislikes:") {
			t.Errorf("seed %d: %q does not mark the dislike", seed, d)
		}
		if strings.Contains(d, "a angry") || strings.Contains(d, "a apple") {
			t.Errorf("seed %d: %q: wrong article", seed, d)
		}
		layouts[strings.SplitN(d, " ", 3)[0]+" "+strings.SplitN(d, " ", 3)[1]] = true
	}
	if len(layouts) < 4 {
		t.Errorf("descriptions start in only %d ways (%v); want several phrasings", len(layouts), layouts)
	}
	// Strength words follow the weight bands.
	strong := Describe([]Pref{{Animal, "cat", 1.5}, {Object, "ball", -1.5}}, 3)
	weak := Describe([]Pref{{Animal, "cat", 0.5}, {Object, "ball", -0.5}}, 3)
	if strong == weak {
		t.Errorf("strong and weak preferences are described alike: %q", strong)
	}
	if got, want := Describe([]Pref{{Animal, "cat", 1}}, 7), Describe([]Pref{{Animal, "cat", 1}}, 7); got != want {
		t.Errorf("Describe is not deterministic: %q vs %q", got, want)
	}
}

func TestDescribeCanonical(t *testing.T) {
	tests := []struct {
		prefs []Pref
		want  string
	}{
		{[]Pref{{Animal, "bunny", 1.3}, {Place, "zoo", 0.9}, {Mood, "angry", -0.6}, {Length, "long", 1.0}},
			"Loves bunnies. Likes the zoo. Mildly dislikes angry stories. Long stories."},
		// within a band, stronger first; bands from strong to weak; dislikes after likes
		{[]Pref{{Name, "Max", 0.5}, {Object, "ball", -1.5}, {Animal, "cat", 1.2}, {Name, "Amy", 1.6}, {Length, "short", 0.4}},
			"Loves Amy and cats. Mildly likes Max. Hates balls. Shorter stories."},
		{[]Pref{{Animal, "cat", 1.2}, {Place, "park", 1.3}, {Object, "ball", 1.4}, {Length, "short", 1.5}},
			"Loves balls, the park and cats. Short stories only."},
		{[]Pref{{Mood, "sad", -0.9}}, "Dislikes sad stories."},
	}
	for _, tc := range tests {
		if got := DescribeCanonical(tc.prefs); got != tc.want {
			t.Errorf("DescribeCanonical(%v) =\n  %q, want\n  %q", tc.prefs, got, tc.want)
		}
		if got := DescribeAs(Canonical, tc.prefs, 9); got != tc.want {
			t.Errorf("DescribeAs(Canonical) = %q, want %q", got, tc.want)
		}
	}
	// Every value named in the canonical form is one the reward counts.
	prefs := []Pref{{Animal, "mouse", 1}, {Object, "candy", -1}, {Mood, "happy", 0.5}, {Place, "beach", 0.9}}
	d := DescribeCanonical(prefs)
	for _, p := range prefs {
		v, _ := lookup(p.Category, p.Value)
		if Mentions(v, d) == 0 {
			t.Errorf("%q does not mention %s in a form the reward counts", d, p.Value)
		}
	}
	if got, want := DescribeAs("", prefs, 4), Describe(prefs, 4); got != want {
		t.Errorf("DescribeAs(\"\") = %q, want the varied %q", got, want)
	}
}

func TestPersonaPrefs(t *testing.T) {
	p := Persona{Name: "Tom", Object: "ball", Length: "short"}
	got := p.Prefs()
	want := []Pref{{Name, "Tom", 1}, {Object, "ball", 1}, {Length, "short", 1}}
	if len(got) != len(want) {
		t.Fatalf("Prefs() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Prefs()[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	pr := Profile{ID: "persona", Prefs: got}
	if err := pr.Check(); err != nil {
		t.Errorf("persona profile invalid: %v", err)
	}
}
