package interop

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"fspo/dataset"
	"fspo/episode"
)

// ExportOptions chooses the episodes to export.
type ExportOptions struct {
	// Shots is N, the examples in each prompt (the paper uses 4 or 8).
	Shots int
	// Passes over each user's records (episode.TrainPasses(N) for training,
	// episode.EvalPasses for evaluation).
	Passes  int
	Seed    int64
	Variant episode.Variant
	Layout  episode.Layout
	// Users, when non-nil, limits the export to these users (e.g. a
	// manifest's train users).
	Users map[string]bool
}

// trlRow is one line of TRL's standard (non-conversational) preference
// format: the shared prompt and the two completions.
type trlRow struct {
	Prompt   string `json:"prompt"`
	Chosen   string `json:"chosen"`
	Rejected string `json:"rejected"`
}

// ExportTRL writes the few-shot episodes of the records in path (the
// project's preferences.jsonl) to w as TRL-style JSONL, one
// {"prompt", "chosen", "rejected"} object per episode: prompt is the
// rendered few-shot context and question, chosen and rejected the two
// completions (episode.Render). Users are read one at a time through the
// file's per-user index, so memory holds one user's records.
//
// TRL's DPOTrainer with loss_type="ipo" length-normalises: it averages the
// completion's token log-probabilities before forming the margin, while the
// paper's IPO (METHOD.md §3; Azar et al. 2023, arXiv 2310.12036, eq. 17)
// sums them. With L̄ the mean completion length, β_TRL ≈ β_paper·L̄ gives the
// same optimum (derivation in interop/README.md).
func ExportTRL(w io.Writer, path string, opt ExportOptions) (int, error) {
	if opt.Shots < 0 || opt.Passes <= 0 {
		return 0, fmt.Errorf("export: shots %d must be >= 0 and passes %d > 0", opt.Shots, opt.Passes)
	}
	if _, err := episode.ParseVariant(string(opt.Variant)); err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	ix, err := dataset.Index(path)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	var others *episode.Others
	if opt.Variant == episode.COT {
		descs := map[string]string{}
		for _, u := range ix.Users() {
			recs, err := ix.Records(u)
			if err != nil {
				return 0, fmt.Errorf("export: %w", err)
			}
			for _, d := range episode.Descriptions(map[string][]dataset.Record{u: recs}) {
				descs[u] = d
			}
		}
		others = episode.NewOthers(descs)
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	for _, u := range ix.Users() {
		if opt.Users != nil && !opt.Users[u] {
			continue
		}
		recs, err := ix.Records(u)
		if err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
		for _, ep := range episode.Build(map[string][]dataset.Record{u: recs}, opt.Shots, opt.Passes, opt.Seed) {
			var ropts []episode.Option
			if others != nil {
				ropts = others.Option(ep, opt.Seed)
			}
			t, err := episode.Render(opt.Variant, opt.Layout, ep, ropts...)
			if err != nil {
				return n, fmt.Errorf("export %s: %w", path, err)
			}
			if err := enc.Encode(trlRow{Prompt: t.Prompt, Chosen: t.Chosen, Rejected: t.Rejected}); err != nil {
				return n, fmt.Errorf("export: %w", err)
			}
			n++
		}
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("export: %w", err)
	}
	return n, nil
}

// ExportFile writes ExportTRL's output to the file out.
func ExportFile(out, path string, opt ExportOptions) (int, error) {
	f, err := os.Create(out)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	n, err := ExportTRL(f, path, opt)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("export: %w", cerr)
	}
	return n, err
}
