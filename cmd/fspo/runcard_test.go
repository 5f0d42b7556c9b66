package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"fspo/episode"
	"fspo/runcard"
	"fspo/train"
)

// TestRunCard trains two tiny stages (sft, then ipo_norm from it) and
// checks the run card they write, what fspo info prints of it, and that
// eval and serve take their prompt from it: unset flags default to it, a
// contradicting flag is an error naming both values, --force-prompt a
// warning.
func TestRunCard(t *testing.T) {
	p := sharedModel(t)
	data := evalData(t)
	dir := t.TempDir()
	sft, ipo := filepath.Join(dir, "sft"), filepath.Join(dir, "ipo")
	common := []string{"--data", data, "--init", p.Checkpoint, "--shots", "2", "--layout", "paper", "--steps", "2", "--batch", "2", "--heldout", "0", "--passes", "1"}
	if _, stderr, err := runCLI(t, append([]string{"train", "--out", sft, "--stage", "sft"}, common...)...); err != nil {
		t.Fatalf("train sft: %v\n%s", err, stderr)
	}
	common[3] = filepath.Join(sft, train.ModelFile)
	if _, stderr, err := runCLI(t, append([]string{"train", "--out", ipo, "--stage", "pref", "--objective", "ipo_norm", "--beta", "0.2"}, common...)...); err != nil {
		t.Fatalf("train pref: %v\n%s", err, stderr)
	}
	baseHash, err := runcard.FileSHA256(p.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	sftHash, err := runcard.FileSHA256(filepath.Join(sft, train.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	card, err := runcard.Load(filepath.Join(ipo, train.ModelFile))
	if err != nil || card == nil {
		t.Fatalf("card of the pref run: %v, %v", card, err)
	}
	wantPrompt := runcard.Prompt{Template: runcard.TemplateEpisode, Variant: string(episode.Plain), Layout: "paper", Shots: 2}
	if card.Version != runcard.Version || card.Prompt != wantPrompt || card.Base.SHA256 != baseHash || card.Init.SHA256 != sftHash ||
		card.Train.Stage != "pref" || card.Train.Loss != "ipo_norm" || card.Train.Beta != 0.2 || card.Data.ManifestSHA256 == "" || card.Data.Items == "" || card.FSPO == "" {
		t.Errorf("card %+v: want version %d, prompt %+v, base sha256 %s, init sha256 %s (the sft model), pref ipo_norm β 0.2, data hashes, version", card, runcard.Version, wantPrompt, baseHash, sftHash)
	}

	stdout, _, err := runCLI(t, "info", "--model", ipo)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"parameters 260032", `"n_layers":5`, "variant    plain", "layout     paper", "shots      2", "loss       ipo_norm", "beta       0.2", "base       " + p.Checkpoint + " (sha256 " + baseHash + ")"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("fspo info lacks %q:\n%s", want, stdout)
		}
	}

	t.Run("eval", func(t *testing.T) {
		out := t.TempDir()
		if _, stderr, err := runCLI(t, "eval", "--data", data, "--out", out, "--base", p.Checkpoint, "--quick", "--prefft", sft); err != nil {
			t.Fatalf("eval: %v\n%s", err, stderr)
		}
		if rep := readEvalReport(t, out); rep.Config.Shots != 2 || rep.Config.Layout != "paper" {
			t.Errorf("eval without --shots/--layout: %d %q, want the card's 2 paper", rep.Config.Shots, rep.Config.Layout)
		}
		_, _, err := runCLI(t, "eval", "--data", data, "--out", out, "--base", p.Checkpoint, "--quick", "--prefft", sft, "--shots", "3")
		if err == nil || !strings.Contains(err.Error(), "shots 2, given shots 3") {
			t.Errorf("eval --shots 2: error %v, want one naming shots 2 and 3", err)
		}
	})

	t.Run("serve", func(t *testing.T) {
		checkServePromptFromCard(t, filepath.Join(sft, train.ModelFile), p.Checkpoint, wantPrompt)
	})
}

// checkServePromptFromCard checks serve's prompt for the model file whose
// card holds wantPrompt: unset flags default to the card, a contradicting
// flag is an error naming both values, --force-prompt a warning; a model
// without a card (cardlessModel) gets serve's defaults.
func checkServePromptFromCard(t *testing.T, file, cardlessModel string, wantPrompt runcard.Prompt) {
	t.Helper()
	var stderr bytes.Buffer
	env := &Env{Stderr: &stderr}
	got, err := servePrompt(env, file, runcard.Prompt{}, false)
	if err != nil || got != wantPrompt {
		t.Errorf("serve defaults: %+v, %v; want the card's %+v", got, err, wantPrompt)
	}
	for _, given := range []runcard.Prompt{{Shots: 8}, {Variant: "cot"}, {Layout: "compact"}} {
		_, err := servePrompt(env, file, given, false)
		if err == nil || !strings.Contains(err.Error(), "given") || !strings.Contains(err.Error(), "--force-prompt") {
			t.Errorf("serve %+v: error %v, want a contradiction naming both values", given, err)
		}
	}
	_, err = servePrompt(env, file, runcard.Prompt{Shots: 8}, false)
	if err == nil || !strings.Contains(err.Error(), "shots 2, given shots 8") {
		t.Errorf("serve --shots 8: %v, want shots 2 and 8 named", err)
	}
	got, err = servePrompt(env, file, runcard.Prompt{Shots: 8}, true)
	if err != nil || got.Shots != 8 || !strings.Contains(stderr.String(), "warning: --force-prompt") || !strings.Contains(stderr.String(), "shots 2, using 8") {
		t.Errorf("serve --force-prompt --shots 8: %+v, %v, stderr %q; want 8 shots and a warning", got, err, stderr.String())
	}
	got, err = servePrompt(env, cardlessModel, runcard.Prompt{}, false)
	if err != nil || got != (runcard.Prompt{Variant: "plain", Layout: "compact", Shots: defaultServeShots}) {
		t.Errorf("serve a model without a card: %+v, %v; want plain compact %d", got, err, defaultServeShots)
	}
}
