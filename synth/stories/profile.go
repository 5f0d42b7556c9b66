package stories

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// Pref is one weighted attribute preference. For a word category, Value is a
// vocabulary word and Weight is positive for a like and negative for a
// dislike. For Length, Value is "short" or "long" and Weight is positive.
type Pref struct {
	Category Category `json:"category"`
	Value    string   `json:"value"`
	Weight   float64  `json:"weight"`
}

// Reward constants. A value's mentions count up to MentionCap (so repeating
// a word has diminishing returns and the reward is graded: a like or dislike
// of weight w adds ±w/2 for one mention and ±w for two or more). A length
// preference costs Weight·min(1, words outside the band / LengthScale).
const (
	MentionCap  = 2
	ShortMax    = 10 // words: at most this is "short"
	LongMin     = 16 // words: at least this is "long"
	LengthScale = 5.0
)

// Profile is a synthetic user: hidden weighted preferences, the text
// description given to judges and to the COT / oracle templates, and the
// user's place in the split.
type Profile struct {
	ID          string `json:"id"`
	Kind        Kind   `json:"kind"`
	Prefs       []Pref `json:"prefs"`
	Description string `json:"description"`
}

// Kind says how a user was drawn and which split it belongs to.
type Kind string

// The user kinds. Train users are the only ones seen in training; HeldOut
// users are drawn like them; Interpolated users like only values liked in
// training but no two of them together by any training user; Unseen users
// like a value that no training user likes.
const (
	Train        Kind = "train"
	HeldOut      Kind = "heldout"
	Interpolated Kind = "interpolated"
	Unseen       Kind = "unseen"
)

// Words splits text into lowercase words: maximal runs of ASCII letters
// ("Tom's" is "tom", "s"). Mentions are counted on these words, so matching
// is by whole word and case-insensitive.
func Words(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return r < 'a' || r > 'z' })
}

// WordCount is the length of a story in words, as the length preference
// measures it: whitespace-separated fields.
func WordCount(text string) int { return len(strings.Fields(text)) }

// Mentions counts the whole-word mentions of v in text (any of its forms).
func Mentions(v Value, text string) int {
	n := 0
	for _, w := range Words(text) {
		for _, f := range v.Forms {
			if w == f {
				n++
				break
			}
		}
	}
	return n
}

// Check reports the first invalid preference: an unknown category or
// value, a zero or non-finite weight, a negative length weight, or two
// preferences on the same value.
func (p *Profile) Check() error {
	if len(p.Prefs) == 0 {
		return fmt.Errorf("user %s: no preferences", p.ID)
	}
	seen := map[string]bool{}
	for i, pr := range p.Prefs {
		if math.IsNaN(pr.Weight) || math.IsInf(pr.Weight, 0) || pr.Weight == 0 {
			return fmt.Errorf("user %s: prefs[%d]: weight %v must be finite and non-zero", p.ID, i, pr.Weight)
		}
		key := string(pr.Category) + ":" + strings.ToLower(pr.Value)
		if seen[key] {
			return fmt.Errorf("user %s: prefs[%d]: %s %q listed twice", p.ID, i, pr.Category, pr.Value)
		}
		seen[key] = true
		if pr.Category == Length {
			if pr.Value != "short" && pr.Value != "long" {
				return fmt.Errorf("user %s: prefs[%d]: length %q must be \"short\" or \"long\"", p.ID, i, pr.Value)
			}
			if pr.Weight < 0 {
				return fmt.Errorf("user %s: prefs[%d]: length weight %v must be positive", p.ID, i, pr.Weight)
			}
			continue
		}
		if _, ok := lookup(pr.Category, pr.Value); !ok {
			return fmt.Errorf("user %s: prefs[%d]: %q is not a known %s", p.ID, i, pr.Value, pr.Category)
		}
	}
	return nil
}

// Reward is the user's exact reward for a story: the sum over preferences
// of Weight·min(mentions, MentionCap)/MentionCap for word preferences, minus
// Weight·min(1, distance outside the length band / LengthScale) for a length
// preference. Unknown values (which Check rejects) contribute nothing.
func (p *Profile) Reward(text string) float64 {
	words := Words(text)
	var r float64
	for _, pr := range p.Prefs {
		if pr.Category == Length {
			r -= pr.Weight * lengthPenalty(pr.Value, WordCount(text))
			continue
		}
		v, ok := lookup(pr.Category, pr.Value)
		if !ok {
			continue
		}
		n := 0
		for _, w := range words {
			for _, f := range v.Forms {
				if w == f {
					n++
					break
				}
			}
		}
		r += pr.Weight * float64(min(n, MentionCap)) / MentionCap
	}
	return r
}

// lengthPenalty is in [0, 1]: how far n words fall outside the band.
func lengthPenalty(band string, n int) float64 {
	var out float64
	switch band {
	case "short":
		out = float64(n - ShortMax)
	case "long":
		out = float64(LongMin - n)
	}
	return math.Min(1, math.Max(0, out/LengthScale))
}

// Phrasings of the description: strength words by weight band (|w| ≥ 1.15
// strong, ≥ 0.8 medium, else weak), for likes and dislikes.
var (
	likeVerbs = [3][]string{
		{"loves", "adores", "is crazy about"},
		{"likes", "enjoys", "is fond of"},
		{"mildly likes", "is a little fond of", "somewhat enjoys"},
	}
	dislikeVerbs = [3][]string{
		{"hates", "can't stand", "strongly dislikes"},
		{"dislikes", "does not like", "is not fond of"},
		{"slightly dislikes", "would rather avoid", "is a bit tired of"},
	}
	listMarks   = [3]string{" (a lot)", "", " (a little)"}
	subjects    = []string{"This reader", "This child", "This listener", "This user"}
	lengthLines = map[string][3][]string{
		"short": {
			{"They insist on short stories (%d words or fewer).", "Stories must be short: %d words at most."},
			{"They prefer short stories (%d words or fewer).", "Short stories (up to %d words) suit them."},
			{"They slightly prefer short stories (%d words or fewer).", "A story of %d words or fewer is a bit better."},
		},
		"long": {
			{"They insist on long stories (%d words or more).", "Stories must be long: %d words at least."},
			{"They prefer long stories (%d words or more).", "Long stories (%d words or more) suit them."},
			{"They slightly prefer long stories (%d words or more).", "A story of %d words or more is a bit better."},
		},
	}
)

func band(w float64) int {
	switch a := math.Abs(w); {
	case a >= 1.15:
		return 0
	case a >= 0.8:
		return 1
	}
	return 2
}

// object is how a value is named in a description.
func object(pr Pref, rng *rand.Rand) string {
	v, _ := lookup(pr.Category, pr.Value)
	plural := v.Word
	if len(v.Forms) > 1 {
		plural = v.Forms[1]
	}
	a := "a "
	if strings.ContainsRune("aeiou", rune(v.Word[0])) {
		a = "an "
	}
	var opts []string
	switch pr.Category {
	case Name:
		opts = []string{"characters named " + v.Word, "someone called " + v.Word, "the name " + v.Word}
	case Animal:
		opts = []string{plural, "stories about " + plural, a + v.Word}
	case Place:
		opts = []string{"the " + v.Word, "stories at the " + v.Word, v.Word + " scenes"}
	case Object:
		opts = []string{plural, "stories with " + a + v.Word, a + v.Word}
	case Mood:
		opts = []string{v.Word + " stories", a + v.Word + " mood", v.Word + " characters"}
	}
	return opts[rng.IntN(len(opts))]
}

// Description phrasings (Options.Descriptions).
const (
	// Varied descriptions pick among several layouts, verbs and namings.
	Varied = "varied"
	// Canonical descriptions have one fixed form, short in tokens ("Loves
	// Max and cats. Hates trucks. Long stories."): a small model can learn
	// to write it from a few examples, which the COT variant asks of it.
	Canonical = "canonical"
)

// DescribeAs writes the description of prefs in the given phrasing
// (Varied or Canonical; "" is Varied).
func DescribeAs(phrasing string, prefs []Pref, seed uint64) string {
	if phrasing == Canonical {
		return DescribeCanonical(prefs)
	}
	return Describe(prefs, seed)
}

// canonicalVerbs name each strength band: likes, then dislikes.
var canonicalVerbs = [2][3]string{{"Loves", "Likes", "Mildly likes"}, {"Hates", "Dislikes", "Mildly dislikes"}}

// canonicalLength is the length sentence by preferred length and band.
var canonicalLength = map[string][3]string{
	"short": {"Short stories only.", "Short stories.", "Shorter stories."},
	"long":  {"Long stories only.", "Long stories.", "Longer stories."},
}

// canonicalObject is a value's one name in canonical descriptions: names
// as they are, animals and objects in the plural, places with "the",
// moods as "MOOD stories".
func canonicalObject(pr Pref) string {
	v, _ := lookup(pr.Category, pr.Value)
	switch pr.Category {
	case Animal, Object:
		if len(v.Forms) > 1 {
			return v.Forms[1]
		}
	case Place:
		return "the " + v.Word
	case Mood:
		return v.Word + " stories"
	}
	return v.Word
}

// DescribeCanonical writes prefs in the canonical phrasing: one sentence
// per sign and strength band, strongest likes first, then the dislikes,
// then the length. It is faithful to every preference's value, sign and
// band, like Describe, and deterministic.
func DescribeCanonical(prefs []Pref) string {
	var groups [2][3][]string
	var length *Pref
	sorted := append([]Pref(nil), prefs...)
	sort.SliceStable(sorted, func(i, j int) bool { return math.Abs(sorted[i].Weight) > math.Abs(sorted[j].Weight) })
	for i := range sorted {
		p := &sorted[i]
		if p.Category == Length {
			length = p
			continue
		}
		sign := 0
		if p.Weight < 0 {
			sign = 1
		}
		groups[sign][band(p.Weight)] = append(groups[sign][band(p.Weight)], canonicalObject(*p))
	}
	var sentences []string
	for sign := range groups {
		for b, objs := range groups[sign] {
			if len(objs) == 0 {
				continue
			}
			list := objs[0]
			if n := len(objs); n > 1 {
				list = strings.Join(objs[:n-1], ", ") + " and " + objs[n-1]
			}
			sentences = append(sentences, canonicalVerbs[sign][b]+" "+list+".")
		}
	}
	if length != nil {
		sentences = append(sentences, canonicalLength[length.Value][band(length.Weight)])
	}
	return strings.Join(sentences, " ")
}

// Describe writes a text description of prefs, faithful to every
// preference (value, sign and strength band), in one of several phrasings
// chosen by seed, so that descriptions are not identically templated.
func Describe(prefs []Pref, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 0xde5c))
	var likes, dislikes []Pref
	var length *Pref
	for i := range prefs {
		switch {
		case prefs[i].Category == Length:
			length = &prefs[i]
		case prefs[i].Weight > 0:
			likes = append(likes, prefs[i])
		default:
			dislikes = append(dislikes, prefs[i])
		}
	}
	sort.SliceStable(likes, func(i, j int) bool { return likes[i].Weight > likes[j].Weight })
	sort.SliceStable(dislikes, func(i, j int) bool { return dislikes[i].Weight < dislikes[j].Weight })
	var b strings.Builder
	if rng.IntN(3) == 0 { // list layout
		writeList(&b, "Likes: ", likes, rng)
		writeList(&b, "Dislikes: ", dislikes, rng)
	} else {
		writeClauses(&b, likes, dislikes, rng)
	}
	if length != nil {
		lines := lengthLines[length.Value][band(length.Weight)]
		n := ShortMax
		if length.Value == "long" {
			n = LongMin
		}
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, lines[rng.IntN(len(lines))], n)
	}
	return b.String()
}

// writeList appends "Label: a, b (strongly)." for a non-empty prefs, after
// a space when b already holds text.
func writeList(b *strings.Builder, label string, prefs []Pref, rng *rand.Rand) {
	if len(prefs) == 0 {
		return
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	b.WriteString(label)
	for i, p := range prefs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(object(p, rng) + listMarks[band(p.Weight)])
	}
	b.WriteString(".")
}

// writeClauses appends one sentence: a subject, then a clause per like and
// per dislike ("…, but …" between the two groups).
func writeClauses(b *strings.Builder, likes, dislikes []Pref, rng *rand.Rand) {
	var clauses []string
	for _, p := range likes {
		vs := likeVerbs[band(p.Weight)]
		clauses = append(clauses, vs[rng.IntN(len(vs))]+" "+object(p, rng))
	}
	nLikes := len(clauses)
	for _, p := range dislikes {
		vs := dislikeVerbs[band(p.Weight)]
		clauses = append(clauses, vs[rng.IntN(len(vs))]+" "+object(p, rng))
	}
	if len(clauses) == 0 {
		return
	}
	b.WriteString(subjects[rng.IntN(len(subjects))] + " ")
	for i, c := range clauses {
		switch {
		case i == 0:
		case i == nLikes && nLikes > 0:
			b.WriteString(", but ")
		case i == len(clauses)-1 || i == nLikes-1:
			b.WriteString(" and ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(c)
	}
	b.WriteString(".")
}
