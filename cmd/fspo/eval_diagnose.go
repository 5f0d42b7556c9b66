package main

import (
	"encoding/json"
	"flag"
	"fmt"

	"fspo/episode"
	"fspo/eval"
	"fspo/fewshot"
	"fspo/runcard"
)

// diagnoseFlags are fspo eval's diagnostics of one trained run.
type diagnoseFlags struct {
	probe, margins, users string
	pairs                 int
	asJSON                bool
}

// diagnoseFlagsOf registers the diagnostics' flags on fspo eval's.
func diagnoseFlagsOf(flags *flag.FlagSet) *diagnoseFlags {
	df := &diagnoseFlags{}
	flags.StringVar(&df.probe, "probe", "", "diagnostic: does RUN read its shots? its pairs' margins under the user's own vs another user's shots")
	flags.StringVar(&df.margins, "margins", "", "diagnostic: RUN's log-ratio margin against its initial model, split into description and response parts")
	flags.StringVar(&df.users, "users", "test", "whose pairs the diagnostics score: train or test")
	flags.IntVar(&df.pairs, "pairs", 200, "pairs --margins scores at most")
	flags.BoolVar(&df.asJSON, "json", false, "print a diagnostic as JSON")
	return df
}

// runDiagnose prints the probe (does the model read its shots?) or the
// margin split (what its COT descriptions earn) of a run on a data folder,
// with the run card's prompt; the margins' reference is the run's initial model.
func runDiagnose(env *Env, df *diagnoseFlags, data string, seed int64) error {
	run := df.probe
	if run == "" {
		run = df.margins
	} else if df.margins != "" {
		return fmt.Errorf("%w: fspo eval: --probe and --margins are two diagnostics: give one", errUsage)
	}
	if data == "" {
		return fmt.Errorf("%w: fspo eval --probe/--margins: --data is required", errUsage)
	}
	if df.users != "train" && df.users != "test" {
		return fmt.Errorf("%w: fspo eval: --users must be train or test, not %q", errUsage, df.users)
	}
	lm, err := loadLM(env, run)
	if err != nil {
		return err
	}
	card, err := runcard.Load(lm.Paths.Checkpoint)
	if err != nil {
		return err
	}
	if card == nil {
		return fmt.Errorf("fspo eval: %s has no run card (not a model trained by fspo train): its prompt is unknown", run)
	}
	v, err := episode.ParseVariant(card.Prompt.Variant)
	if err != nil {
		return fmt.Errorf("fspo eval: %s: run card: %w", run, err)
	}
	lay, err := episode.ParseLayout(card.Prompt.Layout)
	if err != nil {
		return fmt.Errorf("fspo eval: %s: run card: %w", run, err)
	}
	train, test, err := eval.ReadSplit(data)
	if err != nil {
		return err
	}
	byUser := test
	if df.users == "train" {
		byUser = train
	}
	codec := lm.codec(fewshot.Codec{Variant: v, Layout: lay})
	var report fmt.Stringer
	if df.probe != "" {
		if v == episode.COT {
			codec.Variant = episode.Plain // the probe scores responses under shots: no description part
		}
		r, err := eval.Probe(lm.Model, codec, byUser, card.Prompt.Shots, seed)
		if err != nil {
			return err
		}
		report = r
	} else {
		if card.Init.Path == "" {
			return fmt.Errorf("fspo eval --margins: %s's run card names no initial model", run)
		}
		ref, err := loadLM(env, card.Init.Path)
		if err != nil {
			return fmt.Errorf("fspo eval --margins: the initial model: %w", err)
		}
		r, err := eval.Margins(lm.Model, ref.Model, codec, byUser, card.Prompt.Shots, df.pairs, seed)
		if err != nil {
			return err
		}
		report = r
	}
	if df.asJSON {
		return json.NewEncoder(env.Stdout).Encode(report)
	}
	_, err = fmt.Fprintf(env.Stdout, "%s users: %s\n", df.users, report)
	return err
}
