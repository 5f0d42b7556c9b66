package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"fspo/atomicfile"
	"fspo/fileio"
)

// Output file names inside the output folder.
const (
	ReportJSON   = "report.json"
	ReportMD     = "report.md"
	SamplesJSONL = "samples.jsonl"
	WinratesPNG  = "winrates.png"
)

// WriteOutputs writes report.json, report.md, samples.jsonl and
// winrates.png into dir, each atomically.
func WriteOutputs(dir string, r *Report, samples []Sample) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	var sb bytes.Buffer
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	for _, s := range samples {
		if err := enc.Encode(s); err != nil {
			return fmt.Errorf("eval: sample of user %s, method %s: %w", s.User, s.Method, err)
		}
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("eval: report.json: %w", err)
	}
	png, err := plotWinrates(r)
	if err != nil {
		return fmt.Errorf("eval: %s: %w", WinratesPNG, err)
	}
	files := map[string][]byte{SamplesJSONL: sb.Bytes(), ReportJSON: append(js, '\n'), ReportMD: []byte(r.Markdown()), WinratesPNG: png}
	if r.Elicitation != nil {
		if files[ElicitationPNG], err = plotElicitation(r.Elicitation); err != nil {
			return fmt.Errorf("eval: %s: %w", ElicitationPNG, err)
		}
	}
	for name, b := range files {
		if err := atomicfile.WriteBytes(filepath.Join(dir, name), b); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
	}
	return nil
}

// ReadSamples reads samples.jsonl; a bad line is reported with its number.
func ReadSamples(path string) ([]Sample, error) {
	var out []Sample
	err := fileio.Lines(path, func(_ int, text []byte) error {
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		var s Sample
		if err := dec.Decode(&s); err != nil {
			return err
		}
		if s.User == "" || s.Method == "" {
			return errors.New("user and method are required")
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read samples: %w", err)
	}
	return out, nil
}

// Markdown renders the report as report.md: one row per method with its
// win rate against base (95% interval), the per-kind columns, the
// implicit-reward accuracy and the mean response length.
func (r *Report) Markdown() string {
	var b strings.Builder
	kinds := sortedKinds(r.ByKind)
	fmt.Fprintf(&b, "# Evaluation: win rate vs base (%%, 95%% bootstrap CI over users)\n\n")
	fmt.Fprintf(&b, "Judge: %s, both orders (inconsistent pairs dropped); win 1, tie 0.5. %d held-out queries per method", r.Config.Judge, r.Queries)
	var us []string
	for _, k := range kinds {
		us = append(us, fmt.Sprintf("%d %s", r.Users[k], k))
	}
	fmt.Fprintf(&b, "; users: %s. %d-shot %s prompts, seed %d.\n\n", strings.Join(us, ", "), r.Config.Shots, r.Config.Layout, r.Config.Seed)
	head := []string{"method", "all users"}
	for _, k := range kinds {
		head = append(head, k)
	}
	head = append(head, "reward accuracy", "mean tokens")
	fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" --- |", len(head)))
	for _, m := range r.shownMethods() {
		if why, ok := r.Absent[m]; ok {
			fmt.Fprintf(&b, "| %s | absent: %s |%s\n", m, why, strings.Repeat(" |", len(head)-2))
			continue
		}
		cell, ok := r.Overall[m]
		row := []string{m, fmtCell(cell, ok)}
		for _, k := range kinds {
			c, ok := r.ByKind[k][m]
			row = append(row, fmtCell(c, ok))
		}
		if a, ok := r.Accuracy[m]; ok {
			row = append(row, fmtCell(a.Summary, true))
		} else {
			row = append(row, "—")
		}
		row = append(row, fmt.Sprintf("%.1f", r.MeanTokens[m]))
		fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
	}
	if len(r.Accuracy) > 0 {
		fmt.Fprintf(&b, "\nImplicit-reward accuracy: share of held-out pairs with β·log πθ/πref(chosen) > β·log πθ/πref(rejected).\n\n")
		for _, m := range PreferenceMethods {
			if a, ok := r.Accuracy[m]; ok {
				fmt.Fprintf(&b, "- %s: β %g (%s), reference %s (%s), mean margin %.4f, %d pairs", m, a.Beta, a.BetaSource, a.Reference, a.RefSource, a.MeanMargin, a.N)
				if a.TooLong > 0 {
					fmt.Fprintf(&b, " (%d longer than the context left out)", a.TooLong)
				}
				b.WriteString("\n")
			}
		}
	}
	if a := r.BestOfAgreement; a != nil {
		fmt.Fprintf(&b, "\n%s: of %d pairs of one query's FSPO samples whose exact rewards differ, the implicit reward orders %.1f%% as the exact reward does.\n", FSPOBest, a.Pairs, 100*a.Fraction)
	}
	var notes []string
	for _, m := range r.shownMethods() {
		if n := r.Dropped[m]; n > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d pairs dropped (orders disagreed)", m, n))
		}
		if n := r.ContextLimited[m]; n > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d prompts left less room in the context than the token cap", m, n))
		}
		if n := r.ParseErrors[m]; n > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d outputs without a response part (counted as losses)", m, n))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, "\nNotes: %s.\n", strings.Join(notes, "; "))
	}
	if r.Elicitation != nil {
		b.WriteString(r.Elicitation.markdown())
	}
	fmt.Fprintf(&b, "\n%s. Details in report.json; every judged pair in samples.jsonl.\n", r.Config.BaseNote)
	return b.String()
}

// shownMethods are the rows of the report: every method, then FSPOBest and
// FSPOCOTGiven when they were evaluated.
func (r *Report) shownMethods() []string {
	shown := slices.Clone(Methods)
	for _, m := range []string{FSPOBest, FSPOCOTGiven} {
		if slices.Contains(r.Methods, m) {
			shown = append(shown, m)
		}
	}
	return shown
}
