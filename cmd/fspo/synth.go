package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"fspo/runcard"
	"fspo/synth/stories"
)

func init() {
	register(&command{name: "synth", summary: "synthetic users and their preferences (offline stories domain, or an LLM --recipe; merge)", run: runSynth})
}

// runSynth implements `fspo synth --domain stories --out DIR [flags]`;
// `fspo synth --recipe ...` and `fspo synth merge ...` go to the LLM
// recipe pipeline (synth_recipe.go).
func runSynth(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 && args[0] == "merge" {
		return runSynthMerge(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "onpolicy" {
		return runSynthOnpolicy(ctx, env, args[1:])
	}
	if hasRecipeFlag(args) {
		return runSynthRecipe(ctx, env, args)
	}
	fs := newFlags(env, "synth", "--domain stories --out DIR [--users N] [--seed S] [--model M] [--quick] [flags]\n       fspo synth --recipe NAME ... (LLM recipes; see fspo synth --recipe x -h)\n       fspo synth merge --out DIR PART_DIR...\n       fspo synth onpolicy --data DIR --policy RUN --out DIR (a trained model's own answers, labelled)")
	def := stories.DefaultOptions()
	domain := fs.String("domain", "stories", "synthetic domain: stories (offline, programmatic users); LLM domains use --recipe")
	out := fs.String("out", "", "output directory (rerun the same command to resume an interrupted run)")
	modelFlag := fs.String("model", "", "base model writing the candidates (default stories260K)")
	quick := fs.Bool("quick", false, "a few-second run for smoke tests (12 users, 8+4 openings, 6 candidates each); other flags override it")
	setOptions := storiesOptionFlags(fs, def)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *domain != "stories" {
		return fmt.Errorf("%w: fspo synth: unknown --domain %q; the offline domain is stories, LLM domains run with --recipe NAME", errUsage, *domain)
	}
	if *out == "" {
		return fmt.Errorf("%w: fspo synth: --out DIR is required", errUsage)
	}
	opt := def
	if *quick {
		opt = stories.QuickOptions()
	}
	setOptions(&opt)
	opt.Out = *out
	opt.Log = env.Stderr
	if err := opt.Check(); err != nil {
		return fmt.Errorf("%w: fspo synth: %v", errUsage, err)
	}
	lm, err := loadLM(env, *modelFlag)
	if err != nil {
		return err
	}
	id, err := fileID(lm.Paths.Checkpoint)
	if err != nil {
		return err
	}
	opt.Model = id
	rep, err := stories.Synthesize(ctx, lm.Model, lm.Tok, opt)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote %s: %d preferences of %d users (%d train, %d heldout, %d interpolated, %d unseen), %d candidates, in %v\n",
		*out, rep.Records, rep.Users, rep.Kinds[stories.Train], rep.Kinds[stories.HeldOut], rep.Kinds[stories.Interpolated],
		rep.Kinds[stories.Unseen], rep.Candidates, rep.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(env.Stdout, "pool: distinct-1 %.3f, distinct-2 %.3f, self-similarity %.3f; users disagree on %.0f%% of pairs (closest %.0f%%)\n",
		rep.Distinct1, rep.Distinct2, rep.SelfSimilarity, 100*rep.MeanDisagreement, 100*rep.MinDisagreement)
	return nil
}

// hasRecipeFlag tells whether args (before a "--") give -recipe or --recipe.
func hasRecipeFlag(args []string) bool {
	for _, a := range args {
		if a == "--" {
			break
		}
		if n := strings.TrimLeft(a, "-"); len(a)-len(n) >= 1 && len(a)-len(n) <= 2 && (n == "recipe" || strings.HasPrefix(n, "recipe=")) {
			return true
		}
	}
	return false
}

// storiesOptionFlags defines the flags of the stories generator's options
// (defaults from def) and returns what copies the flags given on the
// command line into an Options, over its defaults or the --quick ones.
func storiesOptionFlags(fs *flag.FlagSet, def stories.Options) func(opt *stories.Options) {
	users := fs.Int("users", def.Users, "users: two thirds train, the rest held out (heldout, interpolated, unseen)")
	testUsers := fs.Int("test-users", def.TestUsers, "held-out users among --users (0: a third)")
	bestChosen := fs.Bool("best-chosen", def.BestChosen, "one side of every pair is a best candidate of its opening for the user (else two random candidates)")
	descriptions := fs.String("descriptions", stories.Varied, "phrasing of the user descriptions: varied (several layouts and wordings) or canonical (one short fixed form)")
	seed := fs.Int64("seed", def.Seed, "seed of every random choice")
	prompts := fs.Int("prompts", def.Prompts, fmt.Sprintf("training story openings (at most %d)", len(stories.TrainPrompts())))
	heldOut := fs.Int("held-out-prompts", def.HeldOutPrompts, fmt.Sprintf("held-out story openings (at most %d)", len(stories.HeldOutPrompts())))
	pool := fs.Int("pool", def.PoolSize, "candidate responses per opening")
	unsteered := fs.Int("unsteered", def.Unsteered, "every k-th candidate is the base model's own continuation, without steering (0: none)")
	pairs := fs.Int("pairs", def.PairsPerUser, "labelled pairs per user")
	margin := fs.Float64("margin", def.MinMargin, "least reward difference for a pair to be labelled (closer pairs are dropped as ties)")
	noise := fs.Float64("noise", def.Noise, "Bradley–Terry label noise temperature in reward units (0: exact labels)")
	temp := fs.Float64("temperature", def.Temperature, "sampling temperature of the candidates")
	topp := fs.Float64("topp", def.TopP, "nucleus sampling mass of the candidates")
	batch := fs.Int("batch", def.Batch, "candidates generated per batched call (part of the configuration: it fixes the random streams)")
	return func(opt *stories.Options) {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, apply := range map[string]func(){
			"users":       func() { opt.Users = *users },
			"test-users":  func() { opt.TestUsers = *testUsers },
			"best-chosen": func() { opt.BestChosen = *bestChosen },
			"descriptions": func() {
				if opt.Descriptions = *descriptions; opt.Descriptions == stories.Varied {
					opt.Descriptions = "" // the default, as older config.json files record it
				}
			},
			"seed":             func() { opt.Seed = *seed },
			"prompts":          func() { opt.Prompts = *prompts },
			"held-out-prompts": func() { opt.HeldOutPrompts = *heldOut },
			"pool":             func() { opt.PoolSize = *pool },
			"unsteered":        func() { opt.Unsteered = *unsteered },
			"pairs":            func() { opt.PairsPerUser = *pairs },
			"margin":           func() { opt.MinMargin = *margin },
			"noise":            func() { opt.Noise = *noise },
			"temperature":      func() { opt.Temperature = *temp },
			"topp":             func() { opt.TopP = *topp },
			"batch":            func() { opt.Batch = *batch },
		} {
			if set[name] {
				apply()
			}
		}
	}
}

// fileID names a checkpoint by its file name and content hash, so a resumed
// run can tell that it uses the same model.
func fileID(path string) (string, error) {
	sum, err := runcard.FileSHA256(path) // a file's bytes, or a model folder's files
	if err != nil {
		return "", fmt.Errorf("hash model %s: %w", path, err)
	}
	return filepath.Base(path) + " sha256:" + sum[:16], nil
}
