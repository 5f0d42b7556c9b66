package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"fspo/eval"
	"fspo/gguf"
	"fspo/judge"
	"fspo/llm"
	"fspo/modelpath"
	"fspo/synth/stories"
)

func init() {
	register(&command{name: "eval", summary: "win rates of every method against the base model on held-out users, with intervals; report.md/json, samples, plot", run: runEval})
}

func runEval(ctx context.Context, env *Env, args []string) error {
	flags := newFlags(env, "eval", "--data DIR --out DIR [--prefft RUN] [--ipo RUN] [--fspo RUN] [--fspo-cot RUN] [--fspo-onpolicy RUN] [--fspo-cot-onpolicy RUN] [flags]")
	d := eval.Defaults()
	c := d
	flags.StringVar(&c.Data, "data", "", "dataset folder (preferences.jsonl, manifest.json; users.json for the stories reward)")
	flags.StringVar(&c.Out, "out", "", "output folder: report.md, report.json, samples.jsonl, winrates.png")
	base := flags.String("base", "", "base model: checkpoint, folder or name (default stories260K)")
	runs := map[string]*string{}
	for _, m := range []struct{ flag, method string }{{"prefft", eval.PrefFT}, {"ipo", eval.IPO}, {"fspo", eval.FSPO}, {"fspo-cot", eval.FSPOCOT}, {"fspo-onpolicy", eval.FSPOOnPolicy}, {"fspo-cot-onpolicy", eval.FSPOCOTOnPolicy}} {
		runs[m.method] = flags.String(m.flag, "", "run folder (or model file) of "+m.method+"; not given: reported absent")
	}
	refs := map[string]*string{}
	for _, m := range []struct{ flag, method string }{{"ipo-ref", eval.IPO}, {"fspo-ref", eval.FSPO}, {"fspo-cot-ref", eval.FSPOCOT}, {"fspo-onpolicy-ref", eval.FSPOOnPolicy}, {"fspo-cot-onpolicy-ref", eval.FSPOCOTOnPolicy}} {
		refs[m.method] = flags.String(m.flag, "", "reference model of "+m.method+" for the implicit reward (default: the run's initial model)")
	}
	flags.IntVar(&c.Shots, "shots", 0, fmt.Sprintf("shots per prompt (default: the runs' run card, else %d; another value is an error)", eval.DefaultShots))
	flags.StringVar(&c.Layout, "layout", "", fmt.Sprintf("prompt layout: compact or paper (default: the runs' run card, else %s; another value is an error)", eval.DefaultLayout))
	flags.BoolVar(&c.ForcePrompt, "force-prompt", false, "use --shots/--layout even where they contradict a run card (with a warning)")
	flags.IntVar(&c.Queries, "queries", d.Queries, "queries per held-out user (0: every evaluation episode)")
	flags.IntVar(&c.OracleK, "oracle-k", d.OracleK, "base samples the oracle picks the best of")
	flags.Float64Var(&c.Temperature, "temperature", d.Temperature, "sampling temperature of every method")
	flags.Float64Var(&c.DescriptionTemperature, "description-temperature", d.DescriptionTemperature, "sampling temperature of the description a COT model writes before its response (0: greedy)")
	flags.IntVar(&c.BestOf, "best-of", 0, "also evaluate fspo_best_of: the fspo run's best of N samples by the user's implicit reward (0: off)")
	flags.BoolVar(&c.BestOfPerToken, "best-of-per-token", false, "rank the --best-of samples by the implicit reward per token instead of the sum")
	flags.IntVar(&c.COTDescriptions, "cot-descriptions", 0, "a COT model states the best of its greedy and N-1 sampled descriptions: the one under which it best tells the user's labelled answers apart (0, 1: greedy only)")
	flags.BoolVar(&c.AlsoGivenDescription, "with-given-description", false, "also evaluate fspo_cot_given_description: the COT model stating each user's true description (report.json \"cot_true_description\")")
	flags.BoolVar(&c.GivenDescription, "given-description", false, "a COT model states each user's true description instead of its own guess, then answers (what a correct description is worth)")
	flags.BoolVar(&c.Elicitation, "elicitation", false, "also measure the fspo run with 1, 2, 4, 8 labels per user asked at random or actively (report.json \"elicitation\")")
	flags.IntVar(&c.ElicitMembers, "elicit-members", 8, "plausible users (training users' contexts) weighing the active choice")
	flags.Float64Var(&c.TopP, "topp", d.TopP, "nucleus sampling mass in (0,1]")
	flags.IntVar(&c.MaxTokens, "max-tokens", 0, "response token cap (0: the longest training response)")
	flags.Int64Var(&c.Seed, "seed", d.Seed, "seed of episodes, sampling and the bootstrap")
	flags.Float64Var(&c.Beta, "beta", d.Beta, "β of the implicit reward when a run does not record it")
	quick := flags.Bool("quick", false, "a smoke run: 2 queries per user, oracle of 4")
	judgeKind := flags.String("judge", "reward", "reward (the stories users' exact reward) or llm")
	endpoint := flags.String("endpoint", "", "OpenAI-compatible endpoint of the LLM judge")
	judgeModel := flags.String("model", "", "model name of the LLM judge")
	keyEnv := flags.String("api-key-env", "", "environment variable holding the LLM judge's API key (none: no key sent)")
	cachePath := flags.String("cache", "", "LLM judge call cache (SQLite; default OUT/llm-cache.sqlite)")
	df := diagnoseFlagsOf(flags)
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if df.probe != "" || df.margins != "" {
		return runDiagnose(env, df, c.Data, c.Seed)
	}
	if c.Data == "" || c.Out == "" {
		return fmt.Errorf("%w: fspo eval: --data and --out are required", errUsage)
	}
	if err := checkJudgeFlags(*judgeKind, *endpoint, *judgeModel); err != nil {
		return err
	}
	if *quick {
		c.Queries, c.OracleK = 2, 4
	}
	if err := setEvalBase(env, &c, *base); err != nil {
		return err
	}
	c.Runs, c.Refs = given(runs), given(refs)
	if err := setEvalRewards(&c, *judgeKind); err != nil {
		return err
	}
	if *judgeKind == "llm" {
		cache, err := setLLMJudge(env, &c, *endpoint, *judgeModel, *keyEnv, *cachePath)
		if err != nil {
			return err
		}
		defer cache.Close()
	}
	c.Progress = env.Stderr
	rep, err := eval.Run(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "eval: %d queries per method in %.1fs; wrote %s\n", rep.Queries, rep.Timings["total"], filepath.Join(c.Out, eval.ReportMD))
	_, err = fmt.Fprint(env.Stdout, rep.Markdown())
	return err
}

// checkJudgeFlags reports a --judge that is unknown or lacks its endpoint.
func checkJudgeFlags(kind, endpoint, model string) error {
	switch kind {
	case "reward":
	case "llm":
		if endpoint == "" || model == "" {
			return fmt.Errorf("%w: fspo eval: --judge llm needs --endpoint URL and --model NAME", errUsage)
		}
	default:
		return fmt.Errorf("%w: fspo eval: --judge %q is not reward or llm", errUsage, kind)
	}
	return nil
}

// setEvalRewards sets the exact rewards and kinds of the stories users of
// c.Data; another domain has none, which only the LLM judge accepts.
func setEvalRewards(c *eval.Config, judgeKind string) error {
	users, err := stories.LoadUsers(c.Data)
	switch {
	case err == nil:
		c.Rewards, c.Kinds = map[string]eval.Rewarder{}, map[string]string{}
		for i := range users.Users {
			u := &users.Users[i]
			c.Rewards[u.ID] = u
			switch u.Kind {
			case stories.HeldOut:
				c.Kinds[u.ID] = eval.KindSeen
			case stories.Interpolated:
				c.Kinds[u.ID] = eval.KindInterpolated
			case stories.Unseen:
				c.Kinds[u.ID] = eval.KindUnseen
			}
		}
	case errors.Is(err, fs.ErrNotExist) && judgeKind != "reward":
		// another domain: no exact reward; the LLM judge decides and the oracle is absent
	default:
		return fmt.Errorf("fspo eval: the reward judge needs the users' profiles: %w", err)
	}
	return nil
}

// setLLMJudge sets c.Judge to the LLM judge at endpoint, with its call
// cache (default OUT/llm-cache.sqlite), which the caller closes.
func setLLMJudge(env *Env, c *eval.Config, endpoint, model, keyEnv, cachePath string) (*llm.Cache, error) {
	ens, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{{BaseURL: endpoint, Model: model, APIKeyEnv: keyEnv}}, Getenv: env.Getenv})
	if err != nil {
		return nil, fmt.Errorf("fspo eval: %w", err)
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return nil, fmt.Errorf("fspo eval: %w", err)
	}
	if cachePath == "" {
		cachePath = filepath.Join(c.Out, "llm-cache.sqlite")
	}
	cache, err := llm.NewCache(cachePath)
	if err != nil {
		return nil, err
	}
	c.Judge = judge.NewLLM(ens, judge.LLMOptions{Seed: c.Seed, Cache: cache})
	return cache, nil
}

// setEvalBase sets the base model of c and its tokenizer: a Hugging Face or
// GGUF model's own tokenizer and chat format, or a llama2.c model's file.
func setEvalBase(env *Env, c *eval.Config, base string) error {
	if base != "" && (exists(filepath.Join(base, "tokenizer.json")) || gguf.IsGGUF(base)) {
		lm, err := loadLM(env, base)
		if err != nil {
			return err
		}
		c.Base, c.Codec, c.Chat = base, lm.Tok, lm.Chat
		return nil
	}
	paths, err := modelpath.Resolve(base, env.Getenv)
	if err != nil {
		return err
	}
	c.Base, c.Tokenizer = paths.Checkpoint, paths.Tokenizer
	return nil
}

// given keeps the flags that were set, by method.
func given(flags map[string]*string) map[string]string {
	out := map[string]string{}
	for m, p := range flags {
		if *p != "" {
			out[m] = *p
		}
	}
	return out
}
