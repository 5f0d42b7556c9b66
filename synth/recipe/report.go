package recipe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"fspo/llm"
)

// maxMatrixUsers bounds the users of the disagreement matrix (their labels
// are the only per-record data a run keeps in memory).
const maxMatrixUsers = 32

// Report describes one run (or one merged set of parts).
type Report struct {
	Recipe     string `json:"recipe"`
	RecipeHash string `json:"recipe_hash"`
	Seed       int64  `json:"seed"`
	Shard      string `json:"shard"`
	Questions  int    `json:"questions"`
	// Users labelled; Records kept in all; Written by this invocation
	// (fewer when resuming).
	Users   int `json:"users"`
	Records int `json:"records"`
	Written int `json:"written"`
	// EntropyBefore/After are the mean per-user label entropies (nats)
	// before and after persona refinement; the paper reports 0.64 → 0.13.
	EntropyBefore float64      `json:"entropy_before"`
	EntropyAfter  float64      `json:"entropy_after"`
	Inconsistent  int          `json:"inconsistent"`
	Undecided     int          `json:"undecided"`
	Similarity    Similarity   `json:"similarity"`
	Disagreement  *Matrix      `json:"disagreement,omitempty"`
	PerUser       []UserStat   `json:"per_user"`
	Calls         Calls        `json:"calls"`
	Parts         []PartReport `json:"parts,omitempty"`
}

// PartReport names one merged part.
type PartReport struct {
	Dir     string `json:"dir"`
	Shard   string `json:"shard"`
	Records int    `json:"records"`
}

// Similarity is the mean pairwise similarity of the candidate responses to
// one question, averaged over questions (the paper reports 0.96 for one
// model at temperature 0.3 and 0.71 for an ensemble with views).
type Similarity struct {
	// NGram is the cosine similarity of word 1- and 2-gram count vectors.
	NGram     float64 `json:"ngram"`
	Questions int     `json:"questions"`
	// Embedding is the cosine similarity of /v1/embeddings vectors over
	// EmbeddedQuestions questions; EmbeddingNote says why it is missing.
	Embedding         *float64 `json:"embedding,omitempty"`
	EmbeddedQuestions int      `json:"embedded_questions"`
	EmbeddingNote     string   `json:"embedding_note,omitempty"`
}

// Matrix is the disagreement between users: Rate[a][b] is the fraction of
// the pairs both labelled on which they chose differently, Common[a][b] the
// number of such pairs (Rate is -1 when there are none).
type Matrix struct {
	Users  []string    `json:"users"`
	Rate   [][]float64 `json:"rate"`
	Common [][]int     `json:"common"`
}

func (r *Report) summarise() {
	r.EntropyBefore, r.EntropyAfter, r.Inconsistent, r.Undecided = 0, 0, 0, 0
	for _, u := range r.PerUser {
		r.EntropyBefore += u.EntropyBefore
		r.EntropyAfter += u.EntropyAfter
		r.Inconsistent += u.Inconsistent
		r.Undecided += u.Undecided
	}
	if n := float64(len(r.PerUser)); n > 0 {
		r.EntropyBefore /= n
		r.EntropyAfter /= n
	}
}

type matrixBuilder struct {
	max    int
	users  []string
	labels []map[string]int8
}

func newMatrixBuilder(max int) *matrixBuilder { return &matrixBuilder{max: max} }

func (m *matrixBuilder) add(user string, labels map[string]int8) {
	if len(m.users) < m.max {
		m.users = append(m.users, user)
		m.labels = append(m.labels, labels)
	}
}

func (m *matrixBuilder) build() *Matrix {
	if len(m.users) == 0 {
		return nil
	}
	n := len(m.users)
	out := &Matrix{Users: m.users, Rate: make([][]float64, n), Common: make([][]int, n)}
	for a := 0; a < n; a++ {
		out.Rate[a], out.Common[a] = make([]float64, n), make([]int, n)
		for b := 0; b < n; b++ {
			common, differ := 0, 0
			for k, va := range m.labels[a] {
				if vb, ok := m.labels[b][k]; ok {
					common++
					if va != vb {
						differ++
					}
				}
			}
			out.Common[a][b] = common
			out.Rate[a][b] = -1
			if common > 0 {
				out.Rate[a][b] = float64(differ) / float64(common)
			}
		}
	}
	return out
}

// similarity fills rep.Similarity from this run's candidates.
func (p *pipeline) similarity(ctx context.Context, rep *Report) error {
	var sum float64
	var embedQs [][]string
	for _, q := range p.qs {
		cs := p.cands[q.ID]
		var texts []string
		for _, c := range cs {
			if c != nil {
				texts = append(texts, c.Text)
			}
		}
		if len(texts) < 2 {
			continue
		}
		sum += meanPairwise(len(texts), func(a, b int) float64 { return ngramCosine(texts[a], texts[b]) })
		rep.Similarity.Questions++
		if p.cfg.EmbedQuestions > 0 && len(embedQs) < p.cfg.EmbedQuestions {
			embedQs = append(embedQs, texts)
		}
	}
	if rep.Similarity.Questions > 0 {
		rep.Similarity.NGram = sum / float64(rep.Similarity.Questions)
	}
	if len(embedQs) == 0 {
		rep.Similarity.EmbeddingNote = "not computed"
		return nil
	}
	var esum float64
	for i, texts := range embedQs {
		vecs, err := p.cfg.Client.Embed(ctx, texts)
		if errors.Is(err, llm.ErrNoEmbeddings) {
			rep.Similarity.EmbeddingNote = "the endpoint has no embeddings"
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p.acct.fail("embed", fmt.Sprintf("question %d", i), llm.FailureKind(err), err)
			rep.Similarity.EmbeddingNote = "an embeddings call failed: " + err.Error()
			return nil
		}
		if len(vecs) != len(texts) {
			p.acct.fail("embed", fmt.Sprintf("question %d", i), "invalid_answer", fmt.Errorf("%d vectors for %d texts", len(vecs), len(texts)))
			rep.Similarity.EmbeddingNote = "the embeddings answer had the wrong number of vectors"
			return nil
		}
		esum += meanPairwise(len(vecs), func(a, b int) float64 { return cosine32(vecs[a], vecs[b]) })
	}
	v := esum / float64(len(embedQs))
	rep.Similarity.Embedding, rep.Similarity.EmbeddedQuestions = &v, len(embedQs)
	return nil
}

func meanPairwise(n int, sim func(a, b int) float64) float64 {
	sum, k := 0.0, 0
	for a := 0; a < n; a++ {
		for b := a + 1; b < n; b++ {
			sum += sim(a, b)
			k++
		}
	}
	return sum / float64(k)
}

// ngramCosine is the cosine similarity of the word 1- and 2-gram count
// vectors of two texts (lowercased, split on non-letters and non-digits).
func ngramCosine(a, b string) float64 {
	va, vb := ngrams(a), ngrams(b)
	var dot, na, nb float64
	for k, x := range va {
		na += x * x
		dot += x * vb[k]
	}
	for _, y := range vb {
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

func ngrams(s string) map[string]float64 {
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127)
	})
	m := map[string]float64{}
	for i, w := range words {
		m[w]++
		if i > 0 {
			m[words[i-1]+" "+w]++
		}
	}
	return m
}

func cosine32(a, b []float32) float64 {
	if len(a) != len(b) {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// write saves report.json, report.md and, with a matrix, disagreement.png.
func (r *Report) write(dir string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("synth report: %w", err)
	}
	if err := os.WriteFile(partPath(dir, "report.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("synth report: %w", err)
	}
	if err := os.WriteFile(partPath(dir, "report.md"), []byte(r.markdown()), 0o644); err != nil {
		return fmt.Errorf("synth report: %w", err)
	}
	if r.Disagreement != nil {
		if err := r.Disagreement.png(partPath(dir, "disagreement.png")); err != nil {
			return fmt.Errorf("synth report: %w", err)
		}
	}
	return nil
}

func (r *Report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Synthetic preferences: %s (seed %d, shard %s)\n\n", r.Recipe, r.Seed, r.Shard)
	fmt.Fprintf(&b, "| measure | value |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| users | %d |\n| questions | %d |\n| records | %d (written now: %d) |\n", r.Users, r.Questions, r.Records, r.Written)
	fmt.Fprintf(&b, "| pairs dropped as inconsistent (orders disagree) | %d |\n| pairs still undecided | %d |\n", r.Inconsistent, r.Undecided)
	fmt.Fprintf(&b, "| label entropy before → after refinement (nats) | %.3f → %.3f |\n", r.EntropyBefore, r.EntropyAfter)
	fmt.Fprintf(&b, "| response similarity, n-gram cosine (%d questions) | %.3f |\n", r.Similarity.Questions, r.Similarity.NGram)
	if r.Similarity.Embedding != nil {
		fmt.Fprintf(&b, "| response similarity, embeddings cosine (%d questions) | %.3f |\n", r.Similarity.EmbeddedQuestions, *r.Similarity.Embedding)
	} else {
		fmt.Fprintf(&b, "| response similarity, embeddings | %s |\n", r.Similarity.EmbeddingNote)
	}
	c := r.Calls
	fmt.Fprintf(&b, "| calls (cached) | %d (%d) |\n| tokens in / out | %d / %d |\n| cost | %.4f |\n", c.Calls, c.Cached, c.PromptTokens, c.CompletionTokens, c.Cost)
	fmt.Fprintf(&b, "| **calls that finally failed** | **%d** |\n| items skipped for a failed call | %d |\n\n", c.FailedCalls, len(c.Skipped))
	stages := slices.Sorted(maps.Keys(c.Stages))
	fmt.Fprintf(&b, "## Calls by stage\n\n| stage | calls | cached | failed | tokens in | tokens out | cost |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range stages {
		st := c.Stages[s]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %.4f |\n", s, st.Calls, st.Cached, st.Failed, st.PromptTokens, st.CompletionTokens, st.Cost)
	}
	if len(c.Failures) > 0 {
		fmt.Fprintf(&b, "\n## Failed calls\n\n| stage | item | kind | error |\n| --- | --- | --- | --- |\n")
		for i, f := range c.Failures {
			if i == 50 {
				fmt.Fprintf(&b, "| … | %d more in report.json | | |\n", len(c.Failures)-50)
				break
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", f.Stage, f.Item, f.Kind, strings.ReplaceAll(f.Error, "|", "\\|"))
		}
	}
	fmt.Fprintf(&b, "\n## Users\n\n| user | pairs | kept | inconsistent | undecided | failed | entropy before | after | clauses |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, u := range r.PerUser {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %.3f | %.3f | %d |\n", u.User, u.Pairs, u.Kept, u.Inconsistent, u.Undecided, u.Failed, u.EntropyBefore, u.EntropyAfter, len(u.Clauses))
	}
	if m := r.Disagreement; m != nil {
		fmt.Fprintf(&b, "\n## Disagreement between users\n\nShare of commonly labelled pairs labelled differently (− when none); disagreement.png plots it.\n\n|   |")
		for k := range m.Users {
			fmt.Fprintf(&b, " %d |", k)
		}
		b.WriteString("\n| --- |" + strings.Repeat(" --- |", len(m.Users)) + "\n")
		for a, u := range m.Users {
			fmt.Fprintf(&b, "| %d %s |", a, u)
			for _, v := range m.Rate[a] {
				if v < 0 {
					b.WriteString(" − |")
				} else {
					fmt.Fprintf(&b, " %.2f |", v)
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// grid adapts a Matrix to plotter.GridXYZ (row 0 drawn at the top).
type grid struct{ m *Matrix }

func (g grid) Dims() (int, int) { return len(g.m.Users), len(g.m.Users) }
func (g grid) Z(c, r int) float64 {
	v := g.m.Rate[len(g.m.Users)-1-r][c]
	if v < 0 {
		return math.NaN()
	}
	return v
}
func (g grid) X(c int) float64 { return float64(c) }
func (g grid) Y(r int) float64 { return float64(r) }

func (m *Matrix) png(path string) error {
	pl := plot.New()
	n := len(m.Users)
	pl.Title.Text = "disagreement between users: blue 0 → red 1 (grey: no shared pairs)"
	pl.X.Label.Text = "user index"
	pl.Y.Label.Text = "user index"
	step := max(1, n/16)
	pl.X.Tick.Marker = plot.TickerFunc(func(_, _ float64) []plot.Tick {
		var ts []plot.Tick
		for c := 0; c < n; c += step {
			ts = append(ts, plot.Tick{Value: float64(c), Label: strconv.Itoa(c)})
		}
		return ts
	})
	pl.Y.Tick.Marker = plot.TickerFunc(func(_, _ float64) []plot.Tick {
		var ts []plot.Tick
		for a := 0; a < n; a += step {
			ts = append(ts, plot.Tick{Value: float64(n - 1 - a), Label: strconv.Itoa(a)}) // row a is drawn at y = n-1-a
		}
		return ts
	})
	cm := moreland.SmoothBlueRed()
	cm.SetMin(0)
	cm.SetMax(1)
	h := plotter.NewHeatMap(grid{m}, cm.Palette(64))
	h.Min, h.Max = 0, 1
	h.NaN = color.Gray{Y: 200}
	pl.Add(h)
	side := vg.Length(4+0.15*float64(len(m.Users))) * vg.Inch
	if err := pl.Save(side, side, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}
