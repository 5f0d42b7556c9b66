package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"fspo/dataset"
	"fspo/episode"
	"fspo/interop"
)

func init() {
	register(&command{name: "import", summary: "import the paper's released preference files (roleplay, ELIX, Reviews; JSONL or Parquet)", run: runImport})
	register(&command{name: "export", summary: "export few-shot episodes as TRL-style prompt/chosen/rejected JSONL", run: runExport})
}

// runImport implements `fspo import --out DIR [flags] FILE`.
func runImport(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "import", "--out DIR [--layout roleplay|pairwise] [--test-frac F] [--seed S] FILE.(jsonl|parquet)")
	out := fs.String("out", "", "data directory to write preferences.jsonl and manifest.json into (appends; records already there are skipped)")
	layout := fs.String("layout", "", "row layout: roleplay (x, yw, yl, level, score_persona) or pairwise (ELIX/Reviews: prompt, response_x, response_y, level_x, level_y, scorer_level, label); default: detected from the first row")
	testFrac := fs.Float64("test-frac", 0.1, "share of the non-interpolated users held out in the manifest (interpolated Reviews users are always held out)")
	seed := fs.Int64("seed", 1, "seed of the train/test split")
	skip := fs.Bool("skip-invalid", false, "count and list rows with empty or identical responses instead of stopping at the first")
	if err := flagError(fs, fs.Parse(args)); err != nil {
		return err
	}
	switch {
	case *out == "":
		return fmt.Errorf("%w: fspo import: --out DIR is required", errUsage)
	case fs.NArg() != 1:
		return fmt.Errorf("%w: fspo import: give one input file after the flags (got %d)", errUsage, fs.NArg())
	case *layout != "" && *layout != string(interop.Roleplay) && *layout != string(interop.Pairwise):
		return fmt.Errorf("%w: fspo import: --layout %q: want roleplay or pairwise", errUsage, *layout)
	}
	if err := dataset.ValidFrac(*testFrac); err != nil {
		return fmt.Errorf("%w: fspo import: --test-frac: %v", errUsage, err)
	}
	st, err := interop.ImportFile(fs.Arg(0), *out, interop.Options{Layout: interop.Layout(*layout), SkipInvalid: *skip}, *testFrac, *seed)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: %s layout, %d rows, %d records (%d already present), %d users (%d interpolated)\n",
		filepath.Join(*out, dataset.FileName), st.Layout, st.Rows, st.Records-st.Duplicates, st.Duplicates, len(st.Users), len(st.Interpolated))
	if st.Skipped > 0 {
		fmt.Fprintf(env.Stdout, "%d invalid rows skipped, e.g.:\n", st.Skipped)
		for _, p := range st.Problems {
			fmt.Fprintln(env.Stdout, "  "+p)
		}
	}
	return nil
}

// runExport implements `fspo export --data DIR --out FILE [flags]`.
func runExport(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "export", "--data DIR|FILE.jsonl --out FILE.jsonl [--shots N] [--variant V] [--layout L] [--split train|test|all]")
	data := fs.String("data", "", "data directory (preferences.jsonl + manifest.json) or a preferences JSONL file")
	out := fs.String("out", "", "TRL-style JSONL to write: one {prompt, chosen, rejected} per episode")
	shots := fs.Int("shots", 8, "examples per prompt (N)")
	passes := fs.Int("passes", 0, "passes over each user's records (0: 2(N+1) for train, 1 for test)")
	variant := fs.String("variant", "plain", "template: plain, cot, preferred-only, zero-shot, oracle")
	layoutName := fs.String("layout", "paper", "text layout: paper or compact")
	split := fs.String("split", "train", "users to export from the manifest: train, test or all (a bare file: all)")
	seed := fs.Int64("seed", 1, "episode shuffling seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" || *out == "" {
		return fmt.Errorf("%w: fspo export: --data and --out are required", errUsage)
	}
	if *shots < 0 || *passes < 0 {
		return fmt.Errorf("%w: fspo export: --shots and --passes must be >= 0", errUsage)
	}
	v, err := episode.ParseVariant(*variant)
	if err != nil {
		return fmt.Errorf("%w: fspo export: --variant: %v", errUsage, err)
	}
	l, err := episode.ParseLayout(*layoutName)
	if err != nil {
		return fmt.Errorf("%w: fspo export: --layout: %v", errUsage, err)
	}
	prefs, users := *data, map[string]bool(nil)
	if st, err := os.Stat(*data); err == nil && st.IsDir() {
		prefs = filepath.Join(*data, dataset.FileName)
		if *split != "all" {
			m, err := dataset.ReadManifest(*data)
			if err != nil {
				return fmt.Errorf("fspo export: %w (or pass --split all)", err)
			}
			var list []string
			switch *split {
			case "train":
				list = m.TrainUsers
			case "test":
				list = m.TestUsers
			default:
				return fmt.Errorf("%w: fspo export: --split %q: want train, test or all", errUsage, *split)
			}
			users = map[string]bool{}
			for _, u := range list {
				users[u] = true
			}
		}
	} else if *split != "all" && *split != "train" {
		return fmt.Errorf("%w: fspo export: --split %s needs a data directory with a manifest", errUsage, *split)
	}
	p := *passes
	if p == 0 {
		p = episode.TrainPasses(*shots)
		if *split == "test" {
			p = episode.EvalPasses
		}
	}
	n, err := interop.ExportFile(*out, prefs, interop.ExportOptions{Shots: *shots, Passes: p, Seed: *seed, Variant: v, Layout: l, Users: users})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: %d episodes (%d shots, %d passes, %s, %s layout). For TRL's loss_type=\"ipo\" use beta ≈ paper beta × mean completion tokens (interop/README.md).\n",
		*out, n, *shots, p, v, l.Name)
	return nil
}
