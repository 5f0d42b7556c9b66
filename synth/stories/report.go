package stories

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"fspo/atomicfile"
)

// Report names inside the data directory.
const (
	ReportJSONName   = "report.json"
	ReportMDName     = "report.md"
	DisagreementJSON = "disagreement.json"
	DisagreementPNG  = "disagreement.png"
)

// Report describes a synthesized data set: sizes, the diversity of the
// candidate pool, label quality per user, and how much users disagree.
type Report struct {
	Domain         string       `json:"domain"`
	Seed           int64        `json:"seed"`
	Users          int          `json:"users"`
	Kinds          map[Kind]int `json:"kinds"`
	Prompts        int          `json:"prompts"`
	HeldOutPrompts int          `json:"held_out_prompts"`
	Candidates     int          `json:"candidates"`
	Records        int          `json:"records"`
	TrainRecords   int          `json:"train_records"`
	TestRecords    int          `json:"test_records"`

	// Distinct1 and Distinct2 are the distinct-n ratios of the candidates'
	// words (unique n-grams / all n-grams over the pool; Li et al. 2016,
	// "A Diversity-Promoting Objective Function for Neural Conversation
	// Models").
	Distinct1 float64 `json:"distinct_1"`
	Distinct2 float64 `json:"distinct_2"`
	// SelfSimilarity is the mean cosine similarity of the word-count
	// vectors of two candidates of the same opening (METHOD.md §5 watches
	// mean pairwise response similarity; the paper uses embeddings).
	SelfSimilarity float64 `json:"self_similarity"`
	ResponseTokens Summary `json:"response_tokens"`
	ResponseWords  Summary `json:"response_words"`
	// EpisodeTokens is the token length of the 4-shot episodes of one
	// evaluation pass, per "layout/variant" (see episodeTokens), to compare
	// with the model's 512 positions.
	EpisodeTokens map[string]Summary `json:"episode_tokens_4shot"`
	// Mentions is the share of candidates mentioning each value ("category:word").
	Mentions map[string]float64 `json:"mentions"`

	// BestVsBase is, per user kind, the mean win rate (ties ½, exact
	// reward) of the best candidate of an opening's pool over the base
	// model's own continuations of it: what picking from the pool could
	// reach against the base. SteeredVsBase is the same for a random
	// steered candidate: what steering without personalization reaches.
	BestVsBase    map[Kind]float64 `json:"best_vs_base"`
	SteeredVsBase map[Kind]float64 `json:"steered_vs_base"`
	// Unfinished counts unsteered candidates with no sentence end in their
	// token limit (cut after a whole word instead).
	Unfinished int `json:"unfinished"`

	PerUser          []UserStats `json:"per_user"`
	MeanLabelEntropy float64     `json:"mean_label_entropy"`
	MeanUndecided    float64     `json:"mean_undecided"`
	ShortUsers       []string    `json:"short_users"`
	// MeanDisagreement and MinDisagreement summarise the off-diagonal
	// entries of the disagreement matrix (disagreement.json); ClosestUsers
	// are the pair with the minimum.
	MeanDisagreement float64   `json:"mean_disagreement"`
	MinDisagreement  float64   `json:"min_disagreement"`
	ClosestUsers     [2]string `json:"closest_users"`

	Elapsed time.Duration `json:"-"` // wall time of the call, not written
}

// Summary is the mean, 95th percentile and maximum of a quantity.
type Summary struct {
	Mean float64 `json:"mean"`
	P95  int     `json:"p95"`
	Min  int     `json:"min"`
	Max  int     `json:"max"`
}

func summarize(xs []int) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := append([]int(nil), xs...)
	sort.Ints(s)
	var sum float64
	for _, x := range s {
		sum += float64(x)
	}
	return Summary{Mean: sum / float64(len(s)), P95: s[(len(s)*95+99)/100-1], Min: s[0], Max: s[len(s)-1]}
}

// distinctN is the number of distinct word n-grams over all texts divided
// by the number of n-grams (0 when there are none).
func distinctN(texts []string, n int) float64 {
	seen := map[string]bool{}
	total := 0
	for _, t := range texts {
		w := Words(t)
		for i := 0; i+n <= len(w); i++ {
			seen[strings.Join(w[i:i+n], " ")] = true
			total++
		}
	}
	if total == 0 {
		return 0
	}
	return float64(len(seen)) / float64(total)
}

// cosine is the cosine similarity of the word-count vectors of a and b.
func cosine(a, b string) float64 {
	ca, cb := map[string]float64{}, map[string]float64{}
	for _, w := range Words(a) {
		ca[w]++
	}
	for _, w := range Words(b) {
		cb[w]++
	}
	var dot, na, nb float64
	for w, x := range ca {
		dot += x * cb[w]
		na += x * x
	}
	for _, y := range cb {
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// selfSimilarity is the mean cosine similarity over all pairs of
// candidates of the same group.
func selfSimilarity(texts []string, groups map[int][]int) float64 {
	var sum float64
	n := 0
	for _, p := range promptKeys(groups) {
		idx := groups[p]
		for x := range idx {
			for y := x + 1; y < len(idx); y++ {
				sum += cosine(texts[idx[x]], texts[idx[y]])
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// DisagreementFile is disagreement.json.
type DisagreementFile struct {
	Users []string `json:"users"`
	Kinds []Kind   `json:"kinds"`
	// Rate[u][v] is the share of commonly decided candidate pairs that
	// users u and v label differently; −1 when they decide none in common.
	Rate [][]float64 `json:"rate"`
}

// offDiagonal returns the mean and minimum of the defined off-diagonal
// entries and the pair holding the minimum.
func offDiagonal(D [][]float64) (mean, minV float64, at [2]int) {
	minV = math.Inf(1)
	n := 0
	for u := range D {
		for v := u + 1; v < len(D); v++ {
			if D[u][v] < 0 {
				continue
			}
			mean += D[u][v]
			n++
			if D[u][v] < minV {
				minV, at = D[u][v], [2]int{u, v}
			}
		}
	}
	if n == 0 {
		return 0, 0, at
	}
	return mean / float64(n), minV, at
}

// heat adapts a disagreement matrix to plotter.GridXYZ: cell (c, r) is
// users c and r (user 0 at the bottom left), undefined entries are NaN.
type heat [][]float64

func (h heat) Dims() (c, r int) { return len(h), len(h) }
func (h heat) X(c int) float64  { return float64(c) }
func (h heat) Y(r int) float64  { return float64(r) }
func (h heat) Z(c, r int) float64 {
	v := h[r][c]
	if v < 0 {
		return math.NaN()
	}
	return v
}

// writePNG draws the disagreement matrix as a heat map (0 = always agree,
// 1 = always disagree).
func writePNG(path string, D [][]float64, users []string) error {
	pl := plot.New()
	pl.Title.Text = fmt.Sprintf("disagreement of %d users (red 0: always agree … white 1: always disagree; grey: no common pair)", len(users))
	pl.X.Label.Text = "user number (train, then heldout, interpolated, unseen)"
	pl.Y.Label.Text = "user number"
	hm := plotter.NewHeatMap(heat(D), palette.Heat(32, 1))
	hm.Min, hm.Max = 0, 1
	hm.NaN = color.Gray{Y: 128}
	pl.Add(hm)
	side := vg.Length(5+0.05*float64(len(users))) * vg.Inch
	wt, err := pl.WriterTo(side, side, "png")
	if err != nil {
		return fmt.Errorf("draw %s: %w", path, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return fmt.Errorf("draw %s: %w", path, err)
	}
	return atomicfile.WriteBytes(path, buf.Bytes())
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return atomicfile.WriteBytes(path, append(data, '\n'))
}

// markdown renders the report for people.
func (r *Report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Stories data set (seed %d)\n\n", r.Seed)
	fmt.Fprintf(&b, "- users: %d (train %d, heldout %d, interpolated %d, unseen %d)\n", r.Users,
		r.Kinds[Train], r.Kinds[HeldOut], r.Kinds[Interpolated], r.Kinds[Unseen])
	fmt.Fprintf(&b, "- openings: %d training, %d held out; candidates: %d\n", r.Prompts, r.HeldOutPrompts, r.Candidates)
	fmt.Fprintf(&b, "- preference records: %d (train users %d, held-out users %d)\n", r.Records, r.TrainRecords, r.TestRecords)
	fmt.Fprintf(&b, "\n## Candidate pool\n\n| distinct-1 | distinct-2 | self-similarity (cosine) |\n| --- | --- | --- |\n| %.3f | %.3f | %.3f |\n",
		r.Distinct1, r.Distinct2, r.SelfSimilarity)
	fmt.Fprintf(&b, "\nResponse length: tokens mean %.1f, p95 %d, range %d–%d; words mean %.1f, range %d–%d.\n",
		r.ResponseTokens.Mean, r.ResponseTokens.P95, r.ResponseTokens.Min, r.ResponseTokens.Max,
		r.ResponseWords.Mean, r.ResponseWords.Min, r.ResponseWords.Max)
	b.WriteString("\n4-shot episodes (one evaluation pass; tokens with BOS and EOS):\n\n| layout/variant | mean | p95 | max |\n| --- | --- | --- | --- |\n")
	for _, k := range []string{"compact/plain", "compact/cot", "paper/plain"} {
		if s, ok := r.EpisodeTokens[k]; ok {
			fmt.Fprintf(&b, "| %s | %.0f | %d | %d |\n", k, s.Mean, s.P95, s.Max)
		}
	}
	keys := slices.Sorted(maps.Keys(r.Mentions))
	b.WriteString("\nShare of candidates mentioning each value:\n\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %.0f%%; ", k, 100*r.Mentions[k])
	}
	if len(r.BestVsBase) > 0 {
		b.WriteString("\n\nWin rate against the base model's own continuations (exact reward, ties ½), mean over users:\n\n| kind | best of pool | random steered |\n| --- | --- | --- |\n")
		for _, k := range []Kind{Train, HeldOut, Interpolated, Unseen} {
			if v, ok := r.BestVsBase[k]; ok {
				fmt.Fprintf(&b, "| %s | %.1f%% | %.1f%% |\n", k, 100*v, 100*r.SteeredVsBase[k])
			}
		}
		fmt.Fprintf(&b, "\nUnsteered candidates without a sentence end in their limit: %d.", r.Unfinished)
	}
	fmt.Fprintf(&b, "\n\n## Labels\n\nMean label entropy %.3f nats; mean undecided share %.3f.\n", r.MeanLabelEntropy, r.MeanUndecided)
	if len(r.ShortUsers) > 0 {
		fmt.Fprintf(&b, "Users with fewer pairs than asked (too few pairs clear the margin): %s.\n", strings.Join(r.ShortUsers, ", "))
	}
	b.WriteString("\n| user | kind | pairs | ties dropped | flipped | label entropy | undecided | mean margin |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range r.PerUser {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %.3f | %.3f | %.2f |\n", s.ID, s.Kind, s.Pairs, s.Ties, s.Flipped, s.LabelEntropy, s.Undecided, s.MeanMargin)
	}
	fmt.Fprintf(&b, "\n## Disagreement between users\n\nShare of candidate pairs both users decide that they label differently (%s, %s):\nmean %.3f, minimum %.3f (%s and %s).\n",
		DisagreementJSON, DisagreementPNG, r.MeanDisagreement, r.MinDisagreement, r.ClosestUsers[0], r.ClosestUsers[1])
	return b.String()
}
