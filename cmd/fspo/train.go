package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"fspo/dataset"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/model"
	"fspo/runcard"
	"fspo/tensor"
	"fspo/train"
)

func init() {
	register(&command{name: "train", summary: "train one FSPO stage: few-shot Pref-FT (sft) or IPO against the frozen initial model (pref)", run: runTrain})
}

// trainFlags are the flags of `fspo train`, shared with `fspo demo`.
type trainFlags struct {
	data, out, init, config, variant, layout string
	shots, passes, heldout                   int
	maxDropped                               float64
	cfg                                      train.Config
	engine                                   engineFlags
}

// engineFlags choose who runs the stage: fspo's own engine or PyTorch.
type engineFlags struct {
	name, python string
	nproc        int
	stageOnly    bool
}

func (e *engineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.name, "engine", "go", "go (fspo's own engine) or torch (the PyTorch trainer in torch/trainer.py: FSDP, or sharded optimizer state where PyTorch has no CPU FSDP)")
	fs.IntVar(&e.nproc, "nproc", 1, "with --engine torch: processes (ranks) on this machine")
	fs.StringVar(&e.python, "python", "", "with --engine torch: a Python that imports torch (default: python3, then /usr/bin/python3)")
	fs.BoolVar(&e.stageOnly, "stage-only", false, "with --engine torch: write RUN/torch (plan, initial model, episode shards) and print the torchrun command instead of training")
}

func runTrain(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "train", "--data DIR --out RUN --stage sft|pref [--init MODEL] [--config FILE] [flags]")
	var tf trainFlags
	stage := fs.String("stage", "sft", "sft (few-shot Pref-FT) or pref (preference optimization against --init, frozen)")
	fs.StringVar(&tf.data, "data", "", "dataset folder (preferences.jsonl + manifest.json)")
	fs.StringVar(&tf.out, "out", "", "run folder: checkpoints, metrics; an interrupted run resumes from it")
	fs.StringVar(&tf.init, "init", "", "initial model: checkpoint, run's model.fspo, folder or name (default stories260K)")
	fs.StringVar(&tf.config, "config", "", "YAML or JSON file of training settings (flags override it)")
	fs.StringVar(&tf.variant, "variant", "plain", "prompt variant: plain, cot, preferred-only, zero-shot, oracle")
	fs.StringVar(&tf.layout, "layout", "compact", "prompt layout: compact or paper")
	fs.IntVar(&tf.shots, "shots", 4, "N: examples of the user in each prompt")
	fs.IntVar(&tf.passes, "passes", 0, "episode passes over each user's records (0: 2(N+1))")
	fs.Float64Var(&tf.maxDropped, "max-dropped", 0.05, "share of episodes that may be left out for not fitting the context (more is an error)")
	fs.IntVar(&tf.heldout, "heldout", 64, "held-out users' pairs whose implicit reward accuracy is logged at checkpoints (0: none)")
	d := train.Default("sft")
	beta := fs.Float64("beta", 0, "preference β (default "+fmt.Sprint(d.Beta)+")")
	objective := fs.String("objective", "", "ipo, ipo_norm, dpo or cdpo (default ipo)")
	lr := fs.Float64("lr", 0, "peak learning rate (default by stage)")
	steps := fs.Int64("steps", 0, "optimizer steps (default: --epochs over the episodes)")
	epochs := fs.Float64("epochs", 0, "passes over the episodes (default 1)")
	batch := fs.Int("batch", 0, "episodes per step (default "+fmt.Sprint(d.Batch)+")")
	seed := fs.Int64("seed", 0, "seed (default 1)")
	optName := fs.String("optimizer", "", "adamw or rmsprop")
	loraRank := fs.Int("lora-rank", 0, "train a LoRA adapter of this rank over the frozen --init model (0: every weight)")
	loraAlpha := fs.Float64("lora-alpha", 0, "LoRA alpha: the adapter is scaled by alpha/rank (default 2×rank)")
	loraTargets := fs.String("lora-targets", "q,k,v,o,gate,up,down", "matrices the adapter covers: q, k, v, o, gate, up, down")
	loraBase := fs.String("lora-base-dtype", "f32", "type the frozen base is held in while the adapter trains: f32, f16, bf16 (AVX-512 BF16 products, activations rounded to BF16) or q8_0")
	tf.engine.register(fs)
	recompute := fs.Bool("recompute", false, "activation checkpointing: recompute each layer's activations in backward (less memory, more time)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if tf.data == "" || tf.out == "" {
		return fmt.Errorf("%w: fspo train: --data and --out are required", errUsage)
	}
	cfg := train.Default(*stage)
	if tf.config != "" {
		var err error
		if cfg, err = train.LoadConfig(tf.config, cfg); err != nil {
			return err
		}
	}
	// flags given on the command line override the file and the defaults
	apply := map[string]func(){
		"stage": func() { cfg.Stage = *stage }, "beta": func() { cfg.Beta = *beta },
		"objective": func() { cfg.Objective = *objective }, "lr": func() { cfg.LR = *lr },
		"steps": func() { cfg.Steps = *steps }, "epochs": func() { cfg.Epochs = *epochs },
		"batch": func() { cfg.Batch = *batch }, "seed": func() { cfg.Seed = *seed },
		"optimizer": func() { cfg.Optimizer = *optName },
		"lora-rank": func() {
			cfg.LoRA.Rank = *loraRank
			if cfg.LoRA.Alpha == 0 {
				cfg.LoRA.Alpha = 2 * float64(*loraRank)
			}
			if cfg.LoRA.Targets == nil {
				cfg.LoRA.Targets = strings.Split(*loraTargets, ",")
			}
		},
		"recompute":  func() { cfg.Recompute = *recompute },
		"lora-alpha": func() { cfg.LoRA.Alpha = *loraAlpha }, "lora-targets": func() { cfg.LoRA.Targets = strings.Split(*loraTargets, ",") },
		"lora-base-dtype": func() { cfg.LoRA.BaseDType = *loraBase },
	}
	fs.Visit(func(f *flag.Flag) {
		if set, ok := apply[f.Name]; ok {
			set()
		}
	})
	tf.cfg = cfg
	return trainStage(ctx, env, tf)
}

// trainStage prepares the data and runs one stage into tf.out.
func trainStage(ctx context.Context, env *Env, tf trainFlags) error {
	if err := tf.cfg.Validate(); err != nil {
		return err
	}
	if tf.engine.name == "" { // the demo's stages
		tf.engine.name = "go"
	}
	if tf.engine.name != "go" && tf.engine.name != "torch" {
		return fmt.Errorf("%w: --engine %q: go or torch", errUsage, tf.engine.name)
	}
	if tf.engine.name == "torch" {
		tf.heldout = 0 // held-out accuracy is logged by the Go engine's checkpoints only
	}
	v, err := episode.ParseVariant(tf.variant)
	if err != nil {
		return fmt.Errorf("%w: --variant: %v", errUsage, err)
	}
	layout, err := episode.ParseLayout(tf.layout)
	if err != nil {
		return fmt.Errorf("%w: --layout: %v", errUsage, err)
	}
	lm, err := loadTrainInit(env, tf)
	if err != nil {
		return err
	}
	m := lm.Model
	codec := lm.codec(fewshot.Codec{Variant: v, Layout: layout})
	items, st, err := train.Prepare(train.Data{Dir: tf.data, Variant: v, Layout: layout, Shots: tf.shots, Passes: tf.passes, Seed: tf.cfg.Seed, MaxDropped: tf.maxDropped}, codec, m.Positions())
	if err != nil {
		return err
	}
	var heldout []train.Item
	if tf.heldout > 0 {
		held, _, err := train.Prepare(train.Data{Dir: tf.data, Variant: v, Layout: layout, Shots: tf.shots, Passes: 1, Seed: tf.cfg.Seed, Users: "test", MaxDropped: tf.maxDropped}, codec, m.Positions())
		if err != nil {
			return fmt.Errorf("held-out pairs: %w", err)
		}
		heldout = held[:min(tf.heldout, len(held))]
	}
	var ref *model.Model
	if tf.cfg.Stage == "pref" && !tf.cfg.LoRA.On() { // a LoRA run's reference is its frozen base
		ref = m.Clone()
	}
	if err := os.MkdirAll(tf.out, 0o755); err != nil {
		return err
	}
	// the run folder is a model folder of its own: its tokenizer travels with it
	if err := lm.carryTokenizer(tf.out); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	card, err := newCard(lm.Paths.Checkpoint, tf.data, runcard.Prompt{Template: runcard.TemplateEpisode, Variant: string(v), Layout: layout.Name, Shots: tf.shots})
	if err != nil {
		return err
	}
	r := &train.Run{Config: tf.cfg, Dir: tf.out, Model: m, Ref: ref, Items: items, Heldout: heldout, Card: card}
	if st.Dropped > 0 {
		fmt.Fprintf(env.Stderr, "train: left out %d of %d episodes longer than the model's %d positions\n", st.Dropped, st.Dropped+st.Episodes, m.Positions())
	}
	fmt.Fprintf(env.Stderr, "train %s: %s (%s, %d shots): %d users, %d episodes, prompt tokens %d/%d/%d (min/mean/max), longest episode %d positions, %d steps\n",
		filepath.Base(tf.out), tf.cfg.Stage, v, tf.shots, st.Users, st.Episodes, st.PromptTokens[0], st.PromptTokens[1], st.PromptTokens[2], st.Positions, r.TotalSteps())
	r.ScoreProgress = scoreProgress(env, filepath.Base(tf.out))
	if tf.engine.name == "torch" {
		return trainTorch(ctx, env, r, tf)
	}
	return trainGo(ctx, env, r, tf)
}

// loadTrainInit loads the model a stage starts from: for an adapter over a
// base held in a reduced type (lora.base_dtype), straight in that type, so
// that no F32 copy of the base is made (model.SetDType's values either way).
func loadTrainInit(env *Env, tf trainFlags) (*lmodel, error) {
	if b := tf.cfg.LoRA.BaseDType; tf.cfg.LoRA.On() && b != "" && b != tensor.F32.String() {
		return loadLMAs(env, tf.init, b)
	}
	return loadLM(env, tf.init)
}

// scoreProgress shows the reference's scoring of the pairs, done once
// before the first step.
func scoreProgress(env *Env, name string) func(done, total int) {
	var pr *progress
	return func(done, total int) {
		if pr == nil {
			pr = newProgress(env, "reference log-probs "+name, int64(total))
		}
		pr.set(int64(done), "pairs scored")
		if done == total {
			pr.done()
			pr = nil
		}
	}
}

// trainGo runs the stage r on fspo's own engine, showing its progress.
func trainGo(ctx context.Context, env *Env, r *train.Run, tf trainFlags) error {
	pr := newProgress(env, "train "+filepath.Base(tf.out), r.TotalSteps())
	r.Progress = func(mt train.Metrics, total int64) {
		note := fmt.Sprintf("loss %.4f lr %.2g %.0f tok/s", mt.Loss, mt.LR, mt.TokensPerS)
		if tf.cfg.Stage == "pref" {
			note += fmt.Sprintf(" acc %.2f", mt.Accuracy)
		}
		if mt.HeldoutAccuracy != nil {
			note += fmt.Sprintf(" held-out acc %.2f", *mt.HeldoutAccuracy)
			fmt.Fprintf(env.Stderr, "train %s step %d: held-out implicit reward accuracy %.3f, margin %.4f\n", filepath.Base(tf.out), mt.Step, *mt.HeldoutAccuracy, *mt.HeldoutMargin)
		}
		pr.set(mt.Step, note)
	}
	err := r.Train(ctx)
	pr.done()
	if err != nil {
		return err
	}
	if err := train.PlotMetrics(filepath.Join(tf.out, train.MetricsFile), filepath.Join(tf.out, "curves.png")); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "train: wrote %s\n", filepath.Join(tf.out, train.ModelFile))
	return nil
}

// newCard is the run card of a stage initialised from the model file init,
// trained on the dataset folder data with prompt p; train.Run completes it.
// Its base is init's base when init is itself a trained model, else init.
func newCard(init, data string, p runcard.Prompt) (runcard.Card, error) {
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	c := runcard.Card{Prompt: p, Init: runcard.Model{Path: abs(init)}, Data: runcard.Data{Dir: abs(data)}}
	var err error
	if c.Init.SHA256, err = runcard.FileSHA256(init); err != nil {
		return c, fmt.Errorf("train: %w", err)
	}
	if c.Data.ManifestSHA256, err = runcard.FileSHA256(filepath.Join(data, dataset.ManifestName)); err != nil {
		return c, fmt.Errorf("train: %w", err)
	}
	c.Base = c.Init
	prev, err := runcard.Load(init)
	if err != nil {
		return c, fmt.Errorf("train: initial model: %w", err)
	}
	if prev != nil && prev.Base.Path != "" {
		c.Base = prev.Base
	}
	return c, nil
}
