package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"fspo/llm"
	"fspo/synth/recipe"
)

// runSynthRecipe implements `fspo synth --recipe NAME --endpoint URL --model
// NAME --out DIR [...]`: config = recipe defaults < --config file < flags.
func runSynthRecipe(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "synth", "--recipe NAME|FILE.yaml (--endpoint URL --model NAME | --config llm.yaml) --out DIR [flags]")
	lf := addLLMFlags(fs, "", "; shards may share one")
	name := fs.String("recipe", "", "built-in recipe ("+strings.Join(recipe.Builtin(), ", ")+"; elix = elix-easy) or a recipe YAML file")
	embedModel := fs.String("embed-model", "", "embedding model at --endpoint for the similarity report (none: n-gram similarity only)")
	out := fs.String("out", "", "output directory: preferences.jsonl, manifest.json, report.{json,md}, disagreement.png")
	users := fs.Int("users", 0, "number of users (0: all the recipe defines)")
	questions := fs.Int("questions", 0, "questions per user (0: the recipe's)")
	responses := fs.Int("responses", 0, "candidate responses per question (0: the recipe's)")
	seed := fs.Int64("seed", 1, "seed of every random choice")
	shard := fs.String("shard", "", "build only part i of n of the users, as i/n (0-based), for `fspo synth merge`")
	workers := fs.Int("workers", 8, "users labelled at once and calls each issues")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *name == "":
		return fmt.Errorf("%w: fspo synth: --recipe is required (built in: %s, or a .yaml file)", errUsage, strings.Join(recipe.Builtin(), ", "))
	case *out == "":
		return fmt.Errorf("%w: fspo synth: --out DIR is required", errUsage)
	case lf.check("fspo synth") != nil:
		return lf.check("fspo synth")
	case *users < 0 || *questions < 0 || *responses < 0:
		return fmt.Errorf("%w: fspo synth: --users, --questions and --responses must be >= 0", errUsage)
	case *workers <= 0:
		return fmt.Errorf("%w: fspo synth: --workers %d must be > 0", errUsage, *workers)
	}
	si, sn, err := parseShard(*shard)
	if err != nil {
		return fmt.Errorf("%w: fspo synth: %v", errUsage, err)
	}
	r, err := recipe.Load(*name)
	if err != nil {
		return err
	}
	ens, _, cache, err := lf.open(env, "fspo synth", llm.Config{}, llm.Endpoint{EmbeddingModel: *embedModel}, *out)
	if err != nil {
		return err
	}
	defer cache.Close()
	start := time.Now()
	rep, err := recipe.Run(ctx, recipe.Config{
		Recipe: r, Client: llm.Cached(ens, cache), Out: *out,
		Users: *users, Questions: *questions, Responses: *responses, Seed: *seed,
		Shard: si, Shards: sn, Workers: *workers, Log: env.Stderr,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: %d users, %d records (%d written now) in %s; %d calls (%d cached), %d tokens in, %d out, cost %.4f; %d calls finally failed\n",
		*out, rep.Users, rep.Records, rep.Written, time.Since(start).Round(time.Millisecond), rep.Calls.Calls, rep.Calls.Cached,
		rep.Calls.PromptTokens, rep.Calls.CompletionTokens, rep.Calls.Cost, rep.Calls.FailedCalls)
	fmt.Fprintf(env.Stdout, "label entropy %.3f -> %.3f nats; response similarity %.3f (n-gram); see %s\n",
		rep.EntropyBefore, rep.EntropyAfter, rep.Similarity.NGram, filepath.Join(*out, "report.md"))
	return nil
}

// runSynthMerge implements `fspo synth merge --out DIR PART_DIR...`.
func runSynthMerge(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "synth merge", "--out DIR PART_DIR...")
	out := fs.String("out", "", "directory of the merged preferences.jsonl, manifest and report")
	if err := flagError(fs, fs.Parse(args)); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return fmt.Errorf("%w: fspo synth merge: give --out DIR and the part directories (flags first)", errUsage)
	}
	rep, err := recipe.Merge(ctx, *out, fs.Args())
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: merged %d parts: %d users, %d records; %d calls finally failed in the parts\n",
		*out, len(rep.Parts), rep.Users, rep.Records, rep.Calls.FailedCalls)
	return nil
}

// parseShard reads "i/n" (empty: 0/1).
func parseShard(s string) (int, int, error) {
	if s == "" {
		return 0, 1, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n <= 0 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("--shard %q: want i/n with 0 <= i < n, e.g. 0/4", s)
	}
	return i, n, nil
}
